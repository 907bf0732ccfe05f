# frozen_string_literal: true

# A stand-in for funcd-ruby's Funcd::Native that keeps the replies the glue sends, so the glue can
# run in a plain `ruby` process.

require 'timeout'

module Funcd
  # What funcd-ruby's C module does, minus the queue: replies are kept for the tests.
  module Native
    @replies = Queue.new

    class << self
      attr_reader :replies

      def reply(id, status, headers, body, error)
        @replies << [id, status, headers, body, error]
        nil
      end

      # The next reply, waiting up to five seconds (Ruby 3.1's Queue#pop has no timeout).
      def next_reply
        Timeout.timeout(5) { @replies.pop }
      end
    end
  end
end
