# frozen_string_literal: true

require 'stringio'
require 'uri'
require_relative 'headers'

module Funcd
  # The request a handler finds in event[:extensions][:request]: the Rack/Sinatra calls that
  # kubeless ruby handlers use (env, body.read, params, request_method, path_info, get_header),
  # built lazily from what the server handed over: method, target, the headers packed as
  # Funcd::Headers reads them (names lower-cased) and the body bytes.
  class Request
    attr_reader :request_method, :path_info, :query_string

    def initialize(method, target, headers, body)
      @request_method = method
      path, _, query = target.partition('?')
      @path_info = path
      @query_string = query
      @target = target
      @raw_headers = headers
      @raw_body = body
    end

    # Header names (lower-case) to values; repeats joined with ", ".
    def headers
      @headers ||= begin
        headers = {}
        Headers.each(@raw_headers) do |name, value|
          headers[name] = headers.key?(name) ? "#{headers[name]}, #{value}" : value
        end
        headers
      end
    end

    # The Rack environment: REQUEST_METHOD, PATH_INFO, QUERY_STRING, CONTENT_TYPE,
    # CONTENT_LENGTH, HTTP_* for every header, rack.input.
    def env
      @env ||= begin
        env = {
          'REQUEST_METHOD' => @request_method, 'SCRIPT_NAME' => '', 'PATH_INFO' => @path_info,
          'QUERY_STRING' => @query_string, 'REQUEST_URI' => @target, 'SERVER_PROTOCOL' => 'HTTP/1.1',
          'rack.input' => body, 'rack.url_scheme' => 'http'
        }
        headers.each do |name, value|
          key = name.upcase.tr('-', '_')
          case key
          when 'CONTENT_TYPE', 'CONTENT_LENGTH' then env[key] = value
          else env["HTTP_#{key}"] = value
          end
        end
        host = headers['host']
        if host
          env['SERVER_NAME'], _, port = host.partition(':')
          env['SERVER_PORT'] = port.empty? ? '80' : port
        end
        env
      end
    end

    def get_header(name)
      env[name]
    end

    def has_header?(name)
      env.key?(name)
    end

    # The body as Rack's input: a StringIO, rewound at every call so that reading it again
    # (kubeless read it once for event[:data]) still gives the whole body.
    def body
      @body ||= StringIO.new(@raw_body)
      @body.rewind
      @body
    end

    def content_type
      return headers['content-type'] if @headers

      # Found without building the header table: every call asks for it.
      Headers.find(@raw_headers, 'content-type')
    end

    def media_type
      content_type&.split(';', 2)&.first&.strip&.downcase
    end

    def content_length
      headers['content-length']
    end

    def path
      @path_info
    end

    def fullpath
      @target
    end

    def host
      headers['host']&.split(':', 2)&.first
    end

    def url
      "http://#{headers['host'] || 'localhost'}#{@target}"
    end

    def user_agent
      headers['user-agent']
    end

    # Query and form fields (string keys; a repeated key keeps its last value, as Rack does).
    def params
      @params ||= begin
        params = decode_form(@query_string)
        params.merge!(decode_form(@raw_body)) if media_type == 'application/x-www-form-urlencoded'
        params
      end
    end

    def GET
      decode_form(@query_string)
    end

    def POST
      media_type == 'application/x-www-form-urlencoded' ? decode_form(@raw_body) : {}
    end

    def [](key)
      params[key.to_s]
    end

    %w[get post put patch delete head options].each do |verb|
      define_method("#{verb}?") { @request_method == verb.upcase }
    end

    private

    def decode_form(text)
      return {} if text.nil? || text.empty?

      URI.decode_www_form(text.dup.force_encoding(Encoding::UTF_8)).to_h
    rescue ArgumentError
      {}
    end
  end
end
