#!/usr/bin/env bash
# GATEWAY_CMD for the load rig (../shared/bench): writes a gateway.toml for $GW_MODE into
# $GW_RUN_DIR and runs Portcullis on one worker thread. The rig's own adapter, plus the
# rate-limited variants this repo measures (`*-rl`).
#
#   plain      auth = "none"                      plain-rl   + a policy keyed by ip
#   hs256      bearer HS256, role admin           hs256-rl   + a policy keyed by subject
#   dpop       as hs256, the token DPoP-bound: a proof per request (bench/dpop_proofs.py)
#   rs256      bearer RS256, role admin           es256      bearer ES256, role admin
#   eddsa      bearer EdDSA (Ed25519), role admin (keys from bench/eddsa_tokens.py)
#   apikey     X-API-Key among 10,000 keys        apikey-rl  + a policy keyed by api_key
#   dbkeys     X-API-Key among 100,000 keys users made (users_db, SQLite); dbkeys10: 10 of them
#   pingora    not Portcullis: examples/plain_pingora, the framework's floor
#   *-grl      as *-rl, with the policy's scope = "global" (needs the redis store)
#   <mode>+log     the same with the access log on (PORTCULLIS_LOG=info)
#   <mode>@redis   the same with [store] backend = "redis": a redis-server of its own, started
#                  here on the load core (so the rig counts its CPU with the scenario's), or
#                  $PORTCULLIS_REDIS_URL when set
#   <mode>^authreq nginx on $GW_LISTEN in front of the upstream, asking Portcullis's decision
#                  listener about every request (auth_request, as examples/decision/nginx.conf);
#                  both on the proxy core
#
# Limits are set far above the load: they measure the check, they never refuse. The revocation
# list is not left empty (an empty one is answered without a lookup): once the gateway is up,
# 1,000 jtis and 100 subjects that the load never presents are revoked through the admin API.
#
# Every second the gateway's peak RSS (VmHWM) is written to $GW_RUN_DIR/rss-<pid>.kb, for
# bench/report.py.
set -eu
bin=${PORTCULLIS_BIN:?set PORTCULLIS_BIN to the portcullis binary}
dir=${GW_RUN_DIR:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)

# Runs "$@" in the background and records its peak RSS until it exits (the rig stops the whole
# process group).
run_sampled() {
  "$@" &
  local pid=$!
  # The sampler itself (this shell and its awk) moves to the load core, off the proxy's.
  taskset -pc "${LOAD_CPU:-1}" $$ >/dev/null
  while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmHWM/{print $2}' "/proc/$pid/status" >"$dir/rss-$pid.kb" 2>/dev/null || true
    sleep 1
  done
  wait "$pid"
}

# The floor: a minimal Pingora proxy (examples/plain_pingora.rs), no auth at all.
if [ "$GW_MODE" = pingora ]; then
  run_sampled "$(dirname "$bin")/examples/plain_pingora" "$GW_LISTEN" "$GW_UPSTREAM"
  exit
fi
cfg="$dir/gateway.toml"
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')

# <mode>+log: the access log on (PORTCULLIS_LOG=info, one JSON line a request to the rig's log
# file), as users run it; otherwise off, as the peers' are.
log=warn
front=
case "$GW_MODE" in *^authreq) front=nginx; GW_MODE=${GW_MODE%^authreq} ;; esac
case "$GW_MODE" in *+log) log=info; GW_MODE=${GW_MODE%+log} ;; esac
store=memory
case "$GW_MODE" in *@redis) store=redis ;; esac
full=${GW_MODE%@redis}
scope=local
case "$full" in *-grl) scope=global ;; esac
mode=${full%-rl}
mode=${mode%-grl}
auth=required; accept='["jwt"]'; roles='["admin"]'; limits='[]'; subject_header=$GW_USER_HEADER
issuer=''
case "$mode" in
  plain)  auth=none; roles='[]' ;;
  hs256|dpop)  issuer="secret = \"$(tr -d '\n' < "$GW_HS256_SECRET_FILE")\"" ;;
  rs256)  issuer="public_key_file = \"$GW_RS256_PUBKEY\"" ;;
  es256)  issuer="public_key_file = \"$GW_ES256_PUBKEY\"" ;;
  eddsa)  issuer="public_key_file = \"$GW_KEYS/ed_pub.pem\"" ;;
  apikey|dbkeys|dbkeys10) accept='["api_key"]'; roles='[]'; subject_header=$GW_CLIENT_HEADER ;;
  *) echo "unknown GW_MODE $GW_MODE" >&2; exit 2 ;;
esac
if [ "$full" != "$mode" ]; then
  case "$mode" in
    plain)  limits='["by_ip"]' ;;
    apikey|dbkeys|dbkeys10) limits='["by_key"]' ;;
    *)      limits='["by_subject"]' ;;
  esac
fi

store_section='backend = "memory"'
if [ "$store" = redis ]; then
  url=${PORTCULLIS_REDIS_URL:-}
  if [ -z "$url" ]; then
    redis_port=$((GW_PORT + 2000))
    taskset -c "${LOAD_CPU:-1}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" \
      --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    url=redis://127.0.0.1:$redis_port/0
  fi
  store_section="backend = \"redis\"
