#!/usr/bin/env bash
# Login throughput per core, by where the users live: users.toml, SQLite, PostgreSQL.
#
#   bench/login_db.sh          DURATION=10 (s per backend), CONNS=16 (logins in flight)
#
# The gateway runs on CPU 0 with one worker thread and one password thread (argon2id at the
# default cost, as `users add` makes it); wrk drives POST /auth/login from CPU 1, as does the
# PostgreSQL server (this machine's, a database of the bench's own). Prints logins/s for each
# backend and each one's ratio to the users file.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
secs=${DURATION:-10}
conns=${CONNS:-16}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
. "$repo/examples/need-tools.sh" && need_build_tools && need_test_services
pg_server=${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
db=portcullis_bench_$$
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  psql "$pg_server" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$repo" && cargo build --release --locked --bin portcullis)
bin=$repo/target/release/portcullis
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
psql "$pg_server" -qc "CREATE DATABASE $db" >/dev/null
pg_url=$(python3 -c "import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path='/$db').geturl())" "$pg_server")

password=lantern-orbit-plum-0123
cat >"$work/login.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "bench", "password": "$password"}'
LUA

# One run: $1 the label, $2 the [login] lines.
run() {
  local label=$1 login=$2 port
  port=$(free_port)
  cat >"$work/gateway.toml" <<TOML
[server]
listen = ["127.0.0.1:$port"]
threads = 1

[tokens]
issuer = "portcullis"
secret = "login-bench-secret-0123456789abcdef0123"

[login]
rate_limit = "1000000/s"
max_failed_attempts = 1000000
$login

[[upstreams]]
name = "none"
targets = ["127.0.0.1:9"]

[[routes]]
path = "/**"
upstream = "none"
auth = "none"
TOML
  if [[ "$login" == *users_db* ]]; then
    printf '%s\n' "$password" | "$bin" users add bench -c "$work/gateway.toml" >/dev/null
  fi
  PORTCULLIS_LOG=warn taskset -c 0 "$bin" run -c "$work/gateway.toml" >"$work/$label.log" 2>&1 &
  local gw=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/x" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\": \"bench\", \"password\": \"$password\"}" || { echo "$label: login failed" >&2; cat "$work/$label.log" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" -s "$work/login.lua" "http://127.0.0.1:$port/auth/login" >"$work/$label.txt"
  kill "$gw"; wait "$gw" 2>/dev/null || true
  local rps non2xx
  rps=$(awk '/Requests\/sec/{print $2}' "$work/$label.txt")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$work/$label.txt")
  echo "$label $rps ${non2xx:-0}" >>"$work/results"
}

hash=$(printf '%s' "$password" | "$bin" hash-password)
printf '[[users]]\nusername = "bench"\npassword_hash = "%s"\n' "$hash" >"$work/users.toml"
run users.toml 'users_file = "users.toml"'
run sqlite "users_db = \"sqlite://$work/users.db\"
db_key = \"login-bench-db-key-0123456789abcdef0123\""
run postgres "users_db = \"$pg_url\"
db_key = \"login-bench-db-key-0123456789abcdef0123\""

python3 - "$work/results" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
base = float(rows[0][1])
print("| users in | logins/s (1 password core) | non-2xx | x users.toml |")
print("|---|---|---|---|")
for label, rps, bad in rows:
    print(f"| {label} | {float(rps):.1f} | {bad} | {float(rps) / base:.2f} |")
PY
