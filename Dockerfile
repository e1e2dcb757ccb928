# ipguard container image: `ipguard manager` (the default command) and `ipguard check`.
#
#   docker build -t ghcr.io/ipguard/ipguard:0.1.0 .
#   docker run --rm ghcr.io/ipguard/ipguard:0.1.0 version
#   docker run --rm -v "$PWD/examples:/work:ro" ghcr.io/ipguard/ipguard:0.1.0 check /work/clean
#
# Two stages on Debian 12 (bookworm): the builder installs the build dependencies with the
# project's own scripts/setup.sh and builds with scripts/build.sh; the runtime stage has only
# the shared libraries the binary links, from Debian's packages, and runs as UID 65532.

FROM debian:bookworm-slim AS build
WORKDIR /src
# Dependencies first, so that a source change does not reinstall them.
COPY scripts/setup.sh scripts/setup.sh
RUN scripts/setup.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN BUILD_DIR=build scripts/build.sh -DIPGUARD_TESTS=OFF -DIPGUARD_BENCH=OFF \
 && strip --strip-unneeded build/cmd/ipguard \
 && build/cmd/ipguard version

FROM debian:bookworm-slim
# The runtime libraries of cpprestsdk, yaml-cpp, OpenSSL, spdlog and fmt (libstdc++ and
# libc are in the base image); ca-certificates for TLS to the API server.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libcpprest2.10 \
      libyaml-cpp0.7 \
      libssl3 \
      libspdlog1.10 \
      libfmt9 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/cmd/ipguard /usr/local/bin/ipguard
# Fail the build here, not in the cluster, if a shared library is missing.
RUN libs="$(ldd /usr/local/bin/ipguard)" \
 && if echo "$libs" | grep -q "not found"; then echo "$libs"; exit 1; fi \
 && /usr/local/bin/ipguard version
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ipguard" \
      org.opencontainers.image.description="IP address plan guard for AKS on Azure Local: validating webhook, operator and offline checker" \
      org.opencontainers.image.version="${VERSION}"
# The chart's restricted security context runs as this UID and GID too (runAsNonRoot).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ipguard"]
CMD ["manager"]
