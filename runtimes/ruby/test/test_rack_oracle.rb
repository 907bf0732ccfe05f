# frozen_string_literal: true

# The oracle for the request handlers get: a seeded stream of 300 generated HTTP requests is sent
# over loopback to a real WEBrick serving through Rack's WEBrick handler (kubeless's ruby runtime
# ran sinatra on webrick), whose env becomes a real Sinatra::Request; the same request, as
# funcd's HTTP front hands it to funcd-ruby (method, target, headers with lower-case names and
# the values' bytes as sent, body), becomes the glue's request. Every call
# a handler can make without sinatra's app is made on both, in the same order, and the answers
# (values, classes, String encodings, raised errors) must be equal, as must the env entries and
# event[:data]. What is left is deliberate and listed in DELIBERATE (and the README).
#
# Needs Debian's ruby-rack, ruby-sinatra and ruby-webrick (scripts/install-deps).

require 'minitest/autorun'
require 'json'
require 'socket'
require 'stringio'
require 'tempfile'
require 'webrick'
require 'rack'
require 'rack/handler/webrick'
require 'sinatra/base'
require_relative '../funcd/host'
require_relative 'packing'
require_relative 'recorder'

class RackOracleTest < Minitest::Test
  include Packing

  SEED = 1515
  COUNT = 300

  # Env entries that differ on purpose: funcd is not WEBrick and does not hijack; a leading // of
  # the path is kept (WEBrick folds it into one /).
  ENV_NOT_COMPARED = %w[SERVER_SOFTWARE rack.hijack rack.hijack? rack.hijack_io rack.input rack.errors].freeze

  # MARK: - The server the original ran on

  class << self
    attr_reader :port, :captured

    def start_webrick
      return if @server

      @captured = Queue.new
      app = lambda do |env|
        @captured << env
        [200, { 'Content-Type' => 'text/plain' }, ['ok']]
      end
      @server = WEBrick::HTTPServer.new(Port: 0, BindAddress: '127.0.0.1', Logger: WEBrick::Log.new(File::NULL),
                                        AccessLog: [])
      @server.mount '/', Rack::Handler::WEBrick, app
      @port = @server.config[:Port]
      Thread.new { @server.start }
    end
  end

  # The env WEBrick and Rack made for `raw` (the bytes of one request), or nil when WEBrick
  # refused it.
  def webrick_env(raw)
    self.class.start_webrick
    socket = TCPSocket.new('127.0.0.1', self.class.port)
    socket.write(raw)
    socket.close_write
    answer = socket.read
    socket.close
    return nil unless answer.start_with?('HTTP/1.1 200')

    self.class.captured.pop
  end

  # MARK: - Generated requests

  Generated = Struct.new(:method, :target, :headers, :body, :chunked, keyword_init: true) do
    # The bytes a client sends.
    def raw
      lines = ["#{method} #{target} HTTP/1.1"]
      headers.each { |name, value| lines << "#{name}: #{value}".b }
      if chunked
        lines << 'Transfer-Encoding: chunked'
      elsif body
        lines << "Content-Length: #{body.bytesize}"
      end
      lines << 'Connection: close'
      head = "#{lines.map(&:b).join("\r\n")}\r\n\r\n".b
      return head unless body

      return head + body.b unless chunked

      pieces = body.b.scan(/.{1,7}/mn)
      head + pieces.map { |piece| "#{piece.bytesize.to_s(16)}\r\n#{piece}\r\n" }.join.b + "0\r\n\r\n"
    end

    # [name, value] pairs as funcd-ruby hands them to the glue: names lower-case, each value the
    # bytes the client sent.
    def front_headers
      all = headers.dup
      if chunked
        all << ['Transfer-Encoding', 'chunked']
      elsif body
        all << ['Content-Length', body.bytesize.to_s]
      end
      all << %w[Connection close]
      all.map { |name, value| [name.downcase, value.b] }
    end
  end

  class Generator
    def initialize(seed)
      @random = Random.new(seed)
    end

    def pick(list) = list[@random.rand(list.size)]
    def chance(probability) = @random.rand < probability
    def word = pick(%w[a b x id name user q tag list o p key k1 v caf%C3%A9 sp%20ace plus+sign])

    PATHS = ['/', '/a', '/a/b/c', '/a%20b', '/x/%2F/y', '/caf%C3%A9', '/trailing/', '/p;param', '/a.json', '//double/slash'].freeze

    def query_pair
      case @random.rand(10)
      when 0 then "#{word}[#{word}]=#{word}"
      when 1 then "#{word}[]=#{word}"
      when 2 then "o[p][q]=#{word}"
      when 3 then "deep[a][b][c][]=#{word}"
      when 4 then "#{word}="
      when 5 then word
      when 6 then "arr[][k]=#{word}"
      else "#{word}=#{word}"
      end
    end

    def query
      return nil if chance(0.25)

      pairs = Array.new(@random.rand(1..6)) { query_pair }
      pairs << pairs.first if chance(0.2) # a repeated key
      pairs << 'a=1&a[b]=2' if chance(0.04) # a key both a value and a Hash: Rack raises
      pairs.join(pick(['&', '&', '&', ';']))
    end

    ACCEPTS = ['*/*', 'text/html', 'application/json', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
               'application/json;q=0.5, text/*;q=0.7', 'text/plain; charset=utf-8, application/json;version=2',
               'image/*', 'application/vnd.api+json', ''].freeze
    AGENTS = ['curl/8.0', 'Mozilla/5.0 (X11; Linux x86_64)', 'kubeless-test'].freeze
    COOKIES = ['a=1', 'session=abc; theme=dark', 'k=v%20w; k=second', 'empty=', 'q="quoted"'].freeze

    def headers
      headers = [['Host', pick(['example.com', 'example.com:8080', 'localhost:8090', 'svc.ns.svc.cluster.local', '127.0.0.1:80'])]]
      headers << [pick(%w[User-Agent user-agent USER-AGENT]), pick(AGENTS)] if chance(0.6)
      headers << ['Accept', pick(ACCEPTS)] if chance(0.6)
      headers << ['Cookie', pick(COOKIES)] if chance(0.3)
      headers << ['Cookie', pick(COOKIES)] if chance(0.1)
      headers << ['Referer', 'http://example.com/from?x=1'] if chance(0.2)
      headers << ['X-Requested-With', 'XMLHttpRequest'] if chance(0.15)
      headers << ['X-Forwarded-Host', pick(['proxy.example.com', 'proxy.example.com:8443, inner'])] if chance(0.08)
      headers << ['X-Forwarded-Proto', pick(%w[https http])] if chance(0.08)
      headers << ['X-Forwarded-For', pick(['203.0.113.7', '10.0.0.1, 198.51.100.2'])] if chance(0.1)
      headers << ['X-Latin', "caf\xE9 \xFCber".b] if chance(0.15) # latin-1 bytes
      headers << ['X-Utf8', "n\xC3\xA9".b] if chance(0.15) # UTF-8 bytes
      headers << ['X-Obs', "\x80\xFF\xA0end".b] if chance(0.05)
      headers << %w[X-Repeat one] << %w[x-repeat two] if chance(0.15)
      headers << ['Event-Id', "id-#{@random.rand(1000)}"] if chance(0.1)
      headers
    end

    JSONS = ['{"a":1,"b":[true,null,"x"]}', '[1,2,3]', '"text"', '{"nested":{"k":"é"}}'].freeze
    JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'Application/JSON'].freeze

    def multipart
      boundary = "----funcd#{@random.rand(10**8)}"
      parts = Array.new(@random.rand(1..4)) do
        name = pick(%w[field user[name] tags[] doc file[] meta[a][b]])
        if chance(0.4)
          content = @random.bytes(@random.rand(0..200))
          "--#{boundary}\r\nContent-Disposition: form-data; name=\"#{name}\"; filename=\"#{pick(%w[a.bin photo.jpg notes.txt])}\"\r\n" \
            "Content-Type: #{pick(%w[application/octet-stream image/jpeg text/plain])}\r\n\r\n".b + content + "\r\n".b
        else
          "--#{boundary}\r\nContent-Disposition: form-data; name=\"#{name}\"\r\n\r\n#{pick(%w[value 1 é]).b}\r\n".b
        end
      end
      ["multipart/form-data; boundary=#{boundary}", parts.join.b + "--#{boundary}--\r\n".b]
    end

    # [content type or nil, body or nil]
    def body
      case @random.rand(13)
      when 0, 1 then [nil, nil]
      when 2 then [pick([nil, 'text/plain']), '']
      when 3 then [pick(JSON_TYPES), pick(JSONS)]
      when 4 then ['application/vnd.api+json', pick(JSONS)]
      when 5 then [pick(['text/plain', 'text/plain; charset=utf-8']), pick(['héllo wörld', 'plain', "line1\nline2"])]
      when 6 then [pick(['text/plain', 'application/octet-stream']), @random.bytes(@random.rand(1..300))]
      when 7, 8
        form = Array.new(@random.rand(1..5)) { query_pair }.join('&')
        form += '&bad=%zz' if chance(0.1)
        [pick(['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8']), form]
      when 9, 10 then multipart
      when 11 then [nil, 'k=v&x[y]=z'] # a POST without a Content-Type is a form to Rack
      when 12 then [pick(['application/xml', 'Text/XML ;charset=x', 'text/a , text/b', 'text/plain\t;q=1']), '<a>1</a>']
      end
    end

    def request
      method = pick(%w[GET GET GET POST POST POST PUT PATCH DELETE OPTIONS LINK UNLINK])
      type, body = %w[GET OPTIONS].include?(method) && chance(0.7) ? [nil, nil] : self.body
      headers = self.headers
      headers << [pick(%w[Content-Type content-type]), type] if type
      query = self.query
      target = pick(PATHS)
      target += "?#{query}" if query
      Generated.new(method: method, target: target, headers: headers, body: body, chunked: body && !body.empty? && chance(0.1))
    end
  end

  # MARK: - Comparing

  RACK_CALLS = %i[GET POST accept_encoding accept_language authority base_url content_charset content_length
                  content_type cookies delete? form_data? forwarded_authority forwarded_for forwarded_port fullpath
                  get? head? host host_authority host_with_port hostname ip link? media_type media_type_params
                  options? params parseable_data? patch? path path_info port post? put? query_string referer
                  referrer request_method scheme script_name server_authority server_name server_port ssl? trace?
                  unlink? url user_agent xhr?].freeze
  SINATRA_CALLS = [[:accept], [:preferred_type], [:preferred_type, 'text/html', 'application/json'],
                   [:preferred_type, ['application/json', 'text/*']], [:accept?, 'application/json'],
                   [:accept?, 'text/html'], [:accept?, 'image/png'], [:safe?], [:idempotent?], [:forwarded?],
                   [:secure?]].freeze
  CALLS = [[:body_read], *RACK_CALLS.map { |name| [name] }, *SINATRA_CALLS, [:trusted_proxy?, '10.0.0.1'],
           [:values_at, 'a', 'o'], [:body_read]].freeze

  # A value reduced to what must be equal: classes by name (funcd's own classes named as
  # sinatra's), Strings with their encoding, uploaded files by their content.
  def shape(value)
    case value
    when String then [:String, value.encoding.name, value.b]
    when Hash then [value.class == Hash ? :Hash : value.class.name, value.map { |key, item| [shape(key), shape(item)] }]
    when Array then [:Array, value.map { |item| shape(item) }]
    when Tempfile, StringIO, File
      value.rewind
      [:IO, value.class.name, value.read]
    when Sinatra::Request::AcceptEntry, Funcd::RackRequest::AcceptEntry
      [:AcceptEntry, value.to_s, value.to_s(true), shape(value.params), value.priority]
    when Exception then [:raised, value.class.name.sub('Funcd::BadRequest', 'Sinatra::BadRequest'), value.message]
    else [value.class.name, value]
    end
  end

  def answer(request, call, *arguments)
    result = call == :body_read ? request.body.tap(&:rewind).read : request.public_send(call, *arguments)
    shape(result)
  rescue StandardError => e
    shape(e)
  end

  # event[:data] as kubeless's before filter made it from the env.
  def kubeless_data(env)
    length = env['CONTENT_LENGTH']
    return '' unless length && length > '0'

    body = env['rack.input'].tap(&:rewind).read
    env['CONTENT_TYPE'] == 'application/json' ? JSON.parse(body) : body
  end

  def funcd_data(request, body)
    host = Funcd::Host.allocate
    host.decode(+body, request.funcd_media_type)
  rescue JSON::ParserError => e
    e
  end

  # Why the answers to `call` may differ for `generated`, or nil when they must not.
  def deliberate(generated, call)
    if generated.target.start_with?('//') && %i[path path_info fullpath url].include?(call)
      return 'a leading // of the path is kept'
    end

    nil
  end

  def test_funcd_request_answers_as_sinatra_on_webrick_does
    assert_equal 'Funcd::RackRequest', Funcd.request_class.name

    generator = Generator.new(SEED)
    compared = 0
    refused = 0
    calls = 0
    differences = Hash.new(0)
    COUNT.times do |index|
      generated = generator.request
      env = webrick_env(generated.raw)
      if env.nil?
        refused += 1
        next
      end
      body = generated.body.to_s.b
      ours = Funcd.request_class.new(generated.method.dup.force_encoding(Encoding::US_ASCII),
                                     generated.target.dup.force_encoding(Encoding::UTF_8),
                                     pack_pairs(generated.front_headers + [['funcd-peer', '127.0.0.1']]), body.dup)
      theirs = Sinatra::Request.new(env)
      where = "request #{index}: #{generated.raw.inspect[0, 600]}"
      # The media type the glue finds for event[:data] without building the env, as Rack's.
      assert_equal theirs.media_type, ours.funcd_media_type, "media type of #{where}"

      # The env, before any call adds to it.
      skipped = ENV_NOT_COMPARED
      if generated.target.start_with?('//')
        skipped += %w[PATH_INFO REQUEST_PATH REQUEST_URI]
        differences['env: a leading // of the path is kept'] += 1
      end
      expected_env = env.reject { |key, _| skipped.include?(key) }.sort.to_h
      actual_env = ours.env.reject { |key, _| skipped.include?(key) }.sort.to_h
      assert_equal shape(expected_env), shape(actual_env), "env of #{where}"
      assert_equal shape(env['rack.input'].read), shape(ours.env['rack.input'].read), "rack.input of #{where}"

      # event[:data]
      expected_data = kubeless_data(env)
      actual_data = funcd_data(ours, body)
      type = env['CONTENT_TYPE'].to_s
      if generated.chunked
        differences['event[:data]: a chunked body is given (kubeless gave \'\')'] += 1 if shape(expected_data) != shape(actual_data)
      elsif type.downcase.start_with?('application/json') && type != 'application/json'
        differences['event[:data]: every application/json media type is parsed'] += 1
        assert_equal JSON.parse(body), actual_data, "event[:data] of #{where}"
      else
        assert_equal shape(expected_data), shape(actual_data), "event[:data] of #{where}"
      end

      CALLS.each do |call, *arguments|
        expected = answer(theirs, call, *arguments)
        actual = answer(ours, call, *arguments)
        calls += 1
        reason = deliberate(generated, call)
        if reason
          differences["#{call}: #{reason}"] += 1 if expected != actual
        else
          assert_equal expected, actual, "#{call}(#{arguments.map(&:inspect).join(', ')}) of #{where}"
        end
      end
      compared += 1
    end
    assert_operator compared, :>=, COUNT * 0.9, "WEBrick refused #{refused} of #{COUNT}"
    puts "\nrack oracle: #{compared} requests, #{calls} calls compared (#{refused} refused by WEBrick); deliberate differences:"
    differences.each { |reason, count| puts "  #{reason} (#{count})" }
  end
end
