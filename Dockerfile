# syntax=docker/dockerfile:1
# ezpoll: multi-stage image. Build: `docker build -t ezpoll .`; run: `docker run ezpoll run --help`.
#
# Builder: the official Swift image on Debian 12 (bookworm) plus librdkafka-dev (the
# CRdKafka system library target finds it through pkg-config `rdkafka`). Swift 6.2 or
# later is needed: swift-metrics and swift-prometheus declare swift-tools-version 6.2.
ARG SWIFT_VERSION=6.3
FROM swift:${SWIFT_VERSION}-bookworm AS builder

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends librdkafka-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /build
# Resolve dependencies first so that source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
COPY schemas ./schemas

# Release build with the Swift runtime (stdlib, Foundation, Dispatch) linked statically:
# the runtime image then needs only glibc, libstdc++ and librdkafka.
RUN swift build -c release --product ezpoll --static-swift-stdlib \
 && mkdir -p /staging \
 && cp "$(swift build -c release --show-bin-path)/ezpoll" /staging/ezpoll \
 && strip /staging/ezpoll \
 && (cp /usr/libexec/swift/linux/swift-backtrace-static /staging/swift-backtrace 2>/dev/null || true)

# Runtime: slim Debian 12 with librdkafka1 (the shared library the binary links) and CA
# certificates for https providers. No compiler, no Swift toolchain.
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends librdkafka1 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ezpoll

COPY --from=builder /staging/ /usr/local/bin/
# Crash backtraces through the statically linked backtracer, when the builder had one.
ENV SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/usr/local/bin/swift-backtrace

USER ezpoll:ezpoll
# /metrics, /health/live, /health/ready of `ezpoll run` (EZPOLL_METRICS_PORT).
EXPOSE 9464
ENTRYPOINT ["ezpoll"]
CMD ["--help"]
