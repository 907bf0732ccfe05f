"""Produces messages of different shapes to TOPIC (one partition): python3 produce_mixed.py BROKER
TOPIC [binary]. By default four: a keyed JSON object with headers, a text value without key, and
two values that look like JSON but are not. With `binary`, one whose key and header value hold
NULs, each followed by what looks like one of funcd's own Kafka facts (a NUL-separated hand-off
would have read them as fields)."""

import sys

from confluent_kafka import Producer

broker, topic = sys.argv[1], sys.argv[2]
binary = len(sys.argv) > 3 and sys.argv[3] == "binary"
producer = Producer({"bootstrap.servers": broker})
failures = []


def report(error, message):
    if error:
        failures.append(error)


if binary:
    messages = [dict(key=b"k\x00funcd-kafka-topic\x00spoofed\x00funcd-kafka-offset\x00999", value=b'{"n": 1}',
                     headers=[("trace", b"a\x00funcd-kafka-partition\x007\r\n")])]
else:
    messages = [
        dict(key="k-1", value=' {"n": 1, "list": [1, 2.5, "x"]} ', headers=[("trace", "abc"), ("tenant", "t1")]),
        dict(value="plain text é"),
        dict(key="k-3", value='{"bad": }'),
        dict(value='{"x": NaN}'),
    ]
for message in messages:
    producer.produce(topic, on_delivery=report, **message)
left = producer.flush(60)
if failures or left:
    sys.exit(f"produce: {len(failures)} failed, {left} not delivered")
print(f"produced {len(messages)}")
