#!/usr/bin/env bash
# Memory under a flood of distinct client IPs through an ip-keyed rate limit: the RSS of the
# gateway idle, at the flood's peak, and after two pruning rounds, with the keys it holds.
#
#   bench/ip_flood.sh                 1,000,000 IPs under docs/CONFIG.md's example policy (100/s, burst 200)
#   FLOOD_IPS=2000000 RATE=1/h bench/ip_flood.sh    a policy whose keys never refill in time:
#                                                   only the key cap (2^20 per policy) bounds it
#
# The requests carry no credential on an `auth = "required"` route, so each is counted by the
# limiter (pipeline step 6) and then refused with 401 without touching an upstream: an
# unauthenticated flood. wrk on CPU 1, the gateway on CPU 0.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ips=${FLOOD_IPS:-1000000}
rate=${RATE:-100/s}
burst=${BURST:-200}
conns=${CONNS:-50}
work=$(mktemp -d)
trap 'kill "$gw" "$sampler" 2>/dev/null || true; rm -rf "$work"' EXIT

. "$repo/examples/need-tools.sh" && need_build_tools
(cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
threads = 1
trusted_proxies = ["127.0.0.1/32"]

[tokens]
issuer = "portcullis"
secret = "flood-bench-secret-0123456789abcdef0123"

[rate_limits]
by_ip = { rate = "$rate", burst = $burst, key = "ip" }

[[upstreams]]
name = "nowhere"
targets = ["127.0.0.1:9"]

[[routes]]
path = "/**"
upstream = "nowhere"
rate_limit = ["by_ip"]
TOML

PORTCULLIS_LOG="warn,portcullis::app=debug" taskset -c 0 \
  "$repo/target/release/portcullis" run -c "$work/gateway.toml" >"$work/gw.log" 2>&1 &
gw=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

rss() { awk '/VmRSS/ {print $2}' "/proc/$gw/status"; }
(while kill -0 "$gw" 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 1; done) >"$work/rss.log" &
sampler=$!

idle=$(rss)
# Long enough for every address at least once at the ~70k req/s one core refuses; wrk reports what it sent.
secs=$((ips / 40000 + 5))
FLOOD_IPS=$ips taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -s "$repo/bench/ip_flood.lua" \
  "http://127.0.0.1:$port/" >"$work/wrk.txt"
at_end=$(rss)
peak=$(awk -v e="$at_end" 'BEGIN {m = e} $2 > m {m = $2} END {print m}' "$work/rss.log")
sleep 21   # two pruning rounds (every 10 s); wall-clock is what is measured here
after=$(rss)

sent=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
echo "policy: rate = \"$rate\", burst = $burst, key = \"ip\"; $ips distinct client IPs"
grep -E 'requests in|Requests/sec|Non-2xx' "$work/wrk.txt" | sed 's/^ */wrk: /'
echo "distinct IPs sent: $(( sent < ips ? sent : ips ))"
echo "keys held after each pruning round:"
grep -o '"keys":[0-9]*' "$work/gw.log" | sed 's/"keys":/  /' | tr '\n' ' '; echo
echo "RSS idle:          $((idle / 1024)) MiB"
echo "RSS peak:          $((peak / 1024)) MiB"
echo "RSS at flood end:  $((at_end / 1024)) MiB"
echo "RSS 21 s later:    $((after / 1024)) MiB"
