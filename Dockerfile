# syntax=docker/dockerfile:1
# pgcached: multi-stage build → small Debian runtime, non-root.
#   docker build -t pgcached .
#   docker run -p 6432:6432 -v $PWD/pgcached.yaml:/etc/pgcached/pgcached.yaml:ro pgcached

FROM rust:bookworm AS builder
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
# make sure cargo sees the real sources as newer than the dummy ones
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin pgcached \
    && install -m 0755 target/release/pgcached /usr/local/bin/pgcached
# The default file: the documented example, listening on all interfaces of the container.
COPY config.example.yaml ./
RUN sed 's/^listen: .*/listen: "0.0.0.0:6432"/' config.example.yaml > /pgcached.yaml \
    && /usr/local/bin/pgcached --check --config /pgcached.yaml

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 pgcached \
    && useradd --system --uid 10001 --gid pgcached --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin pgcached \
    && mkdir -p /etc/pgcached
COPY --from=builder /usr/local/bin/pgcached /usr/local/bin/pgcached
# A starting point; mount your own file over it. Clients reach the container from outside loopback,
# where trust is refused: your file should set auth.method to scram-sha-256 (or md5) with users,
# keep listen at 0.0.0.0:6432, and point upstream.url (or PGCACHED_UPSTREAM) at your Postgres.
COPY --from=builder /pgcached.yaml /etc/pgcached/pgcached.yaml
USER 10001:10001
EXPOSE 6432
CMD ["pgcached", "--config", "/etc/pgcached/pgcached.yaml"]
