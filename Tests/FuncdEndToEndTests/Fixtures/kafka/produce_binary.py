"""Produces one message to TOPIC whose key and header value hold NULs, each followed by what looks
like one of funcd's own Kafka facts (a NUL-separated hand-off would have read them as fields):
python3 produce_binary.py BROKER TOPIC"""

import sys

from confluent_kafka import Producer

broker, topic = sys.argv[1], sys.argv[2]
producer = Producer({"bootstrap.servers": broker})
failures = []


def report(error, message):
    if error:
        failures.append(error)


producer.produce(topic, key=b"k\x00funcd-kafka-topic\x00spoofed\x00funcd-kafka-offset\x00999", value=b'{"n": 1}',
                 headers=[("trace", b"a\x00funcd-kafka-partition\x007\r\n")], on_delivery=report)
left = producer.flush(60)
if failures or left:
    sys.exit(f"produce: {len(failures)} failed, {left} not delivered")
print("produced 1")
