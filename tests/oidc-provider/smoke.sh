#!/usr/bin/env bash
# Smoke test for the test OpenID Provider (provider.mjs), curl only.
#
#   bash tests/oidc-provider/smoke.sh
#
# Main part: the provider starts with no clients and "testEndpoints": true;
# the clients are registered with PUT /__test/clients once the RP stand-in
# (a recorder) is up, as the Rust tests do, then replaced by a changed set.
# Last part: a second instance with clients from the config file (no test
# endpoints).
#
# Needs: node (>= 20.19), curl, openssl, python3; `npm ci` done in this folder
# (the script runs it if node_modules is missing). Uses no fixed ports.
# Exits non-zero on the first failed step and cleans up its processes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T="$(mktemp -d)"
PIDS=()

cleanup() {
  local rc=$?
  exec 3>&- 4>&-                     # close the providers' stdin pipes
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    echo "---- provider stderr ----" >&2
    cat "$T/provider.err" >&2 2>/dev/null || true
    echo "---- second provider stderr ----" >&2
    cat "$T/p2.err" >&2 2>/dev/null || true
    echo "---- recorder log ----" >&2
    cat "$T/recorder.log" >&2 2>/dev/null || true
    echo "SMOKE FAILED (rc=$rc)" >&2
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# Decode a JWT's payload (or header with IDX=0) as pretty JSON.
jwt_part() {
  python3 -c '
import base64, json, sys
part = sys.argv[1].split(".")[int(sys.argv[2])]
part += "=" * (-len(part) % 4)
print(json.dumps(json.loads(base64.urlsafe_b64decode(part)), indent=None, sort_keys=True))
' "$1" "${2:-1}"
}
json_get() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); 
for k in sys.argv[2:]: v=v[k]
print(v if isinstance(v,str) else json.dumps(v))' "$@"; }
# query parameter from a URL
qparam() { python3 -c 'import sys, urllib.parse as u; q=u.parse_qs(u.urlsplit(sys.argv[1]).query); print(q.get(sys.argv[2],[""])[0])' "$1" "$2"; }
urlenc() { python3 -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$1"; }

JAR="$T/cookies.txt"
# req METHOD URL [curl args...]: no redirects followed; sets STATUS, LOCATION, BODY (file)
req() {
  local method=$1 url=$2; shift 2
  : > "$T/headers"
  STATUS=$(curl -sS -X "$method" -b "$JAR" -c "$JAR" -D "$T/headers" -o "$T/body" \
    -w '%{http_code}' "$@" "$url")
  LOCATION=$(awk 'BEGIN{IGNORECASE=1} /^location:/ {sub(/^[^:]*:[ ]*/,""); sub(/\r$/,""); print}' "$T/headers")
  BODY="$T/body"
  local shown=$url
  [ "${#shown}" -le 260 ] || shown="${shown:0:257}..."
  echo "$method $shown -> $STATUS${LOCATION:+ Location: $LOCATION}"
}
expect_status() { [ "$STATUS" = "$1" ] || { cat "$BODY" >&2; fail "expected HTTP $1, got $STATUS"; }; }

[ -d "$HERE/node_modules/oidc-provider" ] || (cd "$HERE" && npm ci --no-audit --no-fund >&2)

# make_assertion CLIENT_ID KEYFILE KID: a fresh private_key_jwt client assertion
make_assertion() {
  local now hdr pld sig
  now=$(date +%s)
  hdr=$(printf '{"alg":"RS256","typ":"JWT","kid":"%s"}' "$3" | b64url)
  pld=$(printf '{"iss":"%s","sub":"%s","aud":"%s","jti":"%s","iat":%d,"exp":%d}' \
    "$1" "$1" "$TOKEN" "$(openssl rand -hex 16)" "$now" "$((now + 60))" | b64url)
  sig=$(printf '%s.%s' "$hdr" "$pld" | openssl dgst -sha256 -sign "$2" -binary | b64url)
  printf '%s.%s.%s' "$hdr" "$pld" "$sig"
}
# new_pkce: sets VERIFIER, CHALLENGE, STATE, NONCE
new_pkce() {
  VERIFIER=$(openssl rand 48 | b64url)
  CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | b64url)
  STATE=$(openssl rand 16 | b64url)
  NONCE=$(openssl rand 16 | b64url)
}
# auth_url CLIENT_ID REDIRECT_URI SCOPE (uses CHALLENGE, STATE, NONCE)
auth_url() {
  printf '%s?response_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s&nonce=%s&code_challenge=%s&code_challenge_method=S256' \
    "$AUTHZ" "$1" "$(urlenc "$2")" "$(urlenc "$3")" "$STATE" "$NONCE" "$CHALLENGE"
}
# put_clients JSON_FILE: PUT /__test/clients
put_clients() { req PUT "$ISSUER/__test/clients" -H 'Content-Type: application/json' --data-binary "@$1"; }
# jwks_fetches PATH: how often the recorder served GET PATH
jwks_fetches() { grep -c "\"method\":\"GET\",\"url\":\"$1\"" "$T/recorder.log" || true; }

