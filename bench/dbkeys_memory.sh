#!/usr/bin/env bash
# Memory with API keys users made: the gateway's peak RSS (VmHWM) with KEYS keys in a SQLite
# users_db (bench/seed_dbkeys.py, 100,000 by default, as the rig's dbkeys scenario), once it
# answers, and after each of the first PRESENT of the rig's keys (apikeys.map, each its own
# owner) was used at least once.
#
#   bench/dbkeys_memory.sh            KEYS=100000 PRESENT=10000 by default
#   NO_BUILD=1 bench/dbkeys_memory.sh use target/release as it is
#   NO_BUILD=1 PORTCULLIS_BIN=/path/to/portcullis bench/dbkeys_memory.sh   another build
#
# Memory store, one worker thread, the bundled echo upstream; the route asks for role admin,
# which every seeded key has, so each request reaches the upstream.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
keys=${KEYS:-100000}
present=${PRESENT:-10000}
map=${APIKEYS_FILE:-$repo/../shared/bench/keys/apikeys.map}
target=${CARGO_TARGET_DIR:-$repo/target}
bin=${PORTCULLIS_BIN:-$target/release/portcullis}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

if [ -z "${NO_BUILD:-}" ]; then
  (cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream)
fi
python3 "$repo/bench/seed_dbkeys.py" "$work/keys.db" "$map" "$keys" \
  "$repo/src/accounts/db/migrations/sqlite/0001_accounts.sql"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); port=$(free_port); admin=$(free_port)
"$target/release/examples/echo_upstream" "127.0.0.1:$up" >"$work/up.log" 2>&1 &
pids+=($!)
cat >"$work/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
admin_listen = "127.0.0.1:$admin"
threads = 1

[admin]
token = "$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')"

[tokens]
issuer = "portcullis"
secret = "memory-bench-secret-0123456789abcdef0123"

[roles]
admin = { permissions = ["*"] }

[rate_limits]
by_key = { rate = "1000000/s", burst = 1000000, key = "api_key" }

[[upstreams]]
name = "echo"
targets = ["127.0.0.1:$up"]

[[routes]]
path = "/**"
upstream = "echo"
accept = ["api_key"]
roles_any = ["admin"]
rate_limit = ["by_key"]

[login]
users_db = "sqlite://$work/keys.db"
db_key = "memory-bench-db-key-0123456789abcdef0123"
TOML
PORTCULLIS_LOG=warn "$bin" run -c "$work/gateway.toml" >"$work/gw.log" 2>&1 &
gw=$!
pids+=($gw)
first=$(awk 'NF == 2 {print $1; exit}' "$map")
for _ in $(seq 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $first" "http://127.0.0.1:$port/" || true)
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || { echo "the gateway did not answer 200 (got $code)" >&2; cat "$work/gw.log" >&2; exit 1; }

hwm() { awk '/^VmHWM/ {print $2}' "/proc/$gw/status"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$gw/status"; }
started_hwm=$(hwm); started_rss=$(rss)

# Each of the first PRESENT keys at least once (wrk cycles through the file, bench/cred.lua).
awk -v n="$present" 'NF == 2 && c < n {print $1; c++}' "$map" >"$work/creds"
BENCH_CRED_FILE="$work/creds" BENCH_CRED_HEADER=X-API-Key wrk -t1 -c10 -d3s \
  -s "$repo/bench/cred.lua" "http://127.0.0.1:$port/" >"$work/wrk.txt"
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
[ -z "$non2xx" ] || { echo "refused: $non2xx responses" >&2; exit 1; }
sent=$(awk '/requests in/ {print $1}' "$work/wrk.txt")

mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
echo "| $keys keys in users_db | peak (VmHWM) | RSS |"
echo "|---|---:|---:|"
echo "| answering | $(mib "$started_hwm") | $(mib "$started_rss") |"
echo "| after $sent requests over $present keys | $(mib "$(hwm)") | $(mib "$(rss)") |"