redis_url = \"$url\"
key_prefix = \"bench-$$-$RANDOM:\""
fi

admin_port=$((GW_PORT + 1000))
# With nginx in front, nginx takes $GW_LISTEN; Portcullis answers decisions beside it.
listen=$GW_LISTEN
decision_port=$((GW_PORT + 3000))
decision_server=
if [ "$front" = nginx ]; then
  listen=127.0.0.1:$((GW_PORT + 4000))
  decision_server="trusted_proxies = [\"127.0.0.1/32\"]

[decision]
listen = [\"127.0.0.1:$decision_port\"]"
fi
admin_token=$(head -c 24 /dev/urandom | base64 | tr -d '\n/+=')
{
cat <<TOML
[server]
listen = ["$listen"]
admin_listen = "127.0.0.1:$admin_port"
threads = 1
$decision_server

[admin]
token = "$admin_token"

[store]
$store_section

[tokens]
issuer = "portcullis-bench"
audience = "api"
algorithm = "HS256"
secret = "$secret"
# The rig's tokens live ten years (gen_tokens.py); the default max_ttl (30d) would refuse them.
max_ttl = "3660d"
TOML
if [ -n "$issuer" ]; then cat <<TOML

[[tokens.trusted_issuers]]
issuer = "$GW_ISSUER"
audience = "bench-api"
$issuer
roles_claim = "role"
TOML
fi
if [ "$mode" = dpop ]; then cat <<TOML

[dpop]
algorithms = ["ES256"]
# The proofs are made before the run (one per request): good for ten minutes.
max_age = "10m"
TOML
fi
cat <<TOML

[roles]
admin = { permissions = ["*"] }

[identity]
subject_header = "$subject_header"

[rate_limits]
by_ip = { rate = "1000000/s", burst = 1000000, key = "ip", scope = "$scope" }
by_subject = { rate = "1000000/s", burst = 1000000, key = "subject", scope = "$scope" }
by_key = { rate = "1000000/s", burst = 1000000, key = "api_key", scope = "$scope" }

[[upstreams]]
name = "upstream"
targets = ["$GW_UPSTREAM"]

[[routes]]
path = "/**"
upstream = "upstream"
auth = "$auth"
accept = $accept
roles_any = $roles
rate_limit = $limits
TOML
case "$mode" in dbkeys|dbkeys10)
  count=100000; [ "$mode" = dbkeys10 ] && count=10
  rm -f "$dir/keys.db"
  python3 "$here/seed_dbkeys.py" "$dir/keys.db" "$GW_APIKEYS_FILE" "$count" \
    "$here/../src/accounts/db/migrations/sqlite/0001_accounts.sql" 2>"$dir/seed-dbkeys.log"
  cat <<TOML

[login]
users_db = "sqlite://$dir/keys.db"
db_key = "$secret"
rate_limit = "1000000/s"
TOML
esac
if [ "$mode" = apikey ]; then
  python3 - "$GW_APIKEYS_FILE" <<'PY'
import hashlib, sys
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2:
        key, client = parts
        print(f'\n[[api_keys]]\nid = "{client}"\nkey_sha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\nsubject = "{client}"')
PY
fi
} > "$cfg"

if [ "$front" = nginx ]; then
  # The identity header as an nginx variable: lower case, dashes as underscores.
  var=$(printf '%s' "$subject_header" | tr 'A-Z-' 'a-z_')
  mkdir -p "$dir/nginx/logs"
  cat >"$dir/nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream bench_up { server $GW_UPSTREAM; keepalive 256; keepalive_requests 100000000; }
    upstream decision { server 127.0.0.1:$decision_port; keepalive 256; keepalive_requests 100000000; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen $GW_LISTEN backlog=4096;
        location / {
            auth_request /_portcullis;
            auth_request_set \$pc_subject \$upstream_http_$var;
            # A location's proxy_set_header hides the http block's: keep-alive again.
            proxy_set_header Connection "";
            proxy_set_header $subject_header \$pc_subject;
            proxy_set_header Authorization "";
            proxy_set_header X-API-Key "";
            proxy_pass http://bench_up;
            error_page 401 403 500 = @refused;
        }
        location = /_portcullis {
            internal;
            proxy_pass http://decision;
            proxy_pass_request_body off;
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
        location @refused {
            internal;
            proxy_pass http://decision;
            proxy_pass_request_body off;
            proxy_set_header Connection "";
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method \$request_method;
            proxy_set_header X-Original-URI \$request_uri;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
NGINX
  nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" \
    -g "daemon off; pid $dir/nginx/nginx.pid; error_log $dir/nginx/logs/error.log;" &
fi

export PORTCULLIS_LOG=${PORTCULLIS_LOG:-$log}
PORTCULLIS_ADMIN_TOKEN=$admin_token python3 "$here/seed_revocations.py" "127.0.0.1:$admin_port" \
  >"$dir/seed.log" 2>&1 &
run_sampled "$bin" run -c "$cfg"