# ---------------------------------------------------------------------------
step "start RP stand-in: back-channel logout recorder + static files (jwks_uri)"
cat > "$T/recorder.mjs" <<'EOF'
import * as http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
const [log, portFile, www] = process.argv.slice(2);
const srv = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    fs.appendFileSync(log, JSON.stringify({ method: req.method, url: req.url,
      contentType: req.headers['content-type'] ?? null, body }) + '\n');
    if (req.method === 'GET') {
      // GET serves $www/<path> as JSON (the RP's /.well-known/jwks.json)
      const file = path.join(www, path.normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)));
      if (file.startsWith(www + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile()) {
        const data = fs.readFileSync(file);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': data.length });
        res.end(data);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end('ok');
  });
});
srv.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(srv.address().port)));
process.on('SIGTERM', () => process.exit(0));
EOF
: > "$T/recorder.log"
mkdir -p "$T/www/.well-known"
node "$T/recorder.mjs" "$T/recorder.log" "$T/recorder.port" "$T/www" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/recorder.port" ] && break; sleep 0.1; done
[ -s "$T/recorder.port" ] || fail "recorder did not start"
RP_PORT=$(cat "$T/recorder.port")
RP="http://127.0.0.1:$RP_PORT"
echo "recorder at $RP"

# ---------------------------------------------------------------------------
step "generate two RSA keys for the private_key_jwt client; publish key 1 at RP/.well-known/jwks.json"
public_jwk() {
  node -e '
const c = require("node:crypto"); const fs = require("node:fs");
const jwk = c.createPublicKey(fs.readFileSync(process.argv[1])).export({ format: "jwk" });
console.log(JSON.stringify({ ...jwk, kid: process.argv[2], use: "sig", alg: "RS256" }));' "$1" "$2"
}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/client1.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/client2.key" 2>/dev/null
JWK1=$(public_jwk "$T/client1.key" client-key-1)
JWK2=$(public_jwk "$T/client2.key" client-key-2)
printf '{"keys":[%s]}\n' "$JWK1" > "$T/www/.well-known/jwks.json"
printf '{"keys":[%s]}\n' "$JWK2" > "$T/www/jwks-2.json"
echo "key 1: $(json_get "$JWK1" kid) at $RP/.well-known/jwks.json; key 2: $(json_get "$JWK2" kid) at $RP/jwks-2.json"

