#!/usr/bin/env bash
# Runs the shared load rig (../shared/bench, or $RIG) with Portcullis plugged in, from a scratch
# copy (the rig itself may be read-only), with this repo's extra scenarios appended.
#
#   bench/rig.sh                                     every gateway scenario + haproxy peers
#   SCENARIOS='^gateway-(plain|apikey)' bench/rig.sh  a regex on scenario names
#
# Needs what the rig's setup.sh installs (nginx, haproxy, wrk; oha for the latency columns,
# else they stay empty). Results: target/bench-rig/results/<stamp>/summary.md. Every knob of the rig's run.sh (ROUNDS, DURATION, ...) passes through.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rig=${RIG:-$repo/../shared/bench}
[ -x "$rig/run.sh" ] || { echo "no load rig at $rig (set RIG)" >&2; exit 1; }

# PORTCULLIS_BIN=/path/to/portcullis compares another build; by default this tree's, built now.
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream --example plain_pingora)
  PORTCULLIS_BIN=$repo/target/release/portcullis
fi
export PORTCULLIS_BIN

work=$repo/target/bench-rig
mkdir -p "$work"
# Everything but the rig's own outputs; results accumulate in target/bench-rig/results.
(cd "$rig" && tar --exclude=./results --exclude=./.run -cf - .) | (cd "$work" && tar -xf -)
chmod -R u+w "$work"
cat >>"$work/scenarios.tsv" <<'TSV'
pingora-plain     gateway:pingora   18200  none
gateway-plain-rl  gateway:plain-rl  18200  none
gateway-apikey-rl gateway:apikey-rl 18200  apikey
gateway-hs256-rl-redis  gateway:hs256-rl@redis  18200  hs256
gateway-apikey-redis    gateway:apikey@redis    18200  apikey
gateway-plain-grl-redis gateway:plain-grl@redis 18200  none
TSV


export GATEWAY_CMD="$repo/bench/adapter.sh"
export SCENARIOS=${SCENARIOS:-'^(pingora-plain|gateway-|haproxy-(plain|hs256|rs256|apikey)$)'}
exec "$work/run.sh"
