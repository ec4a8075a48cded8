# syntax=docker/dockerfile:1
# Multi-stage build: compile the release binary, then run it as a non-root user on a slim image.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change of the service's code does not rebuild them.
COPY Cargo.toml Cargo.lock ./
# The workspace's other members: the crates under crates/ (which the service depends on) and the
# verifier crate. Their manifests and empty libraries stand in for them while the dependencies build.
COPY verifier/Cargo.toml verifier/
COPY crates/jose/Cargo.toml crates/jose/
COPY crates/domain/Cargo.toml crates/domain/
COPY crates/store/Cargo.toml crates/store/
RUN mkdir -p src verifier/src crates/jose/src crates/domain/src crates/store/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs verifier/src/lib.rs crates/jose/src/lib.rs crates/domain/src/lib.rs \
        crates/store/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src crates/jose/src crates/domain/src crates/store/src
# The store's crate brings its migrations (crates/store/migrations), embedded at compile time.
COPY crates crates
COPY src src
COPY openapi.yaml openapi.yaml
COPY ui ui
RUN touch src/main.rs src/lib.rs crates/*/src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin access-tokens \
    && mkdir -p /var/lib/access-tokens && chown 10001:10001 /var/lib/access-tokens
COPY --from=build /src/target/release/access-tokens /usr/local/bin/access-tokens
USER 10001:10001
# Without DATABASE_URL the service keeps an embedded store in ./data: here, on a volume.
WORKDIR /var/lib/access-tokens
VOLUME /var/lib/access-tokens
# Metrics on every interface of the container, where only the monitoring network should reach
# them: publish 9464 to Prometheus alone, never beside the public port.
ENV LISTEN_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9464 \
    LOG_FORMAT=json
EXPOSE 8080 9464
# DATABASE_URL (PostgreSQL in production), KEY_ENCRYPTION_KEY, PUBLIC_URL and TRUSTED_ISSUERS
# come from the environment.
ENTRYPOINT ["/usr/local/bin/access-tokens"]
CMD ["serve"]
