# syntax=docker/dockerfile:1
#
# funcd's build stage, runtime stage and base image. The language images build on the first two,
# so build those under the names the language Dockerfiles expect, from the repository root:
#
#   docker build --target build -t funcd-build .
#   docker build --target runtime -t funcd-runtime .
#   docker build -t funcd-base .
#   docker build -t funcd-python images/python     # likewise images/node, images/ruby, images/exec
#
# (`buildah bud` takes the same arguments.) The base holds the funcd command (supervisor and
# dispatcher: it links no interpreter) and every language's glue; a language image adds that
# language's shared library and standard library and its funcd-<language> executable (the exec
# image: funcd-exec and the tools a shell function uses). Images run
# as uid 1000 with a read-only root file system. SWIFT_IMAGE and DEBIAN_IMAGE name the two images
# everything starts from (images/stand-in/make builds local ones where no registry is reachable).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build: release binaries with the Swift standard library linked statically ----
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config python3 libpython3-dev libnode-dev ruby-dev librdkafka-dev node-qs node-accepts node-fresh node-range-parser ruby-rack \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole package: SwiftPM refuses a manifest whose test targets have no sources, even to build
# one product. Package.resolved pins every dependency's version.
COPY Package.swift Package.resolved ./
COPY Sources Sources
COPY Tests Tests
COPY runtimes runtimes
COPY scripts/build-release scripts/build-release
# .build is a cache kept between builds (fetched dependencies, objects): a source change rebuilds
# what it touches, not the world. It is not part of any layer, so the results are copied out.
# Only the executables the images carry (funcd-kubeless, the laptop's converter, is not one).
# funcd-python-worker is the library python3 loads as funcd-python (front door and worker): it
# sits beside the funcd-python program, which finds it there. That program is C and needs no
# Swift runtime: scripts/build-release compiles it with clang alone.
RUN --mount=type=cache,target=/src/.build,id=funcd-swiftpm-build,sharing=locked \
    for product in funcd funcd-python funcd-python-worker funcd-node funcd-ruby funcd-exec; do \
      scripts/build-release --product "$product" || exit 1; \
    done \
 && mkdir -p /out/bin /out/share/funcd \
 && bin="$(scripts/build-release --show-bin-path)" \
 && for product in funcd funcd-python funcd-node funcd-ruby funcd-exec; do cp "$bin/$product" /out/bin/; done \
 && cp "$bin/libfuncd-python-worker.so" /out/bin/ \
 # The C funcd-python, not SwiftPM's (with the Swift runtime linked in, it would be megabytes).
 && test "$(stat -c %s /out/bin/funcd-python)" -lt 1000000 \
 # Symbols halve the executables and are not needed to run them (a library keeps those it exports).
 && strip /out/bin/* \
 && cp -r runtimes /out/share/funcd/runtimes \
 && rm -rf /out/share/funcd/runtimes/*/test /out/share/funcd/runtimes/*/tests \
 # req.query is parsed by qs, req.accepts*() by accepts, req.fresh by fresh and req.range() by
 # range-parser, as express does: Debian's packages and the modules they load, beside the Node
 # glue (the packages themselves would bring the node command and 150 more).
 && mkdir -p /out/share/funcd/runtimes/node/node_modules \
 && node -e "for (const m of ['qs', 'accepts', 'fresh', 'range-parser']) require(m); for (const f of Object.keys(require.cache)) console.log(f)" \
    | sed -n 's#^/usr/share/nodejs/\([^/]*\)/.*#\1#p' | sort -u \
    | while read module; do cp -rL "/usr/share/nodejs/$module" /out/share/funcd/runtimes/node/node_modules/; done \
 && for module in qs accepts negotiator mime-types mime-db fresh range-parser; do test -f "/out/share/funcd/runtimes/node/node_modules/$module/package.json"; done \
 # The request Ruby handlers get is a real Rack::Request: Debian's ruby-rack's library (only its
 # lib: the package itself would bring the ruby command) where the Ruby glue looks for it.
 && cp -rL "$(ruby -e 'print Gem::Specification.find_by_name("rack").full_gem_path')/lib" /out/share/funcd/runtimes/ruby/vendor \
 && test -f /out/share/funcd/runtimes/ruby/vendor/rack/request.rb \
 && find /out/share/funcd/runtimes -name __pycache__ -prune -exec rm -rf {} + \
 # The glue is compiled here: a read-only root file system cannot cache bytecode.
 && python3 -m compileall -q /out/share/funcd/runtimes/python/funcd

# ---- shared: the glue, user 1000 and the pod's conventions on Debian bookworm ----
FROM ${DEBIAN_IMAGE} AS shared
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin funcd \
 && mkdir -p /kubeless
COPY --from=build /out/share/funcd /usr/local/share/funcd
ENV FUNC_PORT=8080 \
    KUBELESS_INSTALL_VOLUME=/kubeless
EXPOSE 8080
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/funcd"]
CMD ["serve"]

# ---- runtime: what the language images start from: the shared stage plus what every language
# executable links besides its interpreter (images/runtime/packages.txt: TLS and librdkafka) ----
FROM shared AS runtime
USER root
COPY images/runtime/packages.txt /tmp/packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' /tmp/packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/packages.txt
USER 1000:1000

# The base image: the front door alone (`funcd`, no interpreter; it links only the C and C++
# runtimes, which Debian always has). The language images start from `runtime`, not from here:
# each installs its one executable and links `funcd` to it (it acts as the front door under that
# name), so that it does not carry both. So does images/exec: funcd-exec links librdkafka (the
# Kafka trigger), which this image leaves out.
FROM shared AS base
COPY --from=build /out/bin/funcd /usr/local/bin/funcd
LABEL org.opencontainers.image.title="funcd-base" \
      org.opencontainers.image.description="funcd, the in-pod function server, without a language"
