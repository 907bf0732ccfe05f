# frozen_string_literal: true

require 'stringio'
require_relative 'headers'
require_relative 'lazy_gems'

module Funcd
  # A malformed query or form, found by request.params (Funcd::RackRequest); a handler that lets
  # it through is answered 400 with its message, as sinatra answered its BadRequest.
  class BadRequest < StandardError
    def http_status = 400
  end

  # What every request object of the glue is made of: the parts funcd-ruby hands over (method,
  # target, the headers packed as Funcd::Headers reads them, names lower-cased, and the body
  # bytes), kept as they are until a handler asks. Making one costs four assignments; the Rack
  # environment, the header table and the input are built on first use.
  module RequestParts
    def initialize(method, target, headers, body)
      @request_method = method
      @target = target
      @raw_headers = headers
      @raw_body = body
    end

    # Header names (lower-case) to values, repeats joined with ", " as WEBrick joins them; each
    # value is the bytes the client sent (funcd-ruby packs them so), a binary String, as WEBrick
    # gives it.
    def headers
      @headers ||= begin
        headers = {}
        Headers.each(@raw_headers) do |name, value|
          if name == 'funcd-peer'
            @peer = value
            next
          end
          headers[name] = headers.key?(name) ? "#{headers[name]}, #{value}".b : value
        end
        headers
      end
    end

    # The client's address (REMOTE_ADDR), which funcd-ruby hands over as a field of its own.
    def peer
      headers
      @peer
    end

    # The Rack environment, as WEBrick's Rack handler (kubeless's server) builds it.
    def env
      @env ||= RackEnv.build(@request_method, @target, headers, @raw_body, peer)
    end

    # The body as Rack's input: a binary StringIO, rewound at every call so that reading it again
    # (kubeless read it once for event[:data]) still gives the whole body.
    def body
      input = env['rack.input']
      input.rewind if input.respond_to?(:rewind)
      input
    end

    # The media type (lower-case, no parameters) of the first Content-Type, found without
    # building the header table or the environment: the glue asks it on every call.
    def funcd_media_type
      type = @env ? @env['CONTENT_TYPE'] : Headers.find(@raw_headers, 'content-type')
      return nil if type.nil? || type.empty?

      # Rack's split(/\s*[;,]\s*/, 2).first, without a regexp on every call: the part before the
      # first ; or , with the blanks before it dropped.
      semicolon = type.index(';')
      comma = type.index(',')
      cut = comma && (semicolon.nil? || comma < semicolon) ? comma : semicolon
      type = type[0, cut].sub(TRAILING_BLANKS, '') if cut
      type.downcase
    end

    TRAILING_BLANKS = /\s+\z/.freeze
  end

  # The Rack environment WEBrick and Rack's WEBrick handler give an application for a request
  # (rack/handler/webrick.rb over WEBrick::HTTPRequest#meta_vars), value by value, with the same
  # String encodings. What funcd does not do: hijacking (rack.hijack? is false).
  module RackEnv
    DEFAULT_PORTS = { 'http' => 80, 'https' => 443 }.freeze
    # Rack::VERSION, without loading Rack for it.
    RACK_VERSION = [1, 3].freeze

    module_function

    def build(method, target, headers, raw_body, peer = nil)
      path, question, query = target.partition('?')
      scheme, host, port = authority(headers)
      # Without a '?', Rack's handler fills in a (UTF-8) ''; WEBrick's own is US-ASCII.
      query_string = question.empty? ? +'' : query.encode(Encoding::US_ASCII, invalid: :replace, undef: :replace)
      env = {
        'GATEWAY_INTERFACE' => 'CGI/1.1',
        'PATH_INFO' => path.dup,
        'QUERY_STRING' => query_string,
        'REQUEST_METHOD' => method.b,
        'REQUEST_URI' => request_uri(scheme, host, port, target),
        'SCRIPT_NAME' => ''.b,
        'SERVER_NAME' => host&.dup&.force_encoding(Encoding::UTF_8),
        'SERVER_PORT' => port.to_s,
        'SERVER_PROTOCOL' => 'HTTP/1.1',
        'SERVER_SOFTWARE' => 'funcd',
        # WEBrick (with its reverse lookups off, as Rack's handler runs it) gives the address twice.
        'REMOTE_ADDR' => peer&.b,
        'REMOTE_HOST' => peer&.b
      }
      length = headers['content-length']
      env['CONTENT_LENGTH'] = length if length.to_i.positive?
      type = headers['content-type']
      env['CONTENT_TYPE'] = type.dup if type
      headers.each do |name, value|
        next if name == 'content-type' || name == 'content-length'

        env["HTTP_#{name.tr('-', '_').upcase}"] = value
      end
      env.delete_if { |_, value| value.nil? }
      input = StringIO.new(raw_body)
      input.set_encoding(Encoding::BINARY)
      env.update(
        'rack.version' => defined?(::Rack::VERSION) ? ::Rack::VERSION : RACK_VERSION,
        'rack.input' => input,
        'rack.errors' => $stderr,
        'rack.multithread' => true,
        'rack.multiprocess' => false,
        'rack.run_once' => false,
        'rack.url_scheme' => 'http',
        'rack.hijack?' => false
      )
      env['HTTP_VERSION'] ||= env['SERVER_PROTOCOL']
      env['REQUEST_PATH'] = path.b
      env
    end

    HOST_LINE = /\A(\[[0-9a-fA-F:.]+\]|[^:\[\]]*)(?::(\d+))?\z/.freeze

    # [scheme, host, port] as WEBrick takes them: X-Forwarded-Proto/-Host first, else Host.
    def authority(headers)
      scheme = headers['x-forwarded-proto']&.split(',', 2)&.first || 'http'
      if (forwarded = headers['x-forwarded-host'])
        host_port = forwarded.split(',', 2).first.to_s
        if host_port =~ /\A(\[[0-9a-fA-F:]+\])(?::(\d+))?\z/
          host = Regexp.last_match(1)
          port = Regexp.last_match(2)
        else
          host, port = host_port.split(':', 2)
        end
        port = (port || (scheme == 'https' ? 443 : 80)).to_i
      elsif (line = headers['host']) && (match = HOST_LINE.match(line))
        host = match[1].downcase
        port = match[2]&.to_i
      end
      port ||= DEFAULT_PORTS[scheme.downcase]
      [scheme, host, port]
    end

    def request_uri(scheme, host, port, target)
      shown_port = port && port != DEFAULT_PORTS[scheme.downcase] ? ":#{port}" : ''
      "#{scheme.downcase}://#{host}#{shown_port}#{target}".force_encoding(Encoding::UTF_8)
    end
  end

  # The request a handler finds in event[:extensions][:request] when Rack cannot be loaded (see
  # Funcd.request_class): a hand-made stand-in for the Rack calls kubeless ruby handlers use most
  # (env, body.read, params, request_method, path_info, get_header); its params do not nest.
  class Request
    include RequestParts

    def request_method = env['REQUEST_METHOD']
    def path_info = env['PATH_INFO']
    def query_string = env['QUERY_STRING']

    def get_header(name)
      env[name]
    end

    def has_header?(name)
      env.key?(name)
    end

    def content_type
      type = env['CONTENT_TYPE']
      type.nil? || type.empty? ? nil : type
    end

    def media_type
      funcd_media_type
    end

    def content_length
      env['CONTENT_LENGTH']
    end

    def path
      env['SCRIPT_NAME'] + env['PATH_INFO']
    end

    def fullpath
      query_string.empty? ? path : "#{path}?#{query_string}"
    end

    def host
      env['SERVER_NAME']
    end

    def url
      "http://#{headers['host'] || 'localhost'}#{@target}"
    end

    def user_agent
      env['HTTP_USER_AGENT']
    end

    # Query and form fields (string keys; a repeated key keeps its last value, as Rack does).
    def params
      @params ||= self.GET.merge(self.POST)
    end

    def GET
      decode_form(query_string)
    end

    def POST
      media_type == 'application/x-www-form-urlencoded' ? decode_form(@raw_body) : {}
    end

    def [](key)
      params[key.to_s]
    end

    %w[get post put patch delete head options].each do |verb|
      define_method("#{verb}?") { request_method == verb.upcase }
    end

    private

    def decode_form(text)
      return {} if text.nil? || text.empty?

      require 'uri'
      URI.decode_www_form(text.dup.force_encoding(Encoding::UTF_8)).to_h
    rescue ArgumentError
      {}
    end
  end

  class << self
    # The class of the request objects handlers get: Funcd::RackRequest, a real Rack::Request
    # (the Rack the handler's own code loaded, else one found by .load_rack), or, without any
    # Rack, the hand-made Funcd::Request, said once on stderr.
    def request_class
      @request_class ||= load_rack_request || begin
        warn 'funcd: rack is not installed (Debian: ruby-rack, or gem install rack): the request is a ' \
             'stand-in whose params do not nest and whose calls are few'
        Request
      end
    end

    # Where the image bundles Rack's library (the Dockerfile copies Debian's ruby-rack there).
    VENDOR = File.expand_path('../vendor', __dir__)
    # Where Debian's ruby-rack puts it: a gem only RubyGems would find.
    DEBIAN_GEMS = '/usr/share/rubygems-integration/all/gems'

    def load_rack_request
      load_rack unless defined?(::Rack::Request)
      return nil unless defined?(::Rack::Request::Env)

      require_relative 'rack_request'
      RackRequest
    rescue LoadError
      nil
    end

    # Where RubyGems is in already (a bundle's gem paths, a handler using gems), Rack is what
    # `require 'rack'` gives, as for the handler's own code: a bundled Rack wins. Otherwise
    # RubyGems comes last, because loading it is 35-40 ms of a cold start (see LazyGems): the
    # image's copy first, then the newest Debian ruby-rack, then the load path and any gem.
    def load_rack
      gems = LazyGems.loaded?
      return if gems && require_rack(nil)

      debian = Dir[File.join(DEBIAN_GEMS, 'rack-*', 'lib')].sort_by do |lib|
        lib[/rack-([\d.]+)/, 1].to_s.split('.').map(&:to_i)
      end
      [VENDOR, *debian.reverse].each do |lib|
        return if File.file?(File.join(lib, 'rack.rb')) && require_rack(lib)
      end
      require_rack(nil) unless gems # tried first already
    end

    # Requires Rack (from `lib`, added to the load path, when given); false if it is not there.
    def require_rack(lib)
      $LOAD_PATH.push(lib) if lib && !$LOAD_PATH.include?(lib)
      require 'rack'
      require 'rack/request'
      true
    rescue LoadError
      $LOAD_PATH.delete(lib) if lib
      false
    end
  end
end
