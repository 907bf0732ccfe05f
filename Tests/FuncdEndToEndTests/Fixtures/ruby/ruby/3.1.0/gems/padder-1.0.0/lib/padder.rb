# A gem as `bundle install --path <code dir>` leaves it under <code dir>/ruby/3.1.0.
module Padder
  def self.left(text, width)
    text.to_s.rjust(width, '0')
  end
end
