# Build: the same `cargo build --release --locked --bin portcullis` that .ci/run proves.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis

# Run: a slim image, a non-root user, gateway.toml mounted at /etc/portcullis/gateway.toml.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home portcullis
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER portcullis
WORKDIR /etc/portcullis
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/portcullis", "-c", "/etc/portcullis/gateway.toml"]
CMD ["run"]
