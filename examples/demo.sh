#!/usr/bin/env bash
# Runs the bundled echo upstream (127.0.0.1:9001) and Portcullis in front of it (127.0.0.1:8080,
# gateway.toml, or the config given: ./examples/demo.sh examples/gateway-sqlite.toml). Ctrl-C
# stops both. The first build takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. examples/need-tools.sh
need_build_tools
cargo build --release --bin portcullis --example echo_upstream
target/release/examples/echo_upstream 127.0.0.1:9001 &
echo_pid=$!
trap 'kill "$echo_pid" 2>/dev/null || true' EXIT INT TERM
config=${1:-gateway.toml}
target/release/portcullis check -c "$config"
target/release/portcullis run -c "$config" --log-format text
