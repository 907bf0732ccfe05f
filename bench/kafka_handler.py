"""The trivial Python handler of the Kafka benchmark, run by funcd and by the baseline consumer.

For a Kafka message it counts, notes the time of the first and last message, and, when the value
carries the time it was produced ({"t": unix seconds}), the end-to-end latency. Any HTTP call
(funcd only) answers those figures as JSON; `?reset` clears them.
"""

import time

_state = {"count": 0, "first": 0.0, "last": 0.0, "latencies": []}


def handler(event, context):
    if event.get("event-namespace") != "kafkatriggers.kubeless.io":
        return report(event)
    now = time.time()
    state = _state
    if state["count"] == 0:
        state["first"] = now
    state["count"] += 1
    state["last"] = now
    data = event["data"]
    if "t" in data:
        state["latencies"].append((now - data["t"]) * 1000.0)
    return None


def report(event):
    request = event["extensions"]["request"]
    if "reset" in request.query_string:
        _state.update(count=0, first=0.0, last=0.0, latencies=[])
    return dict(_state)
