# ferry-edge: the update client of a node: A/B slots, health check, rollback.
# Build from the repository root (BuildKit sends only the paths copied below):
#   docker build -f docker/ferry-edge.Dockerfile -t ferry-edge .

# ---- build: the toolchain and libraries of scripts/deps.sh, as on a developer's
# machine and in CI, so the image is built exactly as tested.
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config clang clang-format libclang-rt-14-dev \
        libpaho-mqtt-dev libssl-dev mosquitto mosquitto-clients \
        libmbedtls-dev libcjson-dev libcoap3-dev libcoap3-bin \
        libcunit1-dev libsqlite3-dev openssl python3 iproute2 procps \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY common common
COPY proto proto
COPY cloud-bridge cloud-bridge
COPY gateway gateway
COPY install install
COPY edge-client edge-client
COPY tests tests
COPY deploy deploy
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j"$(nproc)" --target ferry-edge

# ---- runtime: the shared libraries ferry-edge links against, nothing else.
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libssl3 libmbedcrypto7 libcjson1 libcoap3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The same uid in every Ferry image, so volumes they share (the release key)
# have one owner; the directories exist here so that new volumes take it.
RUN groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid ferry --no-create-home --home-dir /nonexistent ferry \
 && install -d -o ferry -g ferry -m 0750 /var/lib/ferry-edge
COPY --from=build /build/edge-client/ferry-edge /usr/local/bin/ferry-edge
USER ferry
STOPSIGNAL SIGTERM
ENTRYPOINT ["ferry-edge"]
CMD ["--help"]
