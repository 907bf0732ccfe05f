"""Produces COUNT JSON messages {"n": FIRST + i} to TOPIC, keyed so that they spread over the
partitions: python3 produce.py BROKER TOPIC FIRST COUNT [REPLY_TO [NAME=VALUE]]. With REPLY_TO,
each message carries reply-to and correlation-id headers, and NAME=VALUE one more header."""

import json
import sys

from confluent_kafka import Producer

broker, topic, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
reply_to = sys.argv[5] if len(sys.argv) > 5 else None
extra = [tuple(sys.argv[6].split("=", 1))] if len(sys.argv) > 6 else []
producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
failures = []
for n in range(first, first + count):
    headers = [("reply-to", reply_to), ("correlation-id", f"c-{n}")] + extra if reply_to else None
    producer.produce(topic, key=str(n), value=json.dumps({"n": n}), headers=headers,
                     on_delivery=lambda error, message: failures.append(error) if error else None)
    producer.poll(0)
left = producer.flush(60)
if failures or left:
    sys.exit(f"produce: {len(failures)} failed, {left} not delivered")
print(f"produced {count}")