SECRET="smoke-secret-0123456789abcdef0123456789abcdef"
PASSWORD="correct horse battery staple"
ACCOUNTS=$(cat <<EOF
{
    "alice": {
      "password": "$PASSWORD",
      "claims": {
        "email": "alice@example.test",
        "email_verified": true,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "groups": ["staff", "admins"]
      },
      "amr": ["pwd"]
    },
    "bob": {
      "password": "bob-pw",
      "claims": { "email": "bob@example.test", "email_verified": false, "name": "Bob", "preferred_username": "bob", "groups": [] },
      "amr": ["pwd", "otp"]
    }
  }
EOF
)
cat > "$T/config.json" <<EOF
{
  "host": "127.0.0.1",
  "port": 0,
  "testEndpoints": true,
  "clients": [],
  "accounts": $ACCOUNTS
}
EOF
# Client set 1 (PUT once the RP is up)
cat > "$T/clients1.json" <<EOF
[
  {
    "client_id": "rp-basic",
    "client_secret": "$SECRET",
    "token_endpoint_auth_method": "client_secret_basic",
    "redirect_uris": ["$RP/cb"],
    "post_logout_redirect_uris": ["$RP/logged-out"],
    "backchannel_logout_uri": "$RP/backchannel-logout",
    "backchannel_logout_session_required": true
  },
  {
    "client_id": "rp-jwt",
    "token_endpoint_auth_method": "private_key_jwt",
    "token_endpoint_auth_signing_alg": "RS256",
    "jwks_uri": "$RP/.well-known/jwks.json",
    "redirect_uris": ["$RP/cb-jwt"],
    "post_logout_redirect_uris": ["$RP/logged-out-jwt"],
    "backchannel_logout_uri": "$RP/backchannel-logout-jwt",
    "backchannel_logout_session_required": true
  }
]
EOF
# Client set 2: same client_ids, new redirect / logout URIs, new jwks_uri
cat > "$T/clients2.json" <<EOF
[
  {
    "client_id": "rp-basic",
    "client_secret": "$SECRET",
    "token_endpoint_auth_method": "client_secret_basic",
    "redirect_uris": ["$RP/cb-v2"],
    "post_logout_redirect_uris": ["$RP/logged-out-v2"],
    "backchannel_logout_uri": "$RP/backchannel-logout-v2",
    "backchannel_logout_session_required": true
  },
  {
    "client_id": "rp-jwt",
    "token_endpoint_auth_method": "private_key_jwt",
    "token_endpoint_auth_signing_alg": "RS256",
    "jwks_uri": "$RP/jwks-2.json",
    "redirect_uris": ["$RP/cb-jwt"],
    "post_logout_redirect_uris": ["$RP/logged-out-jwt"],
    "backchannel_logout_uri": "$RP/backchannel-logout-jwt-v2",
    "backchannel_logout_session_required": true
  }
]
EOF

# ---------------------------------------------------------------------------
step "start provider (no clients, testEndpoints on)"
mkfifo "$T/provider.stdin"
node "$HERE/provider.mjs" "$T/config.json" < "$T/provider.stdin" > "$T/provider.out" 2> "$T/provider.err" &
PIDS+=($!)
PROVIDER_PID=$!
exec 3> "$T/provider.stdin"     # held open: the provider exits when this closes
for _ in $(seq 200); do [ -s "$T/provider.out" ] && break; sleep 0.1; done
[ -s "$T/provider.out" ] || fail "provider printed no issuer line"
[ "$(wc -l < "$T/provider.out")" -eq 1 ] || fail "provider stdout is not exactly one line"
echo "provider stdout: $(cat "$T/provider.out")"
ISSUER=$(json_get "$(cat "$T/provider.out")" issuer)

step "discovery"
req GET "$ISSUER/.well-known/openid-configuration"
expect_status 200
DISCO=$(cat "$BODY")
[ "$(json_get "$DISCO" issuer)" = "$ISSUER" ] || fail "discovery issuer mismatch"
[ "$(json_get "$DISCO" authorization_response_iss_parameter_supported)" = "true" ] || fail "no RFC 9207"
[ "$(json_get "$DISCO" backchannel_logout_session_supported)" = "true" ] || fail "no back-channel logout"
AUTHZ=$(json_get "$DISCO" authorization_endpoint)
TOKEN=$(json_get "$DISCO" token_endpoint)
END_SESSION=$(json_get "$DISCO" end_session_endpoint)
JWKS_URI=$(json_get "$DISCO" jwks_uri)
echo "authorization_endpoint=$AUTHZ token_endpoint=$TOKEN end_session_endpoint=$END_SESSION"
echo "code_challenge_methods_supported=$(json_get "$DISCO" code_challenge_methods_supported)"
echo "token_endpoint_auth_methods_supported=$(json_get "$DISCO" token_endpoint_auth_methods_supported)"

# ---------------------------------------------------------------------------
step "test endpoints: health, and no client is known before the PUT"
req GET "$ISSUER/__test/health"
expect_status 204
req GET "$ISSUER/__test/clients"
expect_status 200
[ "$(cat "$BODY")" = "[]" ] || fail "expected no clients, got $(cat "$BODY")"
new_pkce
req GET "$(auth_url rp-basic "$RP/cb" openid)"
expect_status 400
grep -q 'invalid_client' "$BODY" || fail "expected invalid_client page"
grep -o '<pre id="error_description">[^<]*' "$BODY"

