# frozen_string_literal: true

require 'json'

module Funcd
  # CloudEvents v1.0 in the kubeless event: what funcd's host found in a request (binary mode:
  # the attributes, read and checked in Swift; structured mode: the body is the event) put where
  # a handler finds it, and a returned event answered in structured mode. The event keeps its
  # kubeless shape: event[:data] is the event's data, the event-* fields a caller did not send
  # are filled from the event, and every attribute is in event[:extensions][:cloudevent].
  module CloudEvents
    STRUCTURED = 'application/cloudevents+json'
    REQUIRED = %w[id source type].freeze
    FILLED = [%i[event-id id], %i[event-type type], %i[event-time time], %i[event-namespace source]].freeze
    ATTRIBUTE_NAME = /\A[a-z0-9]+\z/.freeze
    BASE64 = %r{\A(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\z}.freeze
    DATA_FIELDS = %w[data data_base64].freeze

    # A complete structured event whose data cannot be read: the request's 400.
    class Invalid < StandardError; end

    module_function

    # Fills event from cloudevent: an Array [name, value, ...] of attributes (binary mode: the
    # data stays what the body gave it), or true (structured: body is the event; when it is no
    # complete v1.0 event, the event is left as any request's).
    def apply(event, cloudevent, body)
      if cloudevent == true
        parsed = structured(body)
        return unless parsed

        attributes, data = parsed
        event[:data] = data
      else
        attributes = {}
        cloudevent.each_slice(2) { |name, value| attributes[name.to_sym] = value }
      end
      FILLED.each do |field, name|
        event[field] = attributes[name] if event[field].nil? && attributes.key?(name)
      end
      event[:extensions][:cloudevent] = attributes
    end

    # [attributes, data] of a structured event, or nil when body is no complete event.
    def structured(body)
      document = begin
        JSON.parse(body.dup.force_encoding(Encoding::UTF_8))
      rescue JSON::ParserError, EncodingError
        return nil
      end
      return nil unless event?(document)

      attributes = {}
      document.each { |name, value| attributes[name.to_sym] = value unless DATA_FIELDS.include?(name) }
      return [attributes, document['data']] unless document.key?('data_base64')
      raise Invalid, 'the event has both data and data_base64' if document.key?('data')

      encoded = document['data_base64']
      raise Invalid, 'data_base64 is not a string' unless encoded.is_a?(String)
      raise Invalid, 'data_base64 is not base64' unless encoded.match?(BASE64)

      [attributes, encoded.unpack1('m0')]
    end

    # Whether document (string keys) is a complete v1.0 event.
    def event?(document)
      return false unless document.is_a?(Hash) && document['specversion'] == '1.0'
      return false unless REQUIRED.all? { |name| document[name].is_a?(String) && !document[name].empty? }

      document.each_key.all? { |name| DATA_FIELDS.include?(name) || name.match?(ATTRIBUTE_NAME) }
    end

    # A returned event (a Hash, keys strings or symbols) as a structured answer
    # [status, packed headers, body] (binary data as data_base64); nil when it is not one.
    def encode(value)
      return nil unless value.is_a?(Hash)

      document = value.transform_keys(&:to_s)
      return nil unless event?(document)

      data = document['data']
      if data.is_a?(String) && data.encoding == Encoding::BINARY
        document.delete('data')
        document['data_base64'] = [data].pack('m0')
      end
      [200, HEADERS, JSON.generate(document)]
    end

    HEADERS = Headers.pack([['Content-Type', STRUCTURED]]).freeze
  end
end
