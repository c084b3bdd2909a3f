#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60) and fails on the
# first crash, its input left in fuzz/artifacts/<target>/ (make it a unit test, then fix it).
#
#   scripts/fuzz.sh [SECONDS]
#
# Each target starts from its committed seeds (fuzz/seeds/<target>/, made by
# fuzz/seeds/make.py) and a scratch corpus (fuzz/corpus/<target>/, not committed: what runs
# learn, kept between runs). Prints each target's executions and coverage. Needs the nightly
# toolchain (cargo-fuzz builds with -Zsanitizer); installs cargo-fuzz when it is missing.
#   FUZZ_JOBS=2        targets at once (default 1; the machine has 2 cores)
#   FUZZ_SANITIZER=... address (default) or none
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
jobs=${FUZZ_JOBS:-1}
sanitizer=${FUZZ_SANITIZER:-address}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is needed: rustup toolchain install nightly --profile minimal" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build --sanitizer "$sanitizer"
targets=$(cargo +nightly fuzz list)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# One target: its log in $logs/<target>.log, its exit status in $logs/<target>.rc.
run_one() {
  local t=$1
  mkdir -p "corpus/$t"
  set +e
  cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$logs/$t.log" 2>&1
  echo $? >"$logs/$t.rc"
  set -e
}

running=0
for t in $targets; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-18s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for t in $targets; do
  log=$logs/$t.log
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  corpus=$(find "corpus/$t" -type f | wc -l)
  if [ "$(cat "$logs/$t.rc")" = 0 ]; then
    result=ok
  else
    result=CRASH
    failed=1
  fi
  printf '%-18s %12s %8s %8s %8s  %s\n' "$t" "${execs:--}" "${cov:--}" "${ft:--}" "$corpus" "$result"
done
if [ "$failed" = 1 ]; then
  for t in $targets; do
    if [ "$(cat "$logs/$t.rc")" != 0 ]; then
      echo "=== $t"
      grep -v '^#' "$logs/$t.log" | tail -40
    fi
  done
  echo "fuzz: a target crashed; its input is in fuzz/artifacts/" >&2
  exit 1
fi
