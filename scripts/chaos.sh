#!/usr/bin/env bash
# A chaos run (docs/CHAOS.md): two Portcullis instances on one Redis and one PostgreSQL of the
# run's own, under steady load (scripts/chaos/driver.py), while Redis and PostgreSQL are killed
# with SIGKILL and restarted, a broken config is reloaded, SIGHUPs come in storms and the
# signing key is rotated. Prints a table of figures; exits 1 if a target is missed.
#
#   scripts/chaos.sh [SECONDS]     # seconds of load, default 180 (the whole run: ~4 minutes)
#
# Loopback only, free ports, everything in one `mktemp -d` directory (kept when the run fails,
# or with CHAOS_KEEP=1), everything started here is killed on exit. CHAOS_REDIS_AOF=1 runs Redis
# with an fsync'd append-only file instead of an empty restart (docs/CHAOS.md says why not by
# default). CHAOS_WORKERS sets the load's threads (default 6).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-180}
if ! [[ $duration =~ ^[0-9]+$ ]] || [ "$duration" -lt 90 ]; then
  echo "usage: scripts/chaos.sh [SECONDS]   (seconds of load, at least 90)" >&2
  exit 2
fi
for tool in redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 2; }
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "error: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin" >&2; exit 2; }

cargo build --quiet --release --bin portcullis --example echo_upstream
bin=target/release/portcullis

