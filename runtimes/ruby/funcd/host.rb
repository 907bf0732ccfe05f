# frozen_string_literal: true

# The glue funcd-ruby's embedded Ruby runs: loads the handler the way kubeless did (its file
# evaluated inside a fresh Module), runs calls on call Threads fed by funcd
# (Funcd::Native.take, which waits without the GVL), answers through Funcd::Native.reply, and
# stops a call at its deadline with Thread#raise from an interrupter Thread.

require_relative 'lazy_gems'
require 'json'
require 'timeout'
require_relative 'headers'
require_relative 'request'
require_relative 'cloudevents'

module Funcd
  # Raised in a handler whose deadline passed; a Timeout::Error, so code written for
  # Timeout.timeout handles it the same way.
  class CallTimeout < Timeout::Error
    attr_reader :id

    def initialize(id)
      @id = id
      super('execution expired (FUNC_TIMEOUT)')
    end
  end

  # A start-up failure whose message is the one line funcd prints.
  class LoadFailure < StandardError; end

  # Turns a handler's return value into [status, headers packed as Funcd::Headers does, body],
  # as sinatra sent it: a String as text/html, nil as an empty 200; funcd adds Hash/Array as JSON
  # and a Rack triple [status, headers, body] as that response. A triple whose body is not an
  # Array, and an Enumerator, are streamed instead (see .streamed and Host#stream).
  module Encode
    HTML = Headers.pack([%w[Content-Type text/html;charset=utf-8]]).freeze
    JSON_TYPE = Headers.pack([%w[Content-Type application/json]]).freeze

    module_function

    def result(value)
      case value
      when String then [200, HTML, value]
      when nil then [200, '', '']
      when Hash then [200, JSON_TYPE, JSON.generate(value)]
      when Array
        return rack(value) if rack_triple?(value)

        [200, JSON_TYPE, JSON.generate(value)]
      else [200, HTML, value.to_s]
      end
    end

    def rack_triple?(value)
      value.size == 3 && value[0].is_a?(Integer) && value[1].respond_to?(:each_pair) && value[2].respond_to?(:each)
    end

    def rack(triple)
      status, headers, body = triple
      text = +''
      body.each { |chunk| text << chunk.to_s }
      body.close if body.respond_to?(:close)
      [status, pack_headers(headers), text]
    end

    def pack_headers(headers)
      flat = ''.b
      headers.each_pair do |name, values|
        # Rack's convention: a value holding newlines is one field per line.
        Array(values).flat_map { |value| value.to_s.split("\n") }.each { |value| Headers.append(flat, name, value) }
      end
      flat
    end

    # [status, packed headers, body] when `value` is an answer to stream: a Rack triple whose body
    # is not an Array (an Enumerator, a Rack::BodyProxy, any object whose each yields as it goes)
    # or an Enumerator (a 200 text/html, as sinatra gave a returned body); else nil.
    def streamed(value)
      if value.is_a?(Array)
        return nil unless rack_triple?(value) && !value[2].respond_to?(:to_ary)

        [value[0], pack_headers(value[1]), value[2]]
      elsif value.is_a?(Enumerator)
        [200, HTML, value]
      end
    end
  end

  # One loaded handler and the threads that call it.
  class Host
    TEXT = Headers.pack([['Content-Type', 'text/plain; charset=utf-8']]).freeze

    # From funcd-ruby: a Host, or the String that says why the handler cannot be served.
    def self.boot(config_json)
      config = JSON.parse(config_json)
      $stdout.sync = true
      $stderr.sync = true
      # `funcd invoke` prints the answer on stdout; whatever the handler prints goes to stderr.
      $stdout = $stderr if config['stdoutToStderr']
      add_gem_paths(config.fetch('codeDirectory'))
      handler = load(config.fetch('modulePath'), config.fetch('handler'))
      # After the handler: a Rack its own code loaded is the one its requests are made with.
      Funcd.request_class
      new(handler, config.fetch('handler'), config.fetch('context'))
    rescue LoadFailure => e
      e.message
    end

    # Gems that `bundle install --path <code dir>` put under <code dir>/ruby/<version> (or
    # vendor/bundle/ruby/<version>, or BUNDLE_PATH's) are found by a plain `require`.
    def self.add_gem_paths(code_directory)
      roots = [code_directory, File.join(code_directory, 'vendor', 'bundle')]
      # BUNDLE_PATH (`bundle config set path …` exports it): where a local `bundle install` put them.
      roots.unshift(File.expand_path(ENV['BUNDLE_PATH'], code_directory)) if ENV['BUNDLE_PATH']
      roots = roots.map { |root| File.join(root, 'ruby') }.select { |path| File.directory?(path) }
      return if roots.empty?

      # RbConfig only now: without RubyGems (see LazyGems) it is an autoload still to be loaded.
      found = roots.map { |path| File.join(path, RbConfig::CONFIG['ruby_version']) }.select { |path| File.directory?(path) }
      return if found.empty?

      Gem.paths = { 'GEM_HOME' => Gem.dir, 'GEM_PATH' => (found + Gem.path).uniq.join(File::PATH_SEPARATOR) }
    end

    # The module holding `handler_name`, defined at the top level of the file at `path`.
    def self.load(path, handler_name)
      raise LoadFailure, "#{path}: no such file" unless File.file?(path)

      namespace = Module.new
      begin
        # Read as UTF-8, the encoding Ruby gives every source file (a magic comment still
        # overrides it): read in the locale's, a handler with a non-ASCII literal failed to load
        # under the C locale.
        namespace.module_eval(File.read(path, encoding: Encoding::UTF_8), path, 1)
      rescue SyntaxError => e
        raise LoadFailure, "#{path}: SyntaxError: #{e.message.lines.first.to_s.strip.sub(/\A#{Regexp.escape(path)}:/, 'line ')}"
      rescue ScriptError, StandardError => e
        LazyGems.error_helpers
        frame = (e.backtrace || []).find { |line| line.start_with?("#{path}:") }
        where = frame ? frame.split(':')[0, 2].join(':') : path
        hint = e.is_a?(::LoadError) ? "; gems were looked for in #{Gem.path.join(', ')} (bundle install --path vendor/bundle beside the handler, or BUNDLE_PATH, adds one)" : ''
        raise LoadFailure, "#{where}: #{e.class}: #{e.message} (while loading #{path})#{hint}"
      end
      unless namespace.method_defined?(handler_name) || namespace.private_method_defined?(handler_name)
        raise LoadFailure, "#{path}: no function '#{handler_name}' defined at the top level"
      end

      # The handler and every other function of the file become callable on the module, so
      # that a handler can call its helpers.
      namespace.extend(namespace)
      namespace
    end

    def initialize(namespace, handler_name, context, request_class: Funcd.request_class)
      @namespace = namespace
      @request_class = request_class
      @handler = handler_name.to_sym
      @context = context.transform_keys(&:to_sym)
      # Calls running now, by id: the interrupter raises into their threads.
      @running = {}
    end

    # Starts the call and interrupter threads; never returns.
    def run(call_threads)
      threads = Array.new(call_threads) { Thread.new { work } }
      threads << Thread.new { interrupt_loop }
      threads.each(&:join)
    end

    # One call thread: take a call, answer it, forever. Timeouts are only let in while a
    # handler runs (see #call_handler).
    def work
      Thread.handle_interrupt(CallTimeout => :never) do
        loop do
          call = Native.take
          answer(*call) if call
        rescue Exception => e # rubocop:disable Lint/RescueException
          warn "funcd: call thread error: #{LazyGems.full_message(e)}"
        end
      end
    end

    def interrupt_loop
      loop do
        id = Native.next_interrupt
        thread = id && @running[id]
        thread&.raise(CallTimeout.new(id))
      end
    end

    # Runs one call and replies; every outcome ends in exactly one Native.reply.
    def answer(id, method, target, headers, body, traceparent = nil, tracestate = nil, cloudevent = nil)
      request = @request_class.new(method, target, headers, body)
      # Most calls carry no event-* header (Kafka messages do): the header table is only built
      # when the bytes hold "event-" at all (inside a value too: only a hint, the table decides).
      fields = headers.include?("event-") ? request.headers : EMPTY
      event = {
        data: nil,
        'event-id': fields['event-id'],
        'event-type': fields['event-type'],
        'event-time': fields['event-time'],
        'event-namespace': fields['event-namespace'],
        extensions: { request: request }
      }
      event[:extensions].merge!(Host.kafka_extensions(headers)) if event[:'event-namespace'] == KAFKA_NAMESPACE
      begin
        event[:data] = decode(body, request.funcd_media_type)
      rescue JSON::ParserError => e
        return Native.reply(id, 400, TEXT, "Request body is not valid JSON: #{e.message}\n", "invalid JSON body: #{e.message}")
      end
      begin
        CloudEvents.apply(event, cloudevent, body) if cloudevent
      rescue CloudEvents::Invalid => e
        return Native.reply(id, 400, TEXT, "Invalid CloudEvent: #{e.message}\n", "invalid CloudEvent: #{e.message}")
      end
      # A context per call: calls on other threads hold their own trace.
      context = @context.merge(traceparent: traceparent, tracestate: tracestate)
      result = call_handler(id, event, context)
      return if result.equal?(FAILED)

      status, flat, text = (cloudevent == true && CloudEvents.encode(result)) || Encode.result(result)
      Native.reply(id, status, flat, text, nil)
    rescue Exception => e # rubocop:disable Lint/RescueException
      Native.reply(id, 500, TEXT, "Internal Server Error\n", LazyGems.full_message(e))
    end

    KAFKA_NAMESPACE = 'kafkatriggers.kubeless.io'

    # A Kafka message's topic, partition, offset, key, timestamp and headers, which funcd passes
    # as funcd-kafka-* headers (the HTTP server drops any a client sends).
    def self.kafka_extensions(raw_headers)
      found = { key: nil, headers: {} }
      Headers.each(raw_headers) do |name, value|
        if name.start_with?('funcd-kafka-header-')
          found[:headers][name.delete_prefix('funcd-kafka-header-')] = value
        elsif name.start_with?('funcd-kafka-')
          field = name.delete_prefix('funcd-kafka-').to_sym
          found[field] = %i[partition offset timestamp].include?(field) ? value.to_i : value
        end
      end
      found
    end

    # call_handler's value when it has answered already (a failure, a streamed answer).
    FAILED = Object.new.freeze
    EMPTY = {}.freeze
    LET_TIMEOUTS_IN = { CallTimeout => :immediate }.freeze

    # The handler's value, or FAILED once the call has been answered: a failure, or a streamed
    # answer (sent while the deadline still applies).
    def call_handler(id, event, context = @context)
      @running[id] = Thread.current
      Thread.handle_interrupt(LET_TIMEOUTS_IN) do
        value = @namespace.send(@handler, event, context)
        streamed = Encode.streamed(value)
        next value unless streamed

        stream(id, *streamed)
        FAILED
      end
    rescue CallTimeout => e
      # A timeout meant for an earlier call on this thread fired before this one's handler ran.
      retry unless e.id == id
      Native.reply(id, 408, TEXT, "Timeout while processing the function\n", 'timeout')
      FAILED
    rescue BadRequest => e
      # As sinatra answered its BadRequest (a malformed query or form found by params).
      Native.reply(id, 400, Encode::HTML, ::Rack::Utils.escape_html(e.message), nil)
      FAILED
    rescue Exception => e # rubocop:disable Lint/RescueException
      Native.reply(id, 500, TEXT, "Internal Server Error\n", LazyGems.full_message(e))
      FAILED
    ensure
      @running.delete(id)
    end

    NOTHING = ''.b.freeze
    STOP_TIMEOUTS = { CallTimeout => :never }.freeze

    # Sends `body` as it yields: the head with the first non-empty piece, each later piece as it
    # comes (Native.chunk waits while the client is behind), then the end. A body that yields
    # nothing is answered whole. A failure or the deadline after the head breaks the answer off
    # (the client sees a broken chunked answer, the log the reason); before it, they are answered
    # as any failure is (call_handler).
    def stream(id, status, flat, body)
      started = false
      body.each do |piece|
        bytes = piece.to_s
        next if bytes.empty?

        if started
          Native.chunk(id, bytes)
        else
          Native.head(id, status, flat, bytes)
          started = true
        end
      end
      started ? Native.finish(id, NOTHING, nil) : Native.reply(id, status, flat, NOTHING, nil)
    rescue Exception => e # rubocop:disable Lint/RescueException
      raise unless started

      Thread.handle_interrupt(STOP_TIMEOUTS) do
        Native.finish(id, NOTHING, e.is_a?(CallTimeout) ? 'timeout' : LazyGems.full_message(e))
      end
    ensure
      body.close if body.respond_to?(:close)
    end

    # event[:data] as kubeless gave it: '' without a body; parsed JSON for application/json
    # (any parameters or letter case: kubeless compared the exact string); else what
    # request.body.read gave, the bytes as a binary String (a copy: the request keeps its own).
    def decode(body, media_type)
      return +'' if body.empty?
      return JSON.parse(body) if media_type == 'application/json'

      body.dup
    end
  end
end