step "negative: invalid client sets are refused with 400 {\"error\"} and change nothing"
printf '%s' '{"client_id":"x"}' > "$T/bad.json"
put_clients "$T/bad.json"; expect_status 400; cat "$BODY"
printf '%s' 'not json' > "$T/bad.json"
put_clients "$T/bad.json"; expect_status 400; cat "$BODY"
printf '[{"client_id":"a","client_secret":"s","redirect_uris":["%s/cb"]},{"client_id":"a","client_secret":"s","redirect_uris":["%s/cb"]}]' "$RP" "$RP" > "$T/bad.json"
put_clients "$T/bad.json"; expect_status 400; cat "$BODY"
# rp-basic without its client_secret (client_secret_basic needs one)
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); del c[0]["client_secret"]; print(json.dumps(c))' "$T/clients1.json" > "$T/bad.json"
put_clients "$T/bad.json"; expect_status 400; cat "$BODY"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c[1]["jwks"]={"keys":[]}; print(json.dumps(c))' "$T/clients1.json" > "$T/bad.json"
put_clients "$T/bad.json"; expect_status 400; cat "$BODY"
[ "$(json_get "$(cat "$BODY")" error)" != "" ] || fail "no error member"
req GET "$ISSUER/__test/clients"
[ "$(cat "$BODY")" = "[]" ] || fail "a refused PUT changed the clients: $(cat "$BODY")"
echo "clients still: $(cat "$BODY")"

step "PUT /__test/clients: client set 1 (redirect, logout and back-channel URIs on the RP, jwks_uri)"
put_clients "$T/clients1.json"
expect_status 204
req GET "$ISSUER/__test/clients"
expect_status 200
echo "registered: $(python3 -c 'import json,sys; print([(c["client_id"], c["redirect_uris"]) for c in json.load(open(sys.argv[1]))])' "$BODY")"

# ---------------------------------------------------------------------------
step "negative: authorization request without PKCE is rejected"
req GET "$AUTHZ?response_type=code&client_id=rp-basic&redirect_uri=$(urlenc "$RP/cb")&scope=openid&state=s0"
expect_status 303
[ "$(qparam "$LOCATION" error)" = "invalid_request" ] || fail "expected error=invalid_request, got $LOCATION"
echo "error=$(qparam "$LOCATION" error) error_description=$(qparam "$LOCATION" error_description)"

# ---------------------------------------------------------------------------
step "sign-in 1/4: authorization request (PKCE S256, state, nonce)"
new_pkce
AUTH_URL=$(auth_url rp-basic "$RP/cb" "openid email profile groups")
req GET "$AUTH_URL"
expect_status 303
[[ "$LOCATION" =~ ^/interaction/([A-Za-z0-9_-]+)$ ]] || fail "unexpected Location $LOCATION"
UID_=${BASH_REMATCH[1]}
echo "interaction uid=$UID_"
echo "cookies set: $(sed 's/^#HttpOnly_//' "$JAR" | awk '!/^#/ && NF>=7 {print $6"(path="$3")"}' | sort | tr '\n' ' ')"

step "sign-in 2/4: login form"
req GET "$ISSUER/interaction/$UID_"
expect_status 200
grep -q 'name="login"' "$BODY" && grep -q 'name="password"' "$BODY" && grep -q 'type="submit"' "$BODY" \
  || fail "login form fields missing"
grep -o '<form[^>]*>' "$BODY"

step "sign-in 3/4: wrong password re-renders the form (200 + error)"
req POST "$ISSUER/interaction/$UID_/login" --data-urlencode "login=alice" --data-urlencode "password=nope"
expect_status 200
grep -q 'id="error"' "$BODY" || fail "no error shown"
grep -o '<p id="error"[^<]*' "$BODY"

step "sign-in 3/4: correct password -> 303 to resume URL"
req POST "$ISSUER/interaction/$UID_/login" --data-urlencode "login=alice" --data-urlencode "password=$PASSWORD"
expect_status 303
[ "$LOCATION" = "$AUTHZ/$UID_" ] || fail "expected Location $AUTHZ/$UID_"

step "sign-in 4/4: resume -> 303 to redirect_uri with code, state, iss"
req GET "$LOCATION"
expect_status 303
CB="$LOCATION"
[[ "$CB" == "$RP/cb?"* ]] || fail "not redirected to redirect_uri: $CB"
CODE=$(qparam "$CB" code)
[ -n "$CODE" ] || fail "no code"
[ "$(qparam "$CB" state)" = "$STATE" ] || fail "state mismatch"
[ "$(qparam "$CB" iss)" = "$ISSUER" ] || fail "iss mismatch"
echo "code=${CODE:0:12}... state ok, iss=$(qparam "$CB" iss)"
grep -q $'\top_session\t' "$JAR" || fail "no op_session cookie after resume"
echo "OP session cookie set: $(sed 's/^#HttpOnly_//' "$JAR" | awk '!/^#/ && NF>=7 && $6 ~ /^op_session/ {print $6"(path="$3")"}' | sort | tr '\n' ' ')"

