#!/usr/bin/env bash
# Proxied latency with and without a login storm: argon2id at the default cost (what
# `portcullis hash-password` makes), as many logins at once as the password pool takes.
#
#   bench/login_storm.sh          RATE=1000 (proxied req/s, fixed), STORM=16 (logins in flight)
#
# The gateway runs on CPU 0 with one worker thread (so its one password thread shares that
# core); the echo upstream, oha (fixed-rate, latency-corrected) and the wrk login storm run on
# CPU 1. Prints p50/p99 of the proxied requests in both runs and their ratio.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rate=${RATE:-1000}
storm=${STORM:-16}
secs=${DURATION:-15}
export PATH=$repo/target/bench-tools/bin:$PATH
command -v oha >/dev/null || cargo install oha --locked --root "$repo/target/bench-tools"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

. "$repo/examples/need-tools.sh" && need_build_tools
(cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream)
bin=$repo/target/release
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); gw=$(free_port)

password=storm-password-0123
hash=$(printf '%s' "$password" | "$bin/portcullis" hash-password)
cat >"$work/users.toml" <<TOML
[[users]]
username = "storm"
password_hash = "$hash"
TOML
cat >"$work/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:$gw"]
threads = 1

[tokens]
issuer = "portcullis"
secret = "storm-bench-secret-0123456789abcdef0123"

[login]
rate_limit = "1000000/s"
max_failed_attempts = 1000000

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:$up"]

[[routes]]
path = "/**"
upstream = "echo"
auth = "none"
TOML
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "storm", "password": "$password"}'
LUA

taskset -c 1 "$bin/examples/echo_upstream" "127.0.0.1:$up" >/dev/null 2>&1 & pids+=($!)
PORTCULLIS_LOG=warn taskset -c 0 "$bin/portcullis" run -c "$work/gateway.toml" >"$work/gw.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$gw/x" && break; sleep 0.1; done

measure() {
  taskset -c 1 oha --no-tui --output-format json -z "${secs}s" -c 16 -q "$rate" --latency-correction \
    "http://127.0.0.1:$gw/orders" >"$work/$1.json"
  python3 - "$work/$1.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
print(f'{sys.argv[2]:>12}: p50 {p["p50"]*1000:.3f} ms  p99 {p["p99"]*1000:.3f} ms  rps {d["summary"]["requestsPerSec"]:.0f}  statuses {codes}')
PY
}
measure quiet
taskset -c 1 wrk -t1 -c"$storm" -d"$((secs + 10))s" -s "$work/login.lua" "http://127.0.0.1:$gw/auth/login" \
  >"$work/storm.txt" 2>&1 & pids+=($!)
sleep 3
measure storm
wait "${pids[-1]}" || true
echo "login storm: $(grep -E 'Requests/sec' "$work/storm.txt" | awk '{print $2}') logins/s, $(grep -c . "$work/storm.txt" >/dev/null; grep -E 'Non-2xx' "$work/storm.txt" || echo 'all 200')"
python3 - "$work/quiet.json" "$work/storm.json" <<'PY'
import json, sys
q, s = (json.load(open(f))["latencyPercentiles"]["p99"] for f in sys.argv[1:])
print(f"p99 under the storm / quiet: {s / q:.2f}x")
PY
