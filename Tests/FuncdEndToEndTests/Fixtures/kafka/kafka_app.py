"""Handlers for the Kafka tests: each prints one line per call that the tests read back."""

import json
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


def _described(event):
    ext = event["extensions"]
    return json.dumps({
        "data": event["data"], "key": ext["key"], "headers": ext["headers"], "topic": ext["topic"],
        "partition": ext["partition"], "offset": ext["offset"], "timestamp": isinstance(ext["timestamp"], int),
        "id": len(event["event-id"]), "time": event["event-time"].endswith(" +0000 UTC"),
        "namespace": event["event-namespace"], "type": event["event-type"],
        "request": ext["request"].method,
    }, sort_keys=True)


def describe(event, context):
    """One `event {...}` line with what the event holds (the id and time by their shape)."""
    say("event " + _described(event))


async def describe_async(event, context):
    """The same from an async handler (whose event the glue builds, not the host)."""
    say("event " + _described(event))


def answer_or_wait(event, context):
    """answer() with a `handled` line; {"sleep": s} (over HTTP) outlives FUNC_TIMEOUT instead."""
    data = event["data"]
    if isinstance(data, dict) and "sleep" in data:
        time.sleep(data["sleep"])
        return "slept"
    if isinstance(data, dict) and "n" in data and event["extensions"].get("topic"):
        say(f"handled {data['n']}")
    return answer(event, context) if isinstance(data, dict) and "n" in data else "ok"


def answer_or_huge(event, context):
    """answer(), but 2 MB for n == 3: a reply no broker takes (message.max.bytes is 1 MB)."""
    if event["data"]["n"] == 3:
        return "x" * 2_000_000
    return answer(event, context)


def segfault_on_150(event, context):
    """record(), but message 150 crashes the whole process (a real SIGSEGV, as a broken C
    extension would)."""
    if event["data"]["n"] == 150:
        import ctypes
        ctypes.string_at(0)
    return record(event, context)


def fails_loudly(event, context):
    """Always fails, with a line per try: the tests count how often the handler ran."""
    say(f"failing {event['data']['n']}")
    raise ValueError(f"cannot take order {event['data']['n']}")


def slower(event, context):
    """record() after 20 ms: 600 messages over 3 partitions take about 4 s."""
    time.sleep(0.02)
    return record(event, context)
