# frozen_string_literal: true

# The Ruby glue on its own, in a plain `ruby` process: loading, events, results, the Rack-like
# request, and timeouts delivered by Thread#raise. Funcd::Native (C in funcd-ruby) is replaced by
# a recorder of replies; the end-to-end tests (Tests/FuncdEndToEndTests/RubyTests) run the same
# glue inside funcd-ruby.

require 'minitest/autorun'
require_relative '../funcd/host'
require_relative 'packing'
require_relative 'recorder'

class HostTest < Minitest::Test
  include Packing

  FIXTURES = File.join(__dir__, 'fixtures')
  CONTEXT = { 'function-name' => 'f', 'timeout' => 3, 'runtime' => 'ruby3.1', 'memory-limit' => nil }.freeze

  def host(handler)
    namespace = Funcd::Host.load(File.join(FIXTURES, 'handlers.rb'), handler)
    Funcd::Host.new(namespace, handler, CONTEXT)
  end

  def answer(handler, body = '', headers = '', method: 'GET', target: '/')
    host(handler).answer(1, method, target, headers, +body)
    Funcd::Native.next_reply
  end

  def test_json_data_is_parsed_and_answered_as_json
    _, status, headers, body, error = answer('echo', '{"a":[1]}', pack('content-type' => 'application/json; charset=utf-8'))
    assert_equal 200, status
    assert_equal [%w[Content-Type application/json]], fields(headers)
    assert_equal '{"a":[1]}', body
    assert_nil error
  end

  def test_other_bodies_are_utf8_strings_and_empty_is_empty
    assert_equal 'héllo', answer('echo', 'héllo', pack('content-type' => 'text/plain'))[3].force_encoding('UTF-8')
    assert_equal '', answer('echo')[3]
  end

  def test_a_binary_body_is_a_binary_string_as_rack_input_gave_it
    bytes = "\xFF\xFEab\x00\xE9".b
    namespace = Module.new do
      def self.kind(event, _context)
        data = event[:data]
        [data.encoding.name, data.valid_encoding?, data.split('a').size, event[:extensions][:request].body.read.encoding.name].join(' ')
      end
    end
    host = Funcd::Host.new(namespace, 'kind', CONTEXT)
    host.answer(2, 'POST', '/', pack('content-type' => 'text/plain'), bytes.dup)
    assert_equal 'ASCII-8BIT true 2 ASCII-8BIT', Funcd::Native.next_reply[3]
  end

  def test_a_malformed_form_is_a_400_as_sinatra_answered_it
    namespace = Module.new do
      def self.params(event, _context) = event[:extensions][:request].params.to_s
    end
    host = Funcd::Host.new(namespace, 'params', CONTEXT)
    host.answer(4, 'POST', '/', pack('content-type' => 'application/x-www-form-urlencoded'), +'a=%zz')
    _, status, headers, body, error = Funcd::Native.next_reply
    assert_equal 400, status
    assert_equal [['Content-Type', 'text/html;charset=utf-8']], fields(headers)
    assert_equal 'Invalid query parameters: invalid %-encoding (%zz)', body
    assert_nil error
    host.answer(5, 'GET', '/?a=1&a[b]=2', '', +'')
    assert_equal 400, Funcd::Native.next_reply[1]
  end

  def test_invalid_json_is_a_400
    _, status, _, body, = answer('echo', '{nope', pack('content-type' => 'application/json'))
    assert_equal 400, status
    assert_match(/not valid JSON/, body)
  end

  def test_helpers_in_the_file_are_callable_from_the_handler
    assert_equal 'helped', answer('uses_helper')[3]
  end

  def test_an_exception_is_a_500_with_the_backtrace
    _, status, _, body, error = answer('fails')
    assert_equal 500, status
    assert_equal "Internal Server Error\n", body
    assert_match(/broken \(ArgumentError\)/, error)
  end

  def test_a_timeout_raised_into_the_running_handler_answers_408_at_once
    subject = host('sleeper')
    worker = Thread.new { Thread.handle_interrupt(Funcd::CallTimeout => :never) { subject.answer(7, 'GET', '/', '', +'') } }
    Thread.pass until subject.instance_variable_get(:@running)[7]
    started = Time.now
    worker.raise(Funcd::CallTimeout.new(7))
    id, status, _, _, error = Funcd::Native.next_reply
    worker.join
    assert_equal [7, 408, 'timeout'], [id, status, error]
    assert_operator Time.now - started, :<, 1
  end

  def test_load_failures_are_one_line_naming_file_and_cause
    error = assert_raises(Funcd::LoadFailure) { Funcd::Host.load(File.join(FIXTURES, 'missing.rb'), 'h') }
    assert_match(/missing\.rb: no such file/, error.message)
    error = assert_raises(Funcd::LoadFailure) { Funcd::Host.load(File.join(FIXTURES, 'handlers.rb'), 'nope') }
    assert_match(/no function 'nope'/, error.message)
    error = assert_raises(Funcd::LoadFailure) { Funcd::Host.load(File.join(FIXTURES, 'bad_syntax.rb'), 'handler') }
    assert_match(/bad_syntax\.rb: SyntaxError/, error.message)
    error = assert_raises(Funcd::LoadFailure) { Funcd::Host.load(File.join(FIXTURES, 'raises.rb'), 'handler') }
    assert_match(%r{raises\.rb:1: RuntimeError: at load}, error.message)
  end

  def test_two_files_never_share_functions
    first = Funcd::Host.load(File.join(FIXTURES, 'handlers.rb'), 'echo')
    second = Funcd::Host.load(File.join(FIXTURES, 'handlers.rb'), 'echo')
    refute_same first, second
    refute Object.private_method_defined?(:helper), 'top-level defs must not leak into Object'
  end