step "negative: token request with wrong code_verifier fails"
req POST "$TOKEN" -u "rp-basic:$SECRET" --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$RP/cb" --data-urlencode "code_verifier=${VERIFIER}x"
expect_status 400
echo "$(cat "$BODY")"
# A failed PKCE check consumes the code in oidc-provider; sign in again (SSO, no form).
NONCE1=$NONCE
new_pkce
NONCE=$NONCE1
AUTH_URL=$(auth_url rp-basic "$RP/cb" "openid email profile groups")

step "SSO: second authorization request with the OP session cookie -> straight to redirect_uri"
req GET "$AUTH_URL"
expect_status 303
[[ "$LOCATION" == "$RP/cb?"* ]] || fail "expected direct redirect to redirect_uri, got $LOCATION"
CODE=$(qparam "$LOCATION" code)
[ "$(qparam "$LOCATION" state)" = "$STATE" ] || fail "state mismatch"
[ "$(qparam "$LOCATION" iss)" = "$ISSUER" ] || fail "iss mismatch"

step "token exchange (client_secret_basic + code_verifier)"
req POST "$TOKEN" -u "rp-basic:$SECRET" --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$RP/cb" --data-urlencode "code_verifier=$VERIFIER"
expect_status 200
TOK=$(cat "$BODY")
echo "token response keys: $(python3 -c 'import json,sys; print(sorted(json.loads(sys.argv[1])))' "$TOK")"
ID_TOKEN=$(json_get "$TOK" id_token)
echo "id_token header:  $(jwt_part "$ID_TOKEN" 0)"
IDP=$(jwt_part "$ID_TOKEN" 1)
echo "id_token payload: $IDP"
for k in iss aud nonce sid groups email email_verified name preferred_username amr; do
  echo "  $k = $(json_get "$IDP" "$k")"
done
[ "$(json_get "$IDP" iss)" = "$ISSUER" ] || fail "id_token iss"
[ "$(json_get "$IDP" aud)" = "rp-basic" ] || fail "id_token aud"
[ "$(json_get "$IDP" nonce)" = "$NONCE" ] || fail "id_token nonce"
[ "$(json_get "$IDP" sub)" = "alice" ] || fail "id_token sub"
[ "$(json_get "$IDP" groups)" = '["staff", "admins"]' ] || fail "id_token groups"
[ "$(json_get "$IDP" email)" = "alice@example.test" ] || fail "id_token email"
[ "$(json_get "$IDP" amr)" = '["pwd"]' ] || fail "id_token amr"
SID=$(json_get "$IDP" sid)
[ -n "$SID" ] || fail "id_token sid"

step "verify id_token signature against jwks_uri (RS256)"
(cd "$HERE" && node --input-type=module -e '
import { createRemoteJWKSet, jwtVerify } from "jose";
const [token, jwks, iss] = process.argv.slice(1);
const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(jwks)),
  { issuer: iss, audience: "rp-basic", algorithms: ["RS256"] });
console.log(`signature OK: alg=${protectedHeader.alg} kid=${protectedHeader.kid} sub=${payload.sub}`);
' "$ID_TOKEN" "$JWKS_URI" "$ISSUER")

# ---------------------------------------------------------------------------
step "private_key_jwt client (jwks_uri on 127.0.0.1): authorization (SSO, same OP session) + token exchange"
new_pkce
N2=$NONCE
req GET "$(auth_url rp-jwt "$RP/cb-jwt" "openid email groups")"
expect_status 303
[[ "$LOCATION" == "$RP/cb-jwt?"* ]] || fail "expected direct redirect to cb-jwt, got $LOCATION"
CODE2=$(qparam "$LOCATION" code)
[ "$(qparam "$LOCATION" state)" = "$STATE" ] || fail "state mismatch (jwt)"
[ "$(jwks_fetches /.well-known/jwks.json)" = 0 ] || fail "jwks_uri fetched before first use"
ASSERTION=$(make_assertion rp-jwt "$T/client1.key" client-key-1)
echo "client_assertion header: $(jwt_part "$ASSERTION" 0) payload: $(jwt_part "$ASSERTION" 1)"
req POST "$TOKEN" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE2" \
  --data-urlencode "redirect_uri=$RP/cb-jwt" --data-urlencode "code_verifier=$VERIFIER" \
  --data-urlencode "client_id=rp-jwt" \
  --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
  --data-urlencode "client_assertion=$ASSERTION"
