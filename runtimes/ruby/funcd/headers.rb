# frozen_string_literal: true

module Funcd
  # Headers as funcd-ruby hands them over and takes them back: one binary String of fields, each
  # a name then a value, each of those its length (32 bits, little-endian) followed by its bytes
  # (FuncdCore's HeaderPacking). Lengths instead of separators: any byte (NUL, CR, LF, 0xFF)
  # inside a value stays inside that value. Names from funcd are lower-case.
  module Headers
    LENGTH = 'V'
    FIELD = 'Va*Va*'

    module_function

    # Yields each name and value of `packed` (binary Strings, as funcd-ruby makes them).
    def each(packed)
      walk(packed) do |name_at, name_length, value_at, value_length|
        yield packed.byteslice(name_at, name_length), packed.byteslice(value_at, value_length)
      end
    end

    # The value of the first field named `name` (lower-case), or nil; only that value is copied.
    def find(packed, name)
      wanted = name.bytesize
      walk(packed) do |name_at, name_length, value_at, value_length|
        return packed.byteslice(value_at, value_length) if name_length == wanted && packed.byteslice(name_at, name_length) == name
      end
      nil
    end

    # Yields where each field's name and value are, without copying them. A truncated last field,
    # which no correct writer produces, is dropped.
    def walk(packed)
      size = packed.bytesize
      offset = 0
      while size - offset >= 8
        name_length = packed.unpack1(LENGTH, offset: offset)
        value_at = offset + 4 + name_length
        break if size - value_at < 4

        value_length = packed.unpack1(LENGTH, offset: value_at)
        break if size - value_at - 4 < value_length

        yield offset + 4, name_length, value_at + 4, value_length
        offset = value_at + 4 + value_length
      end
    end

    # A header value as WEBrick gives it to Rack: its bytes, as a binary String. The HTTP front
    # hands a byte 0x80-0xFF of a value over as the UTF-8 of the Latin-1 character it stands for
    # (U+0080-U+00FF); that is undone here. A value without such bytes is returned as it is.
    def wire_value(value)
      return value if value.ascii_only?

      value.dup.force_encoding(Encoding::UTF_8).encode(Encoding::ISO_8859_1).force_encoding(Encoding::ASCII_8BIT)
    rescue EncodingError
      # Not Latin-1 text (a front that sent the bytes themselves, or U+FFFD): the bytes as they are.
      value.b
    end

    # Appends one field to `buffer` (a binary String); name and value as their bytes.
    def append(buffer, name, value)
      name = name.to_s
      value = value.to_s
      buffer << [name.bytesize, name, value.bytesize, value].pack(FIELD)
    end

    # A packed String of the given [name, value] pairs.
    def pack(pairs)
      buffer = ''.b
      pairs.each { |name, value| append(buffer, name, value) }
      buffer
    end
  end
end
