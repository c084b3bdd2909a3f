#!/usr/bin/env bash
# Smoke test for the test OpenID Provider (provider.mjs), curl only.
#
#   bash tests/oidc-provider/smoke.sh
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

# ---------------------------------------------------------------------------
step "start back-channel logout recorder (stands in for the RP)"
cat > "$T/recorder.mjs" <<'EOF'
import * as http from 'node:http';
import * as fs from 'node:fs';
const [log, portFile] = process.argv.slice(2);
const srv = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    fs.appendFileSync(log, JSON.stringify({ method: req.method, url: req.url,
      contentType: req.headers['content-type'] ?? null, body }) + '\n');
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end('ok');
  });
});
srv.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(srv.address().port)));
process.on('SIGTERM', () => process.exit(0));
EOF
: > "$T/recorder.log"
node "$T/recorder.mjs" "$T/recorder.log" "$T/recorder.port" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/recorder.port" ] && break; sleep 0.1; done
[ -s "$T/recorder.port" ] || fail "recorder did not start"
RP_PORT=$(cat "$T/recorder.port")
RP="http://127.0.0.1:$RP_PORT"
echo "recorder at $RP"

# ---------------------------------------------------------------------------
step "generate RSA key for the private_key_jwt client"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/client.key" 2>/dev/null
CLIENT_JWK=$(node -e '
const c = require("node:crypto"); const fs = require("node:fs");
const jwk = c.createPublicKey(fs.readFileSync(process.argv[1])).export({ format: "jwk" });
console.log(JSON.stringify({ ...jwk, kid: "client-key-1", use: "sig", alg: "RS256" }));' "$T/client.key")
echo "client public JWK: $(json_get "$CLIENT_JWK" kid) (kty $(json_get "$CLIENT_JWK" kty))"

SECRET="smoke-secret-0123456789abcdef0123456789abcdef"
PASSWORD="correct horse battery staple"
cat > "$T/config.json" <<EOF
{
  "host": "127.0.0.1",
  "port": 0,
  "clients": [
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
      "jwks": { "keys": [ $CLIENT_JWK ] },
      "redirect_uris": ["$RP/cb-jwt"],
      "post_logout_redirect_uris": ["$RP/logged-out-jwt"],
      "backchannel_logout_uri": "$RP/backchannel-logout-jwt",
      "backchannel_logout_session_required": true
    }
  ],
  "accounts": {
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
}
EOF

# ---------------------------------------------------------------------------
step "start provider"
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
step "negative: authorization request without PKCE is rejected"
req GET "$AUTHZ?response_type=code&client_id=rp-basic&redirect_uri=$(urlenc "$RP/cb")&scope=openid&state=s0"
expect_status 303
[ "$(qparam "$LOCATION" error)" = "invalid_request" ] || fail "expected error=invalid_request, got $LOCATION"
echo "error=$(qparam "$LOCATION" error) error_description=$(qparam "$LOCATION" error_description)"

# ---------------------------------------------------------------------------
step "sign-in 1/4: authorization request (PKCE S256, state, nonce)"
VERIFIER=$(openssl rand 48 | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | b64url)
STATE=$(openssl rand 16 | b64url)
NONCE=$(openssl rand 16 | b64url)
AUTH_URL="$AUTHZ?response_type=code&client_id=rp-basic&redirect_uri=$(urlenc "$RP/cb")&scope=$(urlenc "openid email profile groups")&state=$STATE&nonce=$NONCE&code_challenge=$CHALLENGE&code_challenge_method=S256"
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
VERIFIER=$(openssl rand 48 | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | b64url)
STATE=$(openssl rand 16 | b64url)
AUTH_URL="$AUTHZ?response_type=code&client_id=rp-basic&redirect_uri=$(urlenc "$RP/cb")&scope=$(urlenc "openid email profile groups")&state=$STATE&nonce=$NONCE&code_challenge=$CHALLENGE&code_challenge_method=S256"

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
step "private_key_jwt client: authorization (SSO, same OP session) + token exchange"
V2=$(openssl rand 48 | b64url)
C2=$(printf '%s' "$V2" | openssl dgst -sha256 -binary | b64url)
S2=$(openssl rand 16 | b64url)
N2=$(openssl rand 16 | b64url)
req GET "$AUTHZ?response_type=code&client_id=rp-jwt&redirect_uri=$(urlenc "$RP/cb-jwt")&scope=$(urlenc "openid email groups")&state=$S2&nonce=$N2&code_challenge=$C2&code_challenge_method=S256"
expect_status 303
[[ "$LOCATION" == "$RP/cb-jwt?"* ]] || fail "expected direct redirect to cb-jwt, got $LOCATION"
CODE2=$(qparam "$LOCATION" code)
[ "$(qparam "$LOCATION" state)" = "$S2" ] || fail "state mismatch (jwt)"
NOW=$(date +%s)
HDR=$(printf '{"alg":"RS256","typ":"JWT","kid":"client-key-1"}' | b64url)
PLD=$(printf '{"iss":"rp-jwt","sub":"rp-jwt","aud":"%s","jti":"%s","iat":%d,"exp":%d}' \
  "$TOKEN" "$(openssl rand -hex 16)" "$NOW" "$((NOW + 60))" | b64url)
SIG=$(printf '%s.%s' "$HDR" "$PLD" | openssl dgst -sha256 -sign "$T/client.key" -binary | b64url)
ASSERTION="$HDR.$PLD.$SIG"
echo "client_assertion payload: $(jwt_part "$ASSERTION" 1)"
req POST "$TOKEN" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE2" \
  --data-urlencode "redirect_uri=$RP/cb-jwt" --data-urlencode "code_verifier=$V2" \
  --data-urlencode "client_id=rp-jwt" \
  --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
  --data-urlencode "client_assertion=$ASSERTION"
expect_status 200
IDP2=$(jwt_part "$(json_get "$(cat "$BODY")" id_token)" 1)
echo "id_token payload: $IDP2"
[ "$(json_get "$IDP2" aud)" = "rp-jwt" ] || fail "jwt client aud"
[ "$(json_get "$IDP2" nonce)" = "$N2" ] || fail "jwt client nonce"
SID2=$(json_get "$IDP2" sid)

step "negative: replayed client_assertion (same jti) is rejected"
req POST "$TOKEN" --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE2" \
  --data-urlencode "redirect_uri=$RP/cb-jwt" --data-urlencode "code_verifier=$V2" \
  --data-urlencode "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer" \
  --data-urlencode "client_assertion=$ASSERTION"
expect_status 401
cat "$BODY"; echo

# ---------------------------------------------------------------------------
step "logout 1/2: RP-initiated logout (GET end_session_endpoint) -> confirm page"
LSTATE=$(openssl rand 8 | b64url)
req GET "$END_SESSION?id_token_hint=$ID_TOKEN&post_logout_redirect_uri=$(urlenc "$RP/logged-out")&state=$LSTATE"
expect_status 200
grep -o '<form[^>]*>' "$BODY"
XSRF=$(grep -o 'name="xsrf" value="[^"]*"' "$BODY" | sed 's/.*value="//; s/"$//')
[ -n "$XSRF" ] || fail "no xsrf in logout page"
ACTION=$(grep -o '<form id="op.logoutForm" method="post" action="[^"]*"' "$BODY" | sed 's/.*action="//; s/"$//')
echo "form action=$ACTION xsrf=${XSRF:0:8}..."

step "logout 2/2: POST confirm (xsrf + logout=yes) -> 303 to post_logout_redirect_uri"
req POST "$ACTION" --data-urlencode "xsrf=$XSRF" --data-urlencode "logout=yes"
expect_status 303
[ "$LOCATION" = "$RP/logged-out?state=$LSTATE" ] || fail "unexpected post-logout Location $LOCATION"

step "back-channel logout tokens received by the recorder"
for _ in $(seq 50); do [ "$(grep -c backchannel-logout "$T/recorder.log")" -ge 2 ] && break; sleep 0.1; done
python3 - "$T/recorder.log" "$ISSUER" "$SID" "$SID2" <<'PY'
import base64, json, sys, urllib.parse
log, issuer, sid1, sid2 = sys.argv[1:]
expect = {"/backchannel-logout": ("rp-basic", sid1), "/backchannel-logout-jwt": ("rp-jwt", sid2)}
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
    seen[rec["url"]] = True
assert len(seen) == 2, f"expected 2 logout tokens, saw {list(seen)}"
print("both clients received a valid logout_token")
PY

step "after logout the OP session is gone: authorization request goes to the login form again"
req GET "$AUTH_URL"
expect_status 303
[[ "$LOCATION" =~ ^/interaction/ ]] || fail "expected a new interaction, got $LOCATION"

step "provider exits when its stdin closes"
exec 3>&-
for _ in $(seq 50); do kill -0 "$PROVIDER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PROVIDER_PID" 2>/dev/null; then fail "provider still running after stdin closed"; fi
wait "$PROVIDER_PID" && echo "provider exited with status 0"

step "provider exits on SIGTERM"
mkfifo "$T/p2.stdin"
node "$HERE/provider.mjs" "$T/config.json" < "$T/p2.stdin" > "$T/p2.out" 2> "$T/p2.err" &
P2=$!
PIDS+=($P2)
exec 4> "$T/p2.stdin"
for _ in $(seq 200); do [ -s "$T/p2.out" ] && break; sleep 0.1; done
[ -s "$T/p2.out" ] || fail "second provider printed no issuer line"
echo "second instance: $(cat "$T/p2.out")"
kill -TERM "$P2"
for _ in $(seq 50); do kill -0 "$P2" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$P2" 2>/dev/null; then fail "provider still running after SIGTERM"; fi
wait "$P2" && echo "provider exited with status 0"
exec 4>&-

echo
echo "SMOKE OK"
