#!/usr/bin/env python3
"""A Python program as a function (the exec runtime), not a handler: funcd runs it once per call,
the request body on stdin, and its stdout is the answer.

    funcd run examples/exec/wordcount.py      (executable, so it is a program: no --handler)
    printf 'one two\nthree\n' | curl localhost:8080/ --data-binary @-
    {"lines": 2, "words": 3, "bytes": 14, "method": "POST"}

It needs a python3 on PATH, which the exec image does not have (nor does the python image: its
python3.11 runs funcd-python's worker, and it has no funcd-exec): run it locally, or in the
image python.Dockerfile here builds (the exec image plus python3). A handler file for the python
image is examples/python/hello.py.
"""

import json
import os
import sys


def main() -> int:
    body = sys.stdin.buffer.read()
    answer = {
        "lines": body.count(b"\n"),
        "words": len(body.split()),
        "bytes": len(body),
        "method": os.environ.get("Http_Method", ""),
    }
    # stderr is funcd's log, one line per line written.
    print(f"wordcount.py: {answer['bytes']} bytes", file=sys.stderr)
    json.dump(answer, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
