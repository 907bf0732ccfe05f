# frozen_string_literal: true

# Funcd::Headers, the length-prefixed header fields between funcd-ruby and the glue, and the
# places that read them: bytes that once separated fields (NUL) or lines (CR, LF) and bytes that
# are not UTF-8 stay inside the value that holds them.

require 'minitest/autorun'
require_relative '../funcd/host'
require_relative 'packing'
require_relative 'recorder'

class HeadersTest < Minitest::Test
  include Packing

  AWKWARD = ["\0", "\r", "\n", "\r\n", "\xFF".b, "a\0b", "/home\0Set-Cookie\0session=attacker", '', 'content-type'].freeze

  def each_pair(packed)
    found = []
    Funcd::Headers.each(packed) { |name, value| found << [name, value] }
    found
  end

  def test_the_wire_bytes_match_swift
    # The same vector as Tests/FuncdCoreTests/HeaderPackingTests.swift.
    expected = [2, 0, 0, 0, *'x-'.bytes, 3, 0, 0, 0, 0x61, 0, 0x62, 0, 0, 0, 0, 0, 0, 0, 0].pack('C*')
    assert_equal expected, Funcd::Headers.pack([["x-", "a\0b"], ['', '']])
    assert_equal [["x-", "a\0b"], ['', '']], each_pair(expected)
  end

  def test_awkward_bytes_in_names_and_values_round_trip
    pairs = AWKWARD.product(AWKWARD).map { |name, value| ["x-#{name.b}".b, "#{value.b}!".b] }
    packed = Funcd::Headers.pack(pairs)
    assert_equal pairs, each_pair(packed)
    assert_equal pairs, fields(packed)
    assert_equal pairs, each_pair(pack_pairs(pairs))
  end

  def test_random_bytes_round_trip
    random = Random.new(7)
    100.times do
      pairs = Array.new(random.rand(5)) { Array.new(2) { random.bytes(random.rand(20)) } }
      assert_equal pairs, each_pair(Funcd::Headers.pack(pairs))
    end
  end

  def test_a_truncated_field_is_dropped
    whole = pack_pairs([%w[a 1], %w[b 2]])
    (10...whole.bytesize).each do |cut|
      assert_equal [%w[a 1]], each_pair(whole.byteslice(0, cut)), "cut at #{cut}"
    end
    assert_equal [], each_pair(length('a') + 'a' + [255, 255, 255, 255].pack('C*') + 'b')
    assert_equal [], each_pair(''.b)
  end

  def test_find_reads_names_only
    # Every CORS preflight sends this: the value "content-type" is not the Content-Type header.
    packed = pack_pairs([%w[access-control-request-headers content-type], ["x-a", "content-type\0"],
                         %w[content-type application/json], %w[content-type text/plain]])
    assert_equal 'application/json', Funcd::Headers.find(packed, 'content-type')
    assert_nil Funcd::Headers.find(pack_pairs([%w[x content-type]]), 'content-type')
    assert_equal "a\0b\r\n\xFF".b, Funcd::Headers.find(pack_pairs([['content-type', "a\0b\r\n\xFF".b]]), 'content-type')
  end

  def test_rack_header_values_keep_their_bytes
    # Rack splits a value on newlines into fields; any other byte stays in its value (funcd's
    # HTTP front refuses to send a NUL or CR).
    _, packed, = Funcd::Encode.result([302, { 'Location' => "/home\0Set-Cookie\0session=attacker\r" }, []])
    assert_equal [['Location', "/home\0Set-Cookie\0session=attacker\r"]], fields(packed)
    _, packed, = Funcd::Encode.result([200, { 'X-É' => 'ü', 'X-N' => 3 }, []])
    assert_equal [['X-É'.b, 'ü'.b], %w[X-N 3]], fields(packed)
  end
end

class RequestHeadersTest < Minitest::Test
  include Packing

  def test_header_bytes_reach_rack_as_webrick_gives_them
    # funcd-ruby packs a value as the bytes the client sent (Latin-1 é as E9, UTF-8 é as C3 A9);
    # WEBrick gave Rack those bytes, in a binary String.
    wire = "caf\xE9 n\xC3\xA9 \x80\xFF".b
    request = Funcd.request_class.new('GET', '/', pack_pairs([['x-latin', wire], ['x-latin', 'more']]), +'')
    assert_equal "caf\xE9 n\xC3\xA9 \x80\xFF, more".b, request.env['HTTP_X_LATIN']
    assert_equal Encoding::ASCII_8BIT, request.env['HTTP_X_LATIN'].encoding
    assert_equal Encoding::ASCII_8BIT, request.env['HTTP_X_LATIN'].dup.encoding
  end

  def test_a_header_valued_content_type_is_not_the_content_type
    headers = pack_pairs([%w[access-control-request-headers content-type], %w[content-type application/json]])
    request = Funcd.request_class.new('POST', '/', headers, +'{"a":1}')
    assert_equal 'application/json', request.content_type
    assert_equal 'application/json', request.media_type
    assert_equal 'content-type', request.headers['access-control-request-headers']
    assert_equal 'application/json', request.content_type, 'the same once the table is built'
    assert_nil Funcd.request_class.new('GET', '/', pack_pairs([%w[x-a content-type]]), +'').content_type
  end

  def test_values_keep_nul_cr_lf_and_ff
    value = "a\0b\r\nc\xFF".b
    request = Funcd.request_class.new('GET', '/', pack_pairs([['x-v', value], %w[x-after 1]]), +'')
    assert_equal value, request.headers['x-v']
    assert_equal '1', request.headers['x-after']
    assert_equal value, request.env['HTTP_X_V']
  end

  def test_kafka_facts_cannot_be_shifted_by_a_nul_in_the_key
    raw = pack_pairs([['funcd-kafka-topic', 'orders'], ['funcd-kafka-partition', '2'], ['funcd-kafka-offset', '41'],
                      ['funcd-kafka-key', "k\0funcd-kafka-topic\0spoofed"], ['funcd-kafka-header-trace', "a\0b"]])
    assert_equal({ key: "k\0funcd-kafka-topic\0spoofed", headers: { 'trace' => "a\0b" }, topic: 'orders', partition: 2, offset: 41 },
                 Funcd::Host.kafka_extensions(raw))
  end

  def test_a_json_post_with_a_cors_header_is_parsed
    namespace = Funcd::Host.load(File.join(__dir__, 'fixtures', 'handlers.rb'), 'echo')
    host = Funcd::Host.new(namespace, 'echo', {})
    headers = pack_pairs([%w[access-control-request-headers content-type], %w[content-type application/json]])
    host.answer(3, 'POST', '/', headers, +'{"a":1}')
    _, status, packed, body, error = Funcd::Native.next_reply
    assert_nil error
    assert_equal [200, '{"a":1}'], [status, body]
    assert_equal [%w[Content-Type application/json]], fields(packed)
  end
end
