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

      # A streamed answer's parts, kept as [kind, id, ...] with the time each came.
      def head(id, status, headers, body)
        @replies << [:head, id, status, headers, body, Process.clock_gettime(Process::CLOCK_MONOTONIC)]
        nil
      end

      def chunk(id, body)
        @replies << [:chunk, id, body, Process.clock_gettime(Process::CLOCK_MONOTONIC)]
        nil
      end

      def finish(id, body, error)
        @replies << [:finish, id, body, error, Process.clock_gettime(Process::CLOCK_MONOTONIC)]
        nil
      end

      # The next reply, waiting up to five seconds (Ruby 3.1's Queue#pop has no timeout).
      def next_reply
        Timeout.timeout(5) { @replies.pop }
      end
    end
  end
end
