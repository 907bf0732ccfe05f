# A stand-in for swift:6.3-bookworm, for machines that reach no registry (see ./make): the
# packages the official swift:<version>-bookworm image installs (swiftlang/swift-docker,
# debian/12), then the toolchain this machine has, unpacked over /usr as that image does. The
# build context is the toolchain's folder (the one holding usr/).
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN export DEBIAN_FRONTEND=noninteractive \
 && apt-get -q update \
 && apt-get -q install -y binutils libicu-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev \
      libncurses-dev libpython3-dev libxml2-dev pkg-config uuid-dev tzdata git gcc libstdc++-12-dev \
 && rm -rf /var/lib/apt/lists/*
COPY usr /usr
RUN chmod -R o+r /usr/lib/swift && swift --version
# Where github.com is read from a local mirror instead (the machine's own git setting, given as a
# build argument), the image reads it the same way; builds then mount the mirror at this path.
ARG GITHUB_MIRROR=
RUN if [ -n "$GITHUB_MIRROR" ]; then \
      for prefix in https://github.com/ git@github.com: ssh://git@github.com/; do \
        git config --system --add "url.$GITHUB_MIRROR/.insteadOf" "$prefix"; \
      done; \
    fi
