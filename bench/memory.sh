#!/usr/bin/env bash
# Memory: the gateway's RSS idle, with 100,000 revoked jtis, and through a flood of 1,000,000
# distinct client IPs against an ip-keyed limiter (docs/CONFIG.md's example policy, 100/s burst 200), in one
# process: what each step adds.
#
#   bench/memory.sh                       REVOKED=100000 FLOOD_IPS=1000000 by default
#
# Memory store, one worker thread, the bundled echo upstream. Revocations go through the admin
# API (bench/seed_revocations.py); the flood is unauthenticated requests told apart by
# X-Forwarded-For (the gateway trusts 127.0.0.1), refused with 401 after the limiter counted them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
revoked=${REVOKED:-100000}
ips=${FLOOD_IPS:-1000000}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

. "$repo/examples/need-tools.sh" && need_build_tools
(cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); port=$(free_port); admin=$(free_port)
token=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
taskset -c 1 "$repo/target/release/examples/echo_upstream" "127.0.0.1:$up" >"$work/up.log" 2>&1 &
pids+=($!)
cat >"$work/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
admin_listen = "127.0.0.1:$admin"
threads = 1
trusted_proxies = ["127.0.0.1/32"]

[admin]
token = "$token"

[tokens]
issuer = "portcullis"
secret = "memory-bench-secret-0123456789abcdef0123"

[rate_limits]
by_ip = { rate = "100/s", burst = 200, key = "ip" }

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:$up"]

[[routes]]
path = "/**"
upstream = "echo"
rate_limit = ["by_ip"]
TOML
PORTCULLIS_LOG=warn taskset -c 0 "$repo/target/release/portcullis" run -c "$work/gateway.toml" \
  >"$work/gw.log" 2>&1 &
gw=$!
pids+=($gw)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }
(while kill -0 "$gw" 2>/dev/null; do rss; sleep 0.5; done) >"$work/rss.log" &
pids+=($!)
sleep 2
idle=$(rss)

PORTCULLIS_ADMIN_TOKEN=$token taskset -c 1 python3 "$repo/bench/seed_revocations.py" \
  "127.0.0.1:$admin" "$revoked" 0
sleep 1
with_revoked=$(rss)

secs=$((ips / 40000 + 5))
FLOOD_IPS=$ips taskset -c 1 wrk -t1 -c50 -d"${secs}s" -s "$repo/bench/ip_flood.lua" \
  "http://127.0.0.1:$port/" >"$work/wrk.txt"
at_end=$(rss)
peak=$( (cat "$work/rss.log"; echo "$at_end") | sort -n | tail -1)
sleep 21   # two pruning rounds (every 10 s) forget the full buckets
after=$(rss)

sent=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
echo "| state | RSS |"
echo "|---|---:|"
echo "| idle | $(mib "$idle") |"
echo "| + $revoked revoked jtis | $(mib "$with_revoked") |"
echo "| + $(( sent < ips ? sent : ips )) distinct client IPs through by_ip: peak | $(mib "$peak") |"
echo "| at the flood's end | $(mib "$at_end") |"
echo "| 21 s later (two pruning rounds) | $(mib "$after") |"
