"""Reads COUNT messages from TOPIC (from the beginning) and prints each as a JSON line with its
value, key and headers (as a map, and as the list of pairs in order):
python3 consume.py BROKER TOPIC COUNT [LINGER]. With LINGER (seconds), it goes on reading after
COUNT until no message came for that long: every message, where duplicates may be among them.
Each run reads from the beginning (a group of its own)."""

import json
import os
import sys
import time

from confluent_kafka import Consumer

broker, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
linger = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
consumer = Consumer({"bootstrap.servers": broker, "group.id": f"reader-{topic}-{os.getpid()}",
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
consumer.subscribe([topic])
seen = 0
deadline = time.monotonic() + 90
last = time.monotonic()
while (seen < count or time.monotonic() - last < linger) and time.monotonic() < deadline:
    message = consumer.poll(0.5)
    if message is None or message.error():
        continue
    last = time.monotonic()
    pairs = [[name, (value or b"").decode()] for name, value in (message.headers() or [])]
    print(json.dumps({"value": message.value().decode(), "key": (message.key() or b"").decode(),
                      "headers": dict(pairs), "header_list": pairs}), flush=True)
    seen += 1
consumer.close()
sys.exit(0 if seen >= count else f"consume: {seen} of {count} messages")