expect_status 200
IDP2=$(jwt_part "$(json_get "$(cat "$BODY")" id_token)" 1)
echo "id_token payload: $IDP2"
[ "$(json_get "$IDP2" aud)" = "rp-jwt" ] || fail "jwt client aud"
[ "$(json_get "$IDP2" nonce)" = "$N2" ] || fail "jwt client nonce"
SID2=$(json_get "$IDP2" sid)
[ "$(jwks_fetches /.well-known/jwks.json)" = 1 ] || fail "expected exactly one GET of the client's jwks_uri"
echo "the OP fetched the client's jwks_uri: $(grep '"GET"' "$T/recorder.log")"

step "negative: replayed client_assertion (same jti) is rejected"
req POST "$TOKEN" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE2" \
  --data-urlencode "redirect_uri=$RP/cb-jwt" --data-urlencode "code_verifier=$VERIFIER" \
  --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
  --data-urlencode "client_assertion=$ASSERTION"
expect_status 401
cat "$BODY"; echo

# ---------------------------------------------------------------------------
# logout FLOW_ID_TOKEN POST_LOGOUT_URI: RP-initiated logout, confirmed
logout() {
  local lstate
  lstate=$(openssl rand 8 | b64url)
  step "logout 1/2: RP-initiated logout (GET end_session_endpoint) -> confirm page"
  req GET "$END_SESSION?id_token_hint=$1&post_logout_redirect_uri=$(urlenc "$2")&state=$lstate"
  expect_status 200
  grep -o '<form[^>]*>' "$BODY"
  XSRF=$(grep -o 'name="xsrf" value="[^"]*"' "$BODY" | sed 's/.*value="//; s/"$//')
  [ -n "$XSRF" ] || fail "no xsrf in logout page"
  ACTION=$(grep -o '<form id="op.logoutForm" method="post" action="[^"]*"' "$BODY" | sed 's/.*action="//; s/"$//')
  echo "form action=$ACTION xsrf=${XSRF:0:8}..."

  step "logout 2/2: POST confirm (xsrf + logout=yes) -> 303 to post_logout_redirect_uri"
  req POST "$ACTION" --data-urlencode "xsrf=$XSRF" --data-urlencode "logout=yes"
  expect_status 303
  [ "$LOCATION" = "$2?state=$lstate" ] || fail "unexpected post-logout Location $LOCATION"
}
# check_logout_tokens PATH_BASIC SID_BASIC PATH_JWT SID_JWT
check_logout_tokens() {
  step "back-channel logout tokens received by the recorder at $1 and $3"
  for _ in $(seq 50); do [ "$(grep -c -e "\"url\":\"$1\"" -e "\"url\":\"$3\"" "$T/recorder.log")" -ge 2 ] && break; sleep 0.1; done
  python3 - "$T/recorder.log" "$ISSUER" "$@" <<'PY'
import base64, json, sys, urllib.parse
log, issuer, path1, sid1, path2, sid2 = sys.argv[1:]
expect = {path1: ("rp-basic", sid1), path2: ("rp-jwt", sid2)}
seen = {}
for line in open(log):
    rec = json.loads(line)
    if rec["url"] not in expect:
        continue
    assert rec["method"] == "POST", rec
    assert rec["contentType"].startswith("application/x-www-form-urlencoded"), rec
    tok = urllib.parse.parse_qs(rec["body"])["logout_token"][0]
    def part(i):
        p = tok.split(".")[i]; p += "=" * (-len(p) % 4)
        return json.loads(base64.urlsafe_b64decode(p))
    h, p = part(0), part(1)
    print(f"POST {rec['url']}  header={json.dumps(h, sort_keys=True)}")
    print(f"  logout_token payload={json.dumps(p, sort_keys=True)}")
    aud, sid = expect[rec["url"]]
    assert p["iss"] == issuer and p["aud"] == aud and p["sub"] == "alice", p
    assert p["sid"] == sid, (p["sid"], sid)
    assert "http://schemas.openid.net/event/backchannel-logout" in p["events"], p
    assert p.get("jti") and "nonce" not in p, p
    assert h["typ"] == "logout+jwt", h
    assert rec["url"] not in seen, f"two logout tokens at {rec['url']}"
    seen[rec["url"]] = True
assert len(seen) == 2, f"expected 2 logout tokens, saw {list(seen)}"
print("both clients received a valid logout_token")
PY
}

