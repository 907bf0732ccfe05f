# frozen_string_literal: true

# Loaded by Funcd.request_class once Rack is: the request handlers get is a real Rack::Request,
# so every Rack call (params, GET, POST with nesting and multipart files, cookies, url, ip, ...)
# is Rack's own. Only where the request keeps its data differs: Rack's keeps an env Hash made by
# the server; this one keeps the bytes funcd-ruby handed over and builds that Hash, as WEBrick's
# Rack handler would have, the first time any call needs it. A handler that never asks pays for
# four instance variables. On top, the calls Sinatra::Request adds (kubeless served handlers
# with sinatra): accept, accept?, preferred_type, safe?, idempotent?, link?, unlink?,
# forwarded?, secure?, and params raising Funcd::BadRequest (answered 400) for a malformed query
# or form, as sinatra does.

module Funcd
  class RackRequest < ::Rack::Request
    include RequestParts

    # Rack::Request::Env keeps the env in @env from its constructor; here every access goes
    # through #env, which builds it on first use.
    def has_header?(name) = env.key?(name)
    def get_header(name) = env[name]
    def fetch_header(name, &block) = env.fetch(name, &block)
    def each_header(&block) = env.each(&block)
    def set_header(name, value) = env[name] = value
    def delete_header(name) = env.delete(name)

    # MARK: - What Sinatra::Request adds

    # A parameter of an Accept entry or of a type: name=token or name="quoted".
    PARAMETER = /\s*[\w.]+=(?:[\w.]+|"(?:[^"\\]|\\.)*")?\s*/.freeze
    # One media range of an Accept header, with its parameters.
    MEDIA_RANGE = %r{(?:(?:\w+|\*)/(?:\w+(?:\.|-|\+)?|\*)*)\s*(?:;#{PARAMETER})*}.freeze

    # The media ranges of Accept, best first (q, then the fewer wildcards, then the more
    # parameters), each an AcceptEntry that acts as its type String; */* without Accept.
    def accept
      env['sinatra.accept'] ||= begin
        header = env['HTTP_ACCEPT'].to_s
        if header.empty?
          [AcceptEntry.new('*/*')]
        else
          header.scan(MEDIA_RANGE).map! { |range| AcceptEntry.new(range) }.sort
        end
      end
    end

    # True when `type` is what #preferred_type picks among [type].
    def accept?(type)
      preferred_type(type).to_s.include?(type)
    end

    # The first of `types` the best Accept entry admits (shell-glob match, parameters agreeing);
    # without types, the best entry itself.
    def preferred_type(*types)
      return accept.first if types.empty?

      types.flatten!
      return types.first if accept.empty?

      accept.each do |entry|
        found = types.find { |type| OfferedType.new(type).accepted_by?(entry) }
        return found if found
      end
      nil
    end

    def secure? = ssl?
    def forwarded? = env.include?('HTTP_X_FORWARDED_HOST')
    def safe? = get? || head? || options? || trace?
    def idempotent? = safe? || put? || delete? || link? || unlink?
    def link? = request_method == 'LINK'
    def unlink? = request_method == 'UNLINK'

    def params
      super
    rescue ::Rack::Utils::ParameterTypeError, ::Rack::Utils::InvalidParameterError => e
      raise BadRequest, "Invalid query parameters: #{::Rack::Utils.escape_html(e.message)}"
    rescue EOFError => e
      raise BadRequest, "Invalid multipart/form-data: #{::Rack::Utils.escape_html(e.message)}"
    end

    # The parameters of an Accept entry or offered type, as [name, value] pairs.
    def self.parameters(text)
      text.scan(PARAMETER).map! do |pair|
        name, value = pair.strip.split('=', 2)
        value = value[1..-2].gsub(/\\(.)/, '\1') if value.start_with?('"')
        [name, value]
      end
    end

    # One media range of Accept: compares by priority and otherwise acts as its type String.
    class AcceptEntry
      attr_accessor :params
      attr_reader :entry

      def initialize(entry)
        @entry = entry
        @type = entry[/[^;]+/].delete(' ')
        @params = RackRequest.parameters(entry).to_h
        @q = @params.delete('q') { 1.0 }.to_f
      end

      def <=>(other) = other.priority <=> priority
      def priority = [@q, -@type.count('*'), @params.size]
      def to_str = @type

      # The type, or with `full` the entry as the client wrote it.
      def to_s(full = false) = full ? entry : to_str

      def respond_to?(*arguments)
        super || to_str.respond_to?(*arguments)
      end

      def method_missing(*arguments, &block)
        to_str.send(*arguments, &block)
      end

      def respond_to_missing?(name, include_private = false)
        to_str.respond_to?(name, include_private) || super
      end
    end

    # A type a handler offers to preferred_type.
    class OfferedType
      attr_reader :params

      def initialize(text)
        @type = text[/[^;]+/].delete(' ')
        @params = RackRequest.parameters(text).to_h
      end

      def to_str = @type

      def accepted_by?(entry)
        File.fnmatch(entry, self) && entry.params.all? { |name, value| !@params.key?(name) || @params[name] == value }
      end
    end
  end
end