end

class StreamTest < Minitest::Test
  include Packing

  def host(handler)
    Funcd::Host.new(Funcd::Host.load(File.join(HostTest::FIXTURES, 'handlers.rb'), handler), handler, HostTest::CONTEXT)
  end

  def replies(count)
    Array.new(count) { Funcd::Native.next_reply }
  end

  def test_a_rack_body_that_yields_slowly_goes_out_as_it_yields
    host('slow_body').answer(11, 'GET', '/', '', +'')
    head, second, last, finish = replies(4)
    assert_equal [:head, 11, 201, [%w[Content-Type text/plain]], 'first'], [*head[0, 3], fields(head[3]), head[4]]
    assert_equal [:chunk, 11, 'second'], second[0, 3]
    assert_equal [:chunk, 11, 'last'], last[0, 3]
    assert_equal [:finish, 11, '', nil], finish[0, 4]
    assert_operator second.last - head.last, :>=, 0.25, 'the head went out before the body slept'
  end

  def test_a_failure_mid_stream_breaks_the_answer_off_with_the_backtrace
    host('breaks_mid_stream').answer(12, 'GET', '/', '', +'')
    head, finish = replies(2)
    assert_equal [:head, 12, 200, 'partial'], [*head[0, 3], head[4]]
    assert_equal [:finish, 12, ''], finish[0, 3]
    assert_match(/source went away \(IOError\)/, finish[3])
  end

  def test_the_deadline_mid_stream_breaks_the_answer_off
    subject = host('stalls_mid_stream')
    worker = Thread.new { Thread.handle_interrupt(Funcd::CallTimeout => :never) { subject.answer(13, 'GET', '/', '', +'') } }
    head = Funcd::Native.next_reply
    assert_equal [:head, 13], head[0, 2]
    Thread.pass until worker.status == 'sleep'
    started = Time.now
    worker.raise(Funcd::CallTimeout.new(13))
    finish = Funcd::Native.next_reply
    worker.join
    assert_equal [:finish, 13, '', 'timeout'], finish[0, 4]
    assert_operator Time.now - started, :<, 1
  end

  def test_arrays_are_answered_whole_and_a_body_yielding_nothing_too
    host('yields_nothing').answer(14, 'GET', '/', '', +'')
    id, status, headers, body, error = Funcd::Native.next_reply
    assert_equal [14, 204, [%w[X-Empty yes]], '', nil], [id, status, fields(headers), body, error]
  end

  def test_a_returned_enumerator_is_streamed_as_html
    host('bare_enumerator').answer(15, 'GET', '/', '', +'')
    head, second, finish = replies(3)
    assert_equal [:head, 15, 200, Funcd::Encode::HTML, 'a'], head[0, 5]
    assert_equal [:chunk, 15, 'b'], second[0, 3]
    assert_equal [:finish, 15, '', nil], finish[0, 4]
  end
end

