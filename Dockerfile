# syntax=docker/dockerfile:1
#
# funcd's build stage and base image. The language images build on both:
#
#   docker build --target build -t funcd-build .
#   docker build -t funcd-base .
#   docker build -t funcd-python images/python     # likewise images/node, images/ruby
#
# The base holds the funcd command (supervisor and dispatcher: it links no interpreter) and every
# language's glue; a language image adds that language's shared library and standard library
# and its funcd-<language> executable. Images run as uid 1000 with a read-only root file system.

ARG SWIFT_IMAGE=swift:6.3-bookworm

# ---- build: release binaries with the Swift standard library linked statically ----
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config python3 libpython3-dev libnode-dev ruby-dev librdkafka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies resolve in a layer of their own: source changes do not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources Sources
COPY runtimes runtimes
RUN swift build -c release --static-swift-stdlib \
 && mkdir -p /out/bin /out/share/funcd \
 && bin="$(swift build -c release --static-swift-stdlib --show-bin-path)" \
 && for product in funcd funcd-python funcd-node funcd-ruby; do cp "$bin/$product" /out/bin/; done \
 # Symbols halve the executables and are not needed to run them.
 && strip /out/bin/* \
 && cp -r runtimes /out/share/funcd/runtimes \
 && rm -rf /out/share/funcd/runtimes/*/test /out/share/funcd/runtimes/*/tests \
 # The glue is compiled here: a read-only root file system cannot cache bytecode.
 && python3 -m compileall -q /out/share/funcd/runtimes/python/funcd

# ---- base: funcd and the glue on Debian bookworm, no interpreter ----
FROM debian:bookworm-slim AS runtime
COPY images/base/packages.txt /tmp/packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin funcd \
 && mkdir -p /kubeless
COPY --from=build /out/share/funcd /usr/local/share/funcd
ENV FUNC_PORT=8080 \
    KUBELESS_INSTALL_VOLUME=/kubeless
EXPOSE 8080
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/funcd"]
CMD ["serve"]

# The base image: the runtime and the front door alone (`funcd`, no interpreter). The language
# images start from `runtime`, not from here: each installs its one executable and links `funcd`
# to it (it acts as the front door under that name), so that it does not carry both.
FROM runtime AS base
COPY --from=build /out/bin/funcd /usr/local/bin/funcd
LABEL org.opencontainers.image.title="funcd-base" \
      org.opencontainers.image.description="funcd, the in-pod function server, without a language"
