# s2proxy container image (Debian bookworm). From the repository root:
#   docker build -t s2proxy .
#   docker run -d --name s2proxy -p 5222:5222 -p 5223:5223 -v s2proxy-data:/var/lib/s2proxy \
#     -e S2PROXY_DOMAIN=example.org -e S2PROXY_UPSTREAM=prosody.internal:5222 s2proxy
# Every setting is an S2PROXY_<FLAG> variable or a flag after the image name
# (`docker run … s2proxy --log-format json`); see deploy/README.md.
# CI checks this file without a Docker engine: deploy/check-dockerfile.sh.

# --- build: the same dependency script and CMake preset as CI (tests/run.sh) -----------------
FROM debian:bookworm AS build
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN deploy/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset default \
 && cmake --build --preset default --target s2proxy \
 && strip --strip-debug build/s2proxy

# --- runtime: shared libraries only, non-root ------------------------------------------------
FROM debian:bookworm-slim
# Every library the binary loads, named (libcap2 … liblz4-1 are libsystemd0's own, for sd_notify;
# libgssapi-krb5-2 … libffi8 are libpq5's own, for --store postgresql://;
# deploy/check-dockerfile.sh checks the list against `ldd`).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libstrophe0 libssl3 liblmdb0 libexpat1 libtomlplusplus3 libidn12 libsystemd0 \
      libcap2 libgcrypt20 libgpg-error0 liblzma5 libzstd1 liblz4-1 \
      libpq5 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 \
      libldap-2.5-0 libsasl2-2 libgnutls30 libp11-kit0 libidn2-0 libunistring2 libtasn1-6 \
      libnettle8 libhogweed6 libgmp10 libffi8 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10222 s2proxy \
 && useradd --system --uid 10222 --gid s2proxy --home-dir /var/lib/s2proxy \
      --shell /usr/sbin/nologin s2proxy \
 && install -d -o s2proxy -g s2proxy -m 0700 /var/lib/s2proxy
COPY --from=build /src/build/s2proxy /usr/local/bin/s2proxy
COPY deploy/s2proxy.8 /usr/local/share/man/man8/s2proxy.8
ENV S2PROXY_DATA_DIR=/var/lib/s2proxy \
    S2PROXY_LISTEN=0.0.0.0:5222 \
    S2PROXY_LISTEN_TLS=0.0.0.0:5223 \
    S2PROXY_METRICS=0.0.0.0:9102
VOLUME ["/var/lib/s2proxy"]
WORKDIR /var/lib/s2proxy
# = s2proxy:s2proxy; numeric so that Kubernetes' runAsNonRoot can check it
USER 10222:10222
EXPOSE 5222 5223 9102
# Real check through the event loop: GET /metrics must answer 200. `s2proxy health` finds the
# address the daemon bound in its data dir, however --metrics was set (flag, variable, file).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["s2proxy", "health", "--timeout", "4"]
ENTRYPOINT ["s2proxy", "run"]
