'use strict';

// A Node handler for KafkaTests: prints the facts of each message's event as one JSON line.
module.exports.record = (event) => {
  const { topic, partition, offset, key, headers } = event.extensions;
  console.log(`message ${JSON.stringify({ topic, partition, offset, key, headers, data: event.data })}`);
};
