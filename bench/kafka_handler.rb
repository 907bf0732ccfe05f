# The trivial Ruby handler of the Kafka benchmark (see kafka_handler.py, which it mirrors): a
# Kafka message is counted and timed; any HTTP call answers the figures, `?reset` clears them.
$bench_state = { count: 0, first: 0.0, last: 0.0, latencies: [] }

def handler(event, context)
  state = $bench_state
  if event[:'event-namespace'] != 'kafkatriggers.kubeless.io'
    if event[:extensions][:request].query_string.include?('reset')
      state.replace(count: 0, first: 0.0, last: 0.0, latencies: [])
    end
    return state
  end
  now = Process.clock_gettime(Process::CLOCK_REALTIME)
  state[:first] = now if state[:count].zero?
  state[:count] += 1
  state[:last] = now
  data = event[:data]
  state[:latencies] << (now - data['t']) * 1000.0 if data.is_a?(Hash) && data.key?('t')
  nil
end