work=$(mktemp -d -t portcullis-chaos.XXXXXX)
started=()            # pids of what we started (redis, postgres are tracked apart)
redis_pid="" pg_pid="" driver_pid="" ok=0
log() { printf '[chaos %s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
  set +e
  [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null; done
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
  kill_postgres
  sleep 0.5
  for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$ok" = 1 ] && [ -z "${CHAOS_KEEP:-}" ]; then
    rm -rf "$work"
  else
    echo "logs and configs kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports: bound all at once (so they differ), then released for our servers.
read -r port_a port_b admin_a admin_b port_up port_redis port_pg < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks: s.close()')
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }
# Secrets reach the gateways through the environment only: never in a file or the output.
CHAOS_ADMIN_TOKEN=$(rand) CHAOS_DB_KEY=$(rand) CHAOS_KEY_0=$(rand) CHAOS_KEY_1=$(rand)
export CHAOS_ADMIN_TOKEN CHAOS_DB_KEY CHAOS_KEY_0 CHAOS_KEY_1
events=$work/events
: >"$events"
# One line per chaos event, `<unix time> <name> <detail>`: the driver reads the outage windows
# and restart times from it.
event() { printf '%s %s %s\n' "$(date +%s.%N)" "$1" "${2:--}" >>"$events"; log "$1 ${2:-}"; }

# --- Redis: nothing on disk by default, so a SIGKILL loses everything (see docs/CHAOS.md) ---
mkdir -p "$work/redis"
redis_args=(--port "$port_redis" --bind 127.0.0.1 --dir "$work/redis" --save '')
if [ -n "${CHAOS_REDIS_AOF:-}" ]; then
  redis_args+=(--appendonly yes --appendfsync always)
else
  redis_args+=(--appendonly no)
fi
start_redis() {
  redis-server "${redis_args[@]}" >>"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 200); do
    [ "$(redis-cli -p "$port_redis" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "error: redis-server did not start (see $work/redis.log)" >&2
  return 1
}

# --- PostgreSQL: a cluster of our own, run as the postgres user when we are root ---
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
  mkdir -p "$work/pg"
  chown postgres "$work/pg"
  chmod 711 "$work"   # postgres may pass through, not list
fi
mkdir -p "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1
"${as_pg[@]}" mkdir -p "$work/pg/sock"
start_postgres() {
  # After a SIGKILL pg_ctl finds a stale postmaster.pid and starts anyway (crash recovery).
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 30 \
    -o "-p $port_pg -h 127.0.0.1 -k $work/pg/sock" start >>"$work/pg_ctl.log" 2>&1 ||
    { echo "error: postgres did not start (see $work/pg_ctl.log)" >&2; return 1; }
  pg_pid=$(head -n 1 "$work/pg/data/postmaster.pid")
}
# SIGKILL the postmaster and its children at once, as a crashed host or container would: only
# ever the processes of our own cluster, by pid.
kill_postgres() {
  [ -n "$pg_pid" ] || return 0
  local children
  children=$(ps -o pid= --ppid "$pg_pid" 2>/dev/null | tr '\n' ' ')
  # shellcheck disable=SC2086
  kill -KILL "$pg_pid" $children 2>/dev/null || true
  pg_pid=""
}

# --- the gateways' configs: made from the template; rotation and breakage rewrite them ---
key_phase=0
write_config() { # instance listen admin [broken]
  local text secrets broken=""
  text=$(<scripts/chaos/gateway.toml.in)
  case $key_phase in
    0) secrets='secret = "${CHAOS_KEY_0}"' ;;
    1) secrets=$'secret = "${CHAOS_KEY_0}"\nprevious_secrets = ["${CHAOS_KEY_1}"]' ;;
    2) secrets=$'secret = "${CHAOS_KEY_1}"\nprevious_secrets = ["${CHAOS_KEY_0}"]' ;;
  esac
  # Two errors at once: an upstream that does not exist and a value `auth` cannot take.
  [ -n "${4:-}" ] && broken=$'[[routes]]\nname = "broken"\npath = "/broken/**"\nupstream = "nowhere"\nauth = "sometimes"'
  text=${text//@LISTEN@/127.0.0.1:$2}
  text=${text//@ADMIN_LISTEN@/127.0.0.1:$3}
  text=${text//@REDIS_URL@/redis://127.0.0.1:$port_redis/0}
  text=${text//@PG_URL@/postgres://postgres@127.0.0.1:$port_pg/portcullis}
  text=${text//@UPSTREAM@/127.0.0.1:$port_up}
  text=${text//@SECRET_LINES@/$secrets}
  text=${text//@BROKEN@/$broken}
  # Renamed into place: the file watcher never reads half a file.
  printf '%s\n' "$text" >"$work/gw-$1.toml.new"
  mv "$work/gw-$1.toml.new" "$work/gw-$1.toml"
}
write_configs() { write_config a "$port_a" "$admin_a" "${1:-}"; write_config b "$port_b" "$admin_b" "${1:-}"; }

start_gateway() { # instance admin-port
  # Our own pid file and upgrade socket: nothing shared with another gateway on this machine.
  "$bin" run -c "$work/gw-$1.toml" --pid-file "$work/gw-$1.pid" --upgrade-sock "$work/gw-$1.sock" \
    >>"$work/gw-$1.log" 2>&1 &
  started+=($!)
  eval "gw_$1=$!"
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: gateway $1 not ready (see $work/gw-$1.log)" >&2
  return 1
}
metric() { # admin-port result: portcullis_config_reloads_total{result=...}
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v r="result=\"$2\"" 'index($0, "portcullis_config_reloads_total{") == 1 && index($0, r) { print $NF + 0; f = 1 } END { if (!f) print 0 }'
}
hup_both() { kill -HUP "$gw_a" "$gw_b"; }
alive() { kill -0 "$1" 2>/dev/null && echo yes || echo no; }

log "building done; work directory $work"
start_redis
start_postgres
"$pgbin/createdb" -h 127.0.0.1 -p "$port_pg" -U postgres portcullis
target/release/examples/echo_upstream "127.0.0.1:$port_up" >"$work/echo.log" 2>&1 &
started+=($!)
write_configs
"$bin" check -c "$work/gw-a.toml" >/dev/null
start_gateway a "$admin_a"
start_gateway b "$admin_b"
log "gateways ready: a on $port_a (pid $gw_a), b on $port_b (pid $gw_b); redis $port_redis, postgres $port_pg"

driver=(python3 scripts/chaos/driver.py --gateway "127.0.0.1:$port_a:$admin_a:$gw_a"
  --gateway "127.0.0.1:$port_b:$admin_b:$gw_b" --events "$events" --work "$work"
  --duration "$duration" --workers "${CHAOS_WORKERS:-6}")
"${driver[@]}" setup
"${driver[@]}" run >"$work/report.md" &
driver_pid=$!
t0=$(date +%s.%N)
at() { # seconds into a 180 s run, scaled to this one's length: sleeps until then
  local when
  when=$(python3 -c "print(max(0.0, $t0 + $1 * $duration / 180 - $(date +%s.%N)))")
  sleep "$when"
}
outage() { # services down-seconds: SIGKILL, wait, start again on the same port
  local svc
  for svc in $1; do
    # The event first: its time opens the window in which 503s are expected.
    event "$svc-kill" "$2s"
    case $svc in
      redis) kill -KILL "$redis_pid"; wait "$redis_pid" 2>/dev/null || true ;;
      pg) kill_postgres ;;
    esac
  done
  sleep "$2"
  for svc in $1; do
    event "$svc-launch"
    case $svc in redis) start_redis ;; pg) start_postgres ;; esac
    event "$svc-ready"
  done
}

gateway_crash() { # instance admin-port down-seconds: SIGKILL one gateway, start it again. Its
  # revocations then come from Redis alone, which restarted empty and was refilled: the test
  # of that refill.
  local pid p keep=()
  pid=$(eval "echo \$gw_$1")
  event "gw-$1-kill" "$3s"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  for p in "${started[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  started=("${keep[@]}")
  sleep "$3"
  event "gw-$1-launch"
  start_gateway "$1" "$2"
  event "gw-$1-ready" "$(eval "echo \$gw_$1")"
}
storm() { # 50 SIGHUPs to each instance within a second, with the good config
  local oa ob
  oa=$(metric "$admin_a" ok) ob=$(metric "$admin_b" ok)
  event sighup-storm "50x2"
  for _ in $(seq 50); do hup_both; sleep 0.01; done
  sleep 2
  event storm-result "a_alive=$(alive "$gw_a"),b_alive=$(alive "$gw_b"),a_reloads=$(($(metric "$admin_a" ok) - oa)),b_reloads=$(($(metric "$admin_b" ok) - ob))"
}

# The timeline (for 180 s of load; scaled to SECONDS). Outages last 8 s, past max_staleness (5 s),
# so that on_failure = "closed" shows; the short one stays under it.
at 12; key_phase=1; write_configs; hup_both; event key-rotate "new key verify-only"
at 22; outage redis 8
at 50; outage pg 8
at 78
ea=$(metric "$admin_a" error) eb=$(metric "$admin_b" error)
write_configs broken; hup_both; event reload-broken
sleep 2
na=$(metric "$admin_a" error) nb=$(metric "$admin_b" error)
grep -q 'config reload refused: the running config stays' "$work/gw-a.log" && la=yes || la=no
grep -q 'config reload refused: the running config stays' "$work/gw-b.log" && lb=yes || lb=no
event reload-refused "a=$([ "$na" -gt "$ea" ] && echo "$la" || echo no),b=$([ "$nb" -gt "$eb" ] && echo "$lb" || echo no)"
write_configs; hup_both; event reload-restored
at 92; storm
at 105; key_phase=2; write_configs; hup_both; event key-rotate "signing with the new key"
at 118; outage redis 2
at 135; outage "redis pg" 8
at 152; gateway_crash b "$admin_b" 3
at 165; storm

set +e
wait "$driver_pid"
rc=$?
driver_pid=""
set -e
cat "$work/report.md"
[ "$rc" = 0 ] && ok=1
exit "$rc"