logout "$ID_TOKEN" "$RP/logged-out"
check_logout_tokens /backchannel-logout "$SID" /backchannel-logout-jwt "$SID2"

step "after logout the OP session is gone: authorization request goes to the login form again"
req GET "$AUTH_URL"
expect_status 303
[[ "$LOCATION" =~ ^/interaction/ ]] || fail "expected a new interaction, got $LOCATION"

# ---------------------------------------------------------------------------
step "PUT /__test/clients: client set 2 (rp-basic: redirect_uri /cb -> /cb-v2, new logout URIs; rp-jwt: new jwks_uri)"
put_clients "$T/clients2.json"
expect_status 204
grep 'clients replaced' "$T/provider.err" | tail -1

step "replaced client: authorization request with the OLD redirect_uri is refused (400 page)"
new_pkce
req GET "$(auth_url rp-basic "$RP/cb" "openid email profile groups")"
expect_status 400
grep -q 'invalid_redirect_uri' "$BODY" || { cat "$BODY" >&2; fail "expected invalid_redirect_uri"; }
grep -o '<pre id="error[^<]*' "$BODY"

step "replaced client: the NEW redirect_uri works (login, code, token exchange)"
AUTH_URL=$(auth_url rp-basic "$RP/cb-v2" "openid email profile groups")
req GET "$AUTH_URL"
expect_status 303
[[ "$LOCATION" =~ ^/interaction/([A-Za-z0-9_-]+)$ ]] || fail "unexpected Location $LOCATION"
UID_=${BASH_REMATCH[1]}
req POST "$ISSUER/interaction/$UID_/login" --data-urlencode "login=alice" --data-urlencode "password=$PASSWORD"
expect_status 303
req GET "$LOCATION"
expect_status 303
[[ "$LOCATION" == "$RP/cb-v2?"* ]] || fail "not redirected to the new redirect_uri: $LOCATION"
CODE=$(qparam "$LOCATION" code)
req POST "$TOKEN" -u "rp-basic:$SECRET" --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$RP/cb-v2" --data-urlencode "code_verifier=$VERIFIER"
expect_status 200
ID_TOKEN=$(json_get "$(cat "$BODY")" id_token)
IDP=$(jwt_part "$ID_TOKEN" 1)
[ "$(json_get "$IDP" aud)" = "rp-basic" ] && [ "$(json_get "$IDP" nonce)" = "$NONCE" ] || fail "bad id_token $IDP"
SID=$(json_get "$IDP" sid)
echo "id_token ok: aud=rp-basic sub=$(json_get "$IDP" sub) sid=${SID:0:10}..."

step "replaced client: private_key_jwt with the new jwks_uri (old key refused, new key accepted)"
new_pkce
N2=$NONCE
req GET "$(auth_url rp-jwt "$RP/cb-jwt" "openid email groups")"
expect_status 303
[[ "$LOCATION" == "$RP/cb-jwt?"* ]] || fail "expected direct redirect to cb-jwt, got $LOCATION"
CODE2=$(qparam "$LOCATION" code)
jwt_token_request() {
  req POST "$TOKEN" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE2" \
    --data-urlencode "redirect_uri=$RP/cb-jwt" --data-urlencode "code_verifier=$VERIFIER" \
    --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
    --data-urlencode "client_assertion=$(make_assertion rp-jwt "$1" "$2")"
}
jwt_token_request "$T/client1.key" client-key-1
expect_status 401
echo "key 1: $(cat "$BODY")"
[ "$(jwks_fetches /jwks-2.json)" = 1 ] || fail "expected one GET of the new jwks_uri"
jwt_token_request "$T/client2.key" client-key-2
expect_status 200
IDP2=$(jwt_part "$(json_get "$(cat "$BODY")" id_token)" 1)
[ "$(json_get "$IDP2" aud)" = "rp-jwt" ] && [ "$(json_get "$IDP2" nonce)" = "$N2" ] || fail "bad id_token $IDP2"
SID2=$(json_get "$IDP2" sid)
echo "key 2 accepted; new jwks_uri fetches: $(jwks_fetches /jwks-2.json), old jwks_uri fetches: $(jwks_fetches /.well-known/jwks.json)"

