"""Handlers for the Kafka tests: each prints one line per call that the tests read back."""

import sys
import time

_attempts = {}


def say(line):
    """One write per line: handlers of different partitions run on different threads, and
    print() writes the text and its newline separately, so two lines could interleave."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def record(event, context):
    ext = event["extensions"]
    say(f"handled {ext['topic']} {ext['partition']} {ext['offset']} {event['data']['n']} "
        f"{event['event-namespace']} {event['event-type']}")
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
    say(f"handled {n} after {_attempts[n]} tries")
    return "ok"


def fails(event, context):
    """Always fails: its messages end in the dead-letter topic."""
    raise ValueError(f"cannot take order {event['data']['n']}")


def answer(event, context):
    """A result for reply-to."""
    return {"double": event["data"]["n"] * 2}
