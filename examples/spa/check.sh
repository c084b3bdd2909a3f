#!/usr/bin/env bash
# The single-page app of examples/spa/ in headless Chromium: the echo upstream, Portcullis on
# gateway.toml (127.0.0.1:8080, whose [cors] allows http://127.0.0.1:8000) and the page on
# 127.0.0.1:8000. The page logs in, calls the API with the token and with the cookie, and
# shows what the upstream received. Passes when the page says so; the screenshot is left in
# target/spa.png. Installs Debian's chromium when missing (as root, or with sudo -n).
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/need-tools.sh
need_build_tools
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  echo "installing chromium (apt-get)" >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
    || { echo "error: install chromium first: sudo apt-get install -y chromium" >&2; exit 1; }
  browser=$(command -v chromium)
fi
cargo build --release --bin portcullis --example echo_upstream --example spa_server
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
target/release/examples/echo_upstream 127.0.0.1:9001 & pids+=($!)
target/release/examples/spa_server 127.0.0.1:8000 examples/spa & pids+=($!)
target/release/portcullis run -c gateway.toml >target/spa-gateway.log 2>&1 & pids+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null 127.0.0.1:8080/public/x && curl -s -o /dev/null 127.0.0.1:8000/ && break
  sleep 0.1
done
profile=$(mktemp -d)
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$profile" --virtual-time-budget=10000 --window-size=1100,520)
"$browser" "${flags[@]}" --dump-dom http://127.0.0.1:8000/ >target/spa-dom.html 2>/dev/null
"$browser" "${flags[@]}" --screenshot="$PWD/target/spa.png" http://127.0.0.1:8000/ >/dev/null 2>&1
rm -rf "$profile"
if grep -q 'SPA-CHECK-PASSED' target/spa-dom.html && grep -q '<td>alice</td>' target/spa-dom.html; then
  echo "spa check: passed (screenshot: target/spa.png)"
else
  echo "spa check: FAILED; the page as Chromium left it:" >&2
  sed 's/<[^>]*>/ /g' target/spa-dom.html | tr -s ' \n' >&2
  exit 1
fi
