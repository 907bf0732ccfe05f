#!/bin/bash
# The exec runtime's example: a shell script as a function. funcd runs it once per call with the
# request body on stdin; what it prints on stdout is the answer (exit 0: 200, anything else: 500),
# what it prints on stderr goes to funcd's log. The request is in the environment: Http_Method,
# Http_Path, Http_Query, Http_Content_Type, Http_<Header>, ...
#
#   funcd run examples/exec/hello.sh          (or scripts/run-example examples/exec/hello.sh)
#   curl localhost:8080/                      Hello world!
#   curl localhost:8080/ -d '{"name":"you"}'  Hello you!
#   curl localhost:8080/ -d 'not JSON'        500, and jq's complaint in the log
#
# Needs bash and jq: the exec image (images/exec) has both. images/k8s/exec.yaml runs it in a pod.
set -euo pipefail

echo "hello.sh: ${Http_Method:-GET} ${Http_Path:-/}" >&2
case "${Http_Method:-GET}" in
  GET | HEAD) echo "Hello world!" ;;
  # Any other method: the body is a JSON object (or nothing); jq reads it straight from stdin.
  # --slurp makes an empty body [], hence .[0] // {}.
  *) jq --raw-output --slurp '(.[0] // {}) | "Hello \(.name // "world")!"' ;;
esac
