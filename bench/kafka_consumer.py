"""The baselines of the Kafka benchmark: a confluent-kafka consumer, with no handler (`raw`) or
doing per message what funcd does for a Python handler (`handler`, and `latency`, which polls one
message at a time so that it does not wait for a batch to fill): parse the JSON value, build
the kubeless event (kafkatriggers.kubeless.io, extensions with topic, partition, offset, key,
timestamp and headers) and call bench/kafka_handler.py's handler. Offsets are stored after the
handler, once per consumed batch (at-least-once, as funcd does).

    kafka_consumer.py MODE COUNT PROPERTIES_JSON TOPIC

Reads until COUNT messages were seen (or 120 s passed without one), then prints one JSON line:
count, first and last (unix seconds of the first and last message handled) and, in handler
mode, the latencies the handler recorded.
"""

import base64
import datetime
import json
import os
import sys
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_handler  # noqa: E402

NAMESPACE = "kafkatriggers.kubeless.io"
CONTEXT = {"function-name": "handler", "timeout": "180", "runtime": "python3.11", "memory-limit": ""}


def event_of(message, decode=json.JSONDecoder().decode):
    value = message.value()
    try:
        data = decode(value.decode())
    except ValueError:
        data = value.decode("utf-8", "replace")
    key = message.key()
    _, timestamp = message.timestamp()
    headers = message.headers() or []
    return {
        "data": data,
        "event-id": base64.urlsafe_b64encode(os.urandom(11)).decode()[:15],
        "event-type": "application/json",
        "event-time": str(datetime.datetime.now(datetime.timezone.utc)),
        "event-namespace": NAMESPACE,
        "extensions": {
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "key": key.decode("utf-8", "replace") if key is not None else None,
            "timestamp": timestamp,
            "headers": {name: (value or b"").decode("utf-8", "replace") for name, value in headers},
        },
    }


def main():
    mode, count, properties, topic = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    consumer = Consumer(properties)
    consumer.subscribe([topic])
    handler = kafka_handler.handler
    seen = 0
    first = last = 0.0
    quiet_since = time.time()
    while seen < count:
        if mode == "latency":
            message = consumer.poll(0.2)
            batch = [message] if message is not None else []
        else:
            batch = consumer.consume(1000, 0.2)
        if not batch:
            if time.time() - quiet_since > 120:
                break
            continue
        quiet_since = time.time()
        stored = {}
        for message in batch:
            if message.error():
                continue
            if mode != "raw":
                handler(event_of(message), CONTEXT)
            stored[(message.topic(), message.partition())] = message.offset()
            seen += 1
        if mode == "raw":
            now = time.time()
            first = first or now
            last = now
        consumer.store_offsets(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in stored.items()])
    consumer.close()
    if mode != "raw":
        state = kafka_handler._state
        first, last = state["first"], state["last"]
        print(json.dumps({"count": seen, "first": first, "last": last, "latencies": state["latencies"]}))
    else:
        print(json.dumps({"count": seen, "first": first, "last": last, "latencies": []}))


if __name__ == "__main__":
    main()
