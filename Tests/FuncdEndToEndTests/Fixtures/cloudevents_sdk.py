"""funcd's CloudEvents checked with the official SDK (PyPI cloudevents 2.x, cloudevents.core):
the SDK builds the events and reads funcd's answers. Handlers: Fixtures/events_app.*.

    python3 cloudevents_sdk.py http PORT
        binary and structured requests; the handler's answers read back as events.
    python3 cloudevents_sdk.py kafka-produce BROKER TOPIC REPLY_TO
        a binary event (with a traceparent), a structured one, and one whose handler fails.
    python3 cloudevents_sdk.py kafka-replies BROKER REPLY_TO
        reads the two replies as events; prints them as JSON lines for the test to compare.

Exits 1 with the reasons when a check fails."""

import json
import sys
import urllib.request

from cloudevents.core.bindings import http, kafka
from cloudevents.core.v1.event import CloudEvent

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def post(port, message, extra=None):
    headers = dict(message.headers)
    headers.update(extra or {})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=message.body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return http.HTTPMessage(headers=dict(response.headers.items()), body=response.read())


def http_checks(port):
    sent = CloudEvent({"id": "sdk-1", "source": "/sdk", "type": "com.example.sdk", "subject": "a b%c",
                       "datacontenttype": "application/json", "tenant": "acme"}, {"order": 7})
    # Binary mode in, a binary-mode event out (the handler's ce-* fields).
    answer = post(port, http.to_binary_event(sent), {"X-Answer": "binary"})
    reply = http.from_binary_event(answer)
    check(reply.get_id() == "reply-1" and reply.get_type() == "com.example.reply", f"binary answer: {reply.get_attributes()}")
    seen = reply.get_data()
    seen = json.loads(seen) if isinstance(seen, (bytes, str)) else seen
    check(seen["data"] == {"order": 7}, f"binary data: {seen}")
    check(seen["event-id"] == "sdk-1" and seen["event-namespace"] == "/sdk", f"binary event-*: {seen}")
    check(seen["cloudevent"]["subject"] == "a b%c", f"percent-encoded subject: {seen}")
    check(seen["cloudevent"]["tenant"] == "acme", f"extension: {seen}")
    check(seen["cloudevent"]["time"].startswith(sent.get_time().strftime("%Y-%m-%dT%H:%M:%S")), f"time: {seen}")

    # Structured mode in, a structured event out (the handler returned one).
    answer = post(port, http.to_structured_event(sent), {"X-Answer": "structured"})
    check(answer.headers.get("Content-Type") == "application/cloudevents+json", f"structured answer type: {answer.headers}")
    reply = http.from_http_event(answer)
    check(reply.get_id() == "reply-1" and reply.get_source() == "/funcd/test", f"structured answer: {reply.get_attributes()}")
    seen = reply.get_data()
    check(seen["data"] == {"order": 7} and seen["event-type"] == "com.example.sdk", f"structured data: {seen}")
    check(seen["cloudevent"]["tenant"] == "acme", f"structured extension: {seen}")

    # Binary data travels as data_base64 in structured mode.
    raw = CloudEvent({"id": "sdk-2", "source": "/sdk", "type": "bytes", "datacontenttype": "application/octet-stream"},
                     bytes(range(256)))
    answer = post(port, http.to_structured_event(raw))
    seen = json.loads(answer.body)
    check(seen["data"] == {"bytes": list(range(256))}, f"data_base64: {str(seen)[:200]}")


def kafka_produce(broker, topic, reply_to):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": broker})
    binary = kafka.to_binary_event(CloudEvent(
        {"id": "k-1", "source": "/kafka", "type": "com.example.binary", "datacontenttype": "application/json"}, {"n": 1}))
    structured = kafka.to_structured_event(CloudEvent(
        {"id": "k-2", "source": "/kafka", "type": "com.example.structured"}, {"n": 2}))
    common = [("reply-to", reply_to.encode())]
    messages = [
        (binary, common + [("traceparent", PARENT.encode()), ("tracestate", b"congo=t61rcWkgMzE"), ("x-answer", b"binary")]),
        (structured, common + [("x-answer", b"structured")]),
        (binary, [("traceparent", PARENT.encode()), ("x-answer", b"fail")]),
    ]
    for message, extra in messages:
        producer.produce(topic, key=b"k", value=message.value, headers=list(message.headers.items()) + extra)
    if producer.flush(60):
        sys.exit("kafka-produce: not delivered")


def kafka_replies(broker, topic):
    import os
    import time

    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"sdk-{os.getpid()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    deadline = time.monotonic() + 90
    seen = 0
    while seen < 2 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        seen += 1
        headers = {name: value for name, value in (message.headers() or [])}
        event = kafka.from_kafka_event(kafka.KafkaMessage(headers=headers, key=message.key(), value=message.value()))
        data = event.get_data()
        data = json.loads(data) if isinstance(data, (bytes, str)) else data
        print(json.dumps({"attributes": {k: str(v) for k, v in event.get_attributes().items()},
                          "headers": {k: v.decode() for k, v in headers.items()}, "data": data}), flush=True)
    consumer.close()
    check(seen == 2, f"{seen} replies of 2")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "http":
        http_checks(int(sys.argv[2]))
    elif mode == "kafka-produce":
        kafka_produce(sys.argv[2], sys.argv[3], sys.argv[4])
    elif mode == "kafka-replies":
        kafka_replies(sys.argv[2], sys.argv[3])
    if failures:
        sys.exit("cloudevents_sdk: " + "\n".join(failures))
    print("ok", file=sys.stderr)
