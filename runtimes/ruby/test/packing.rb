# frozen_string_literal: true

# Builds headers the way funcd-ruby hands them over (FuncdCore's HeaderPacking), written out byte
# by byte here rather than with Funcd::Headers, so that the tests check the format itself.
module Packing
  def pack_pairs(pairs)
    pairs.map { |name, value| length(name) + name.b + length(value) + value.b }.join.b
  end

  def pack(hash)
    pack_pairs(hash.to_a)
  end

  # The [name, value] pairs of a packed String, read byte by byte.
  def fields(packed)
    bytes = packed.bytes
    strings = []
    until bytes.empty?
      size = bytes.shift(4).each_with_index.sum { |byte, index| byte << (8 * index) }
      strings << bytes.shift(size).pack('C*')
    end
    strings.each_slice(2).to_a
  end

  def length(text)
    size = text.bytesize
    [size & 0xff, (size >> 8) & 0xff, (size >> 16) & 0xff, size >> 24].pack('C*')
  end
end
