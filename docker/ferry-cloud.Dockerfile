# ferry-cloud: release keys, signing, publishing, artifact streaming (serve) and the fleet
# inventory (status).
# Build from the repository root (BuildKit sends only the paths copied below):
#   docker build -f docker/ferry-cloud.Dockerfile -t ferry-cloud .

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
 && cmake --build /build -j"$(nproc)" --target ferry-cloud

# ---- runtime: the shared libraries ferry-cloud links against, and openssl
# with the certificate scripts for compose's one-shot `pki` service.
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpaho-mqtt1.3 libssl3 libmbedcrypto7 libcjson1 libsqlite3-0 ca-certificates openssl \
 && rm -rf /var/lib/apt/lists/*
COPY certs/mkcerts.sh certs/mkacl.sh /usr/local/share/ferry/certs/
# The same uid in every Ferry image, so volumes they share (the release key)
# have one owner; the directories exist here so that new volumes take it.
RUN groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid ferry --no-create-home --home-dir /nonexistent ferry \
 && install -d -o ferry -g ferry -m 0750 /var/lib/ferry-cloud /keys
COPY --from=build /build/cloud-bridge/ferry-cloud /usr/local/bin/ferry-cloud
USER ferry
STOPSIGNAL SIGTERM
ENTRYPOINT ["ferry-cloud"]
CMD ["--help"]
