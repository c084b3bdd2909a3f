#!/usr/bin/env bash
# The repeatable measure: user-space instructions per request under valgrind's callgrind, for
# plain Pingora (examples/plain_pingora) and Portcullis on the same fixed request mix, and where
# Portcullis's extra instructions go, by function.
#
#   bench/callgrind.sh                      pingora and hs256-rl+log (the issue's path)
#   MODES='pingora plain hs256-rl+log' bench/callgrind.sh
#   SHORT=500 LONG=2500 bench/callgrind.sh  the two run lengths
#
# A mode is one of bench/adapter.sh's (the rig's gateway.toml, revocations seeded through the
# admin API). Each mode runs twice under callgrind, with SHORT and with LONG requests after one
# warming pass over the 1,000 credentials (bench/callgrind_load.py, one keep-alive connection,
# every answer checked); per request = (Ir(LONG) - Ir(SHORT)) / (LONG - SHORT), so start-up,
# the warming pass and shutdown cancel out. Every thread counts (the log writer's too). The
# upstream is the rig's nginx on a port of its own. Output: target/callgrind/<stamp>/
# (report.md, the callgrind files); bench/callgrind_report.py writes the report.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rig=${RIG:-$repo/../shared/bench}
MODES=${MODES:-pingora hs256-rl+log}
SHORT=${SHORT:-500} LONG=${LONG:-2500}
for tool in valgrind nginx callgrind_annotate; do
  command -v "$tool" >/dev/null || {
    echo "installing valgrind nginx" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind nginx >/dev/null
    break
  }
done
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  . "$repo/examples/need-tools.sh" && need_build_tools
  (cd "$repo" && cargo build --release --locked --bin portcullis --example plain_pingora)
  PORTCULLIS_BIN=$repo/target/release/portcullis
fi
real_dir=$(cd "$(dirname "$PORTCULLIS_BIN")" && pwd)

out=$repo/target/callgrind/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out/bin/examples"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A free port whose +1000 (the adapter's admin listener) is free too.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 40000)
    try:
        for q in (p, p + 1000, p + 3000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass
PY
}
wait_port() {
  for _ in $(seq 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answered on port $1" >&2
  return 1
}

# The upstream: the rig's fixed 100-byte JSON, echoing the identity headers.
up_port=$(free_port)
mkdir -p "$out/upstream"
sed "s/127.0.0.1:18080/127.0.0.1:$up_port/" "$rig/conf/upstream-nginx.conf" >"$out/upstream/nginx.conf"
setsid nginx -p "$out/upstream/" -e "$out/upstream/error.log" -c "$out/upstream/nginx.conf" \
  -g "pid $out/upstream/nginx.pid;" &
pids+=($!)
wait_port "$up_port"

# Runs one mode under callgrind for N requests; prints its total instructions.
run_one() {
  local mode=$1 n=$2 tag=${1//[^a-z0-9-]/_}-$2
  local file=$out/$tag.callgrind dir=$out/$tag
  mkdir -p "$dir"
  # The adapter starts `$PORTCULLIS_BIN` (and examples/plain_pingora beside it): here both go
  # through valgrind.
  for exe in portcullis examples/plain_pingora; do
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s --dump-instr=no -q %s "$@"\n' \
      "$file" "$real_dir/$exe" >"$out/bin/$exe"
    chmod +x "$out/bin/$exe"
  done
  local port; port=$(free_port)
  GW_MODE=$mode GW_PORT=$port GW_LISTEN=127.0.0.1:$port GW_UPSTREAM=127.0.0.1:$up_port \
    GW_KEYS=$rig/keys GW_HS256_SECRET_FILE=$rig/keys/hs256.secret \
    GW_RS256_PUBKEY=$rig/keys/rsa_pub.pem GW_ES256_PUBKEY=$rig/keys/ec_pub.pem \
    GW_APIKEYS_FILE=$rig/keys/apikeys.map GW_ISSUER=bench GW_USER_HEADER=X-User-Id \
    GW_CLIENT_HEADER=X-Client-Id GW_RUN_DIR=$dir PORTCULLIS_BIN=$out/bin/portcullis SEED_WAIT=120 \
    setsid bash "$repo/bench/adapter.sh" >"$dir/stdout.log" 2>"$dir/stderr.log" &
  local adapter=$!
  pids+=("$adapter")
  wait_port "$port"
  # The gateway's revocations first (the adapter seeds them once it answers).
  if [ "$mode" != pingora ]; then
    for _ in $(seq 1200); do grep -q revoked "$dir/seed.log" 2>/dev/null && break; sleep 0.1; done
    grep -q revoked "$dir/seed.log" || { echo "revocations not seeded: $(cat "$dir/seed.log")" >&2; return 1; }
  fi
  # The same requests for every mode, the token included; identity is checked where verified.
  local check=1
  case "$mode" in plain* | pingora) check=0 ;; esac
  CHECK_IDENTITY=$check python3 "$repo/bench/callgrind_load.py" "127.0.0.1:$port" "$n" \
    "$rig/tokens/hs256.txt" >&2
  # SIGINT: Pingora's fast shutdown; callgrind writes its file as the process exits.
  pkill -INT -f -- "--callgrind-out-file=$file" || true
  for _ in $(seq 600); do kill -0 "$adapter" 2>/dev/null || break; sleep 0.1; done
  kill -- "-$adapter" 2>/dev/null || true
  awk '/^(summary|totals):/{print $2; exit}' "$file"
}

for mode in $MODES; do
  short=$(run_one "$mode" "$SHORT")
  long=$(run_one "$mode" "$LONG")
  echo "$mode $SHORT $short $LONG $long" | tee -a "$out/totals.tsv" >&2
done
python3 "$repo/bench/callgrind_report.py" "$out" | tee "$out/report.md"
echo "report: $out/report.md" >&2