class KafkaTest < Minitest::Test
  include Packing
  def test_kafka_messages_get_their_facts_under_extensions
    raw = pack('funcd-kafka-topic' => 'orders', 'funcd-kafka-partition' => '2', 'funcd-kafka-offset' => '41',
               'funcd-kafka-key' => 'k', 'funcd-kafka-header-trace' => 'abc')
    assert_equal({ key: 'k', headers: { 'trace' => 'abc' }, topic: 'orders', partition: 2, offset: 41 },
                 Funcd::Host.kafka_extensions(raw))
  end
end

class EncodeTest < Minitest::Test
  include Packing
  def test_results_as_sinatra_sent_them_and_funcd_adds
    assert_equal [200, Funcd::Encode::HTML, 'text'], Funcd::Encode.result('text')
    assert_equal [200, '', ''], Funcd::Encode.result(nil)
    assert_equal [200, Funcd::Encode::JSON_TYPE, '{"a":1}'], Funcd::Encode.result({ a: 1 })
    assert_equal [200, Funcd::Encode::JSON_TYPE, '[1,2]'], Funcd::Encode.result([1, 2])
    assert_equal [201, pack_pairs([%w[X-A b], %w[X-A c]]), 'made'], Funcd::Encode.result([201, { 'X-A' => "b\nc" }, %w[ma de]])
    assert_equal [200, Funcd::Encode::HTML, '42'], Funcd::Encode.result(42)
  end
end

class RequestTest < Minitest::Test
  extend Packing
  HEADERS = pack_pairs([%w[host example.com:8080], %w[content-type application/x-www-form-urlencoded], %w[x-a 1], %w[x-a 2]])

  def request(kind = Funcd.request_class)
    kind.new('POST', '/p/q?x=1&y=%20', HEADERS, +'k=v')
  end

  def test_it_is_a_rack_request_and_nests_as_rack_does
    subject = Funcd.request_class.new('GET', '/?o[p][q]=deep&arr[]=1&arr[]=2', HEADERS, +'')
    assert_kind_of Rack::Request, subject
    assert_equal({ 'o' => { 'p' => { 'q' => 'deep' } }, 'arr' => %w[1 2] }, subject.params)
    assert_equal 'http://example.com:8080/?o[p][q]=deep&arr[]=1&arr[]=2', subject.url
  end

  def test_without_rack_the_stand_in_serves_and_says_so_once
    glue = File.expand_path('../funcd/host.rb', __dir__)
    # Started as funcd-ruby starts Ruby, with a require that finds no Rack wherever it is.
    hide_rack = 'module Kernel; alias_method :test_require, :require; ' \
                'def require(path) = path.start_with?("rack") ? raise(LoadError, path) : test_require(path); ' \
                'private :require; end; '
    script = "#{hide_rack}require #{glue.dump}; 2.times { Funcd.request_class }; " \
             'r = Funcd.request_class.new("GET", "/?a=1", "", +""); print r.class, " ", r.params'
    output = IO.popen([RbConfig.ruby, '--disable-gems', '-e', script], err: %i[child out], &:read)
    lines = output.lines
    assert_equal 2, lines.size, output
    assert_match(/\Afuncd: rack is not installed \(Debian: ruby-rack, or gem install rack\)/, lines.first)
    assert_equal 'Funcd::Request {"a"=>"1"}', lines.last
  end

  def test_rack_env
    env = request.env
    assert_equal 'POST', env['REQUEST_METHOD']
    assert_equal '/p/q', env['PATH_INFO']
    assert_equal 'x=1&y=%20', env['QUERY_STRING']
    assert_equal 'application/x-www-form-urlencoded', env['CONTENT_TYPE']
    assert_equal '1, 2', env['HTTP_X_A']
    assert_equal 'example.com', env['SERVER_NAME']
    assert_equal '8080', env['SERVER_PORT']
    assert_equal 'k=v', env['rack.input'].read
  end

  def test_sinatra_calls
    subject = request
    assert_equal({ 'x' => '1', 'y' => ' ', 'k' => 'v' }, subject.params)
    assert_equal 'v', subject[:k]
    assert_equal 'k=v', subject.body.read
    assert_equal 'k=v', subject.body.read, 'body is rewound for every reader'
    assert_equal '1, 2', subject.get_header('HTTP_X_A')
    assert subject.post?
    assert_equal 'example.com', subject.host
  end
end
