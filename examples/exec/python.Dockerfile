# syntax=docker/dockerfile:1
#
# The exec image plus python3, for wordcount.py or any Python program run as a function. The exec
# image has no python, and the python image has no python3 command (its python3.11 is there to
# run funcd-python's worker) nor funcd-exec. Build after images/exec (see ../../Dockerfile), from the repository root:
#
#   docker build -t funcd-exec-python -f examples/exec/python.Dockerfile examples/exec
#
# images/test-engine builds it and runs wordcount.py in it as a pod.

ARG EXEC_IMAGE=funcd-exec
FROM ${EXEC_IMAGE}
USER root
# python3's postinst compiles its standard library: a read-only root cannot cache bytecode.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
USER 1000:1000
