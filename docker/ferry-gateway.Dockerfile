# ferry-gateway: relays signed releases from the cloud (MQTT) to edge nodes (CoAP).
# Build from the repository root (BuildKit sends only the paths copied below):
#   docker build -f docker/ferry-gateway.Dockerfile -t ferry-gateway .

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
 && cmake --build /build -j"$(nproc)" --target ferry-gateway

# ---- runtime: the shared libraries ferry-gateway links against, nothing else.
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpaho-mqtt1.3 libssl3 libmbedcrypto7 libcjson1 libcoap3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The same uid in every Ferry image, so volumes they share (the release key)
# have one owner; the directories exist here so that new volumes take it.
RUN groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid ferry --no-create-home --home-dir /nonexistent ferry \
 && install -d -o ferry -g ferry -m 0750 /var/lib/ferry-gateway /var/cache/ferry-gateway
COPY --from=build /build/gateway/ferry-gateway /usr/local/bin/ferry-gateway
USER ferry

# CoAP for the nodes (coaps:// with --psk-file on another port if you like).
EXPOSE 5683/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["ferry-gateway"]
CMD ["--help"]