step "PUT of the same set again drops the cached client keys: RP rotates the key behind the same jwks_uri"
printf '{"keys":[%s]}\n' "$JWK1" > "$T/www/jwks-2.json"
put_clients "$T/clients2.json"
expect_status 204
new_pkce
req GET "$(auth_url rp-jwt "$RP/cb-jwt" "openid")"
expect_status 303
CODE2=$(qparam "$LOCATION" code)
jwt_token_request "$T/client1.key" client-key-1
expect_status 200
[ "$(jwks_fetches /jwks-2.json)" = 2 ] || fail "expected the jwks_uri to be fetched again"
echo "key 1 accepted after re-PUT; new jwks_uri fetches: $(jwks_fetches /jwks-2.json)"

logout "$ID_TOKEN" "$RP/logged-out-v2"
check_logout_tokens /backchannel-logout-v2 "$SID" /backchannel-logout-jwt-v2 "$SID2"

step "provider exits when its stdin closes"
exec 3>&-
for _ in $(seq 50); do kill -0 "$PROVIDER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PROVIDER_PID" 2>/dev/null; then fail "provider still running after stdin closed"; fi
wait "$PROVIDER_PID" && echo "provider exited with status 0"

# ---------------------------------------------------------------------------
step "second instance: clients from the config file, test endpoints off"
python3 -c '
import json, sys
cfg = json.load(open(sys.argv[1])); del cfg["testEndpoints"]
cfg["clients"] = json.load(open(sys.argv[2]))
json.dump(cfg, open(sys.argv[3], "w"), indent=2)' "$T/config.json" "$T/clients1.json" "$T/config2.json"
mkfifo "$T/p2.stdin"
node "$HERE/provider.mjs" "$T/config2.json" < "$T/p2.stdin" > "$T/p2.out" 2> "$T/p2.err" &
P2=$!
PIDS+=($P2)
exec 4> "$T/p2.stdin"
for _ in $(seq 200); do [ -s "$T/p2.out" ] && break; sleep 0.1; done
[ -s "$T/p2.out" ] || fail "second provider printed no issuer line"
echo "second instance: $(cat "$T/p2.out")"
ISSUER=$(json_get "$(cat "$T/p2.out")" issuer)
AUTHZ="$ISSUER/auth"
TOKEN="$ISSUER/token"
JAR="$T/cookies2.txt"
for path in /__test/health /__test/clients; do
  req GET "$ISSUER$path"
  expect_status 404
done
req PUT "$ISSUER/__test/clients" -H 'Content-Type: application/json' --data-binary '[]'
[ "$STATUS" != 204 ] || fail "PUT /__test/clients served without testEndpoints"
new_pkce
req GET "$(auth_url rp-basic "$RP/cb" "openid email")"
expect_status 303
[[ "$LOCATION" =~ ^/interaction/([A-Za-z0-9_-]+)$ ]] || fail "unexpected Location $LOCATION"
UID_=${BASH_REMATCH[1]}
req POST "$ISSUER/interaction/$UID_/login" --data-urlencode "login=alice" --data-urlencode "password=$PASSWORD"
expect_status 303
req GET "$LOCATION"
expect_status 303
[[ "$LOCATION" == "$RP/cb?"* ]] || fail "not redirected to redirect_uri: $LOCATION"
req POST "$TOKEN" -u "rp-basic:$SECRET" --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$(qparam "$LOCATION" code)" --data-urlencode "redirect_uri=$RP/cb" --data-urlencode "code_verifier=$VERIFIER"
expect_status 200
echo "config-file client rp-basic: sign-in and token exchange OK (aud=$(json_get "$(jwt_part "$(json_get "$(cat "$BODY")" id_token)" 1)" aud))"

step "provider exits on SIGTERM"
kill -TERM "$P2"
for _ in $(seq 50); do kill -0 "$P2" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$P2" 2>/dev/null; then fail "provider still running after SIGTERM"; fi
wait "$P2" && echo "provider exited with status 0"
exec 4>&-

echo
echo "SMOKE OK"
