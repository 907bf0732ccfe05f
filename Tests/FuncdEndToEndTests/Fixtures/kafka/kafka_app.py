"""Handlers for the Kafka tests: each prints one line per call that the tests read back."""

import time

_attempts = {}


def record(event, context):
    ext = event["extensions"]
    print(f"handled {ext['topic']} {ext['partition']} {ext['offset']} {event['data']['n']} "
          f"{event['event-namespace']} {event['event-type']}", flush=True)
    return "ok"


def slow(event, context):
    time.sleep(0.005)
    return record(event, context)


def flaky(event, context):
    """Fails the first two tries of every message."""
    n = event["data"]["n"]
    _attempts[n] = _attempts.get(n, 0) + 1
    if _attempts[n] <= 2:
        raise RuntimeError(f"try {_attempts[n]} of {n} fails")
    print(f"handled {n} after {_attempts[n]} tries", flush=True)
    return "ok"
