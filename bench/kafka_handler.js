'use strict';

// The trivial Node handler of the Kafka benchmark (see kafka_handler.py, which it mirrors): a
// Kafka message is counted and timed; any HTTP call answers the figures, `?reset` clears them.
const state = { count: 0, first: 0, last: 0, latencies: [] };

module.exports.handler = (event) => {
  if (event['event-namespace'] !== 'kafkatriggers.kubeless.io') {
    if (event.extensions.request.url.includes('reset')) {
      Object.assign(state, { count: 0, first: 0, last: 0, latencies: [] });
    }
    return state;
  }
  const now = Date.now() / 1000;
  if (state.count === 0) state.first = now;
  state.count += 1;
  state.last = now;
  const data = event.data;
  if (data && typeof data === 'object' && 't' in data) state.latencies.push((now - data.t) * 1000);
  return null;
};
