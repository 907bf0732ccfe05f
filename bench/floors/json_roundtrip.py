"""bench/floors/json_roundtrip.py: the JSON floor under one echo call of funcd-python.

    python3 json_roundtrip.py --seconds S PAYLOAD

Parses the payload and writes it back (json.dumps(json.loads(payload)), the payload as bytes as
it arrives) in a loop for S seconds, in the Python funcd embeds, and prints one JSON object in
the form of bench/exec/spawn_floor.c's: calls, wall seconds, calls/s, this process's CPU
microseconds in all and per call (start-up not counted), and failures (a round trip whose text
does not parse back to the payload). bench/run runs it pinned to the server's CPU.
"""
import json
import sys
import time


def main(argv):
    if len(argv) != 4 or argv[1] != "--seconds":
        print("usage: json_roundtrip.py --seconds S PAYLOAD", file=sys.stderr)
        return 2
    seconds = float(argv[2])
    with open(argv[3], "rb") as file:
        payload = file.read()
    expected = json.loads(payload)
    failures = 0 if json.loads(json.dumps(expected)) == expected else 1
    loads, dumps = json.loads, json.dumps
    calls = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    deadline = wall0 + seconds
    while True:
        for _ in range(256):
            dumps(loads(payload))
        calls += 256
        if time.monotonic() >= deadline:
            break
    cpu_us = (time.process_time() - cpu0) * 1e6
    wall = time.monotonic() - wall0
    print(json.dumps({
        "calls": calls, "wall_s": wall, "calls_per_s": calls / wall, "cpu_self_us": cpu_us, "cpu_children_us": 0.0,
        "cpu_us_per_call": cpu_us / calls, "self_us_per_call": cpu_us / calls, "children_us_per_call": 0.0,
        "failures": failures,
    }))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
