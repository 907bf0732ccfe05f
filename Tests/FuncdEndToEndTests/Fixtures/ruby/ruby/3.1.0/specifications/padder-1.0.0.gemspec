Gem::Specification.new do |spec|
  spec.name = 'padder'
  spec.version = '1.0.0'
  spec.summary = 'A fixture gem for funcd tests'
  spec.authors = ['funcd']
  spec.files = ['lib/padder.rb']
  spec.require_paths = ['lib']
end
