#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/<target>/): small, readable inputs in each target's
line format. The JWT and DPoP seeds are signed here (HMAC; openssl with the test P-256 key),
with the secret, time and request the targets name. Run again after changing a target's
format: python3 fuzz/seeds/make.py"""
import base64, hashlib, hmac, json, os, pathlib, subprocess, shutil

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
NOW = 1_800_000_000
SECRET = b"fuzz-secret-0123456789-0123456789-01"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def part(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def hs256(header, claims):
    signing = f"{part(header)}.{part(claims)}"
    sig = hmac.new(SECRET, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


def es256(header, claims):
    signing = f"{part(header)}.{part(claims)}".encode()
    der = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", REPO / "tests/keys/ec256_private.pem"],
        input=signing, capture_output=True, check=True).stdout
    # DER SEQUENCE { INTEGER r, INTEGER s } -> r || s, 32 bytes each.
    r_len = der[3]
    r = der[4:4 + r_len]
    s = der[6 + r_len:]
    raw = r[-32:].rjust(32, b"\0") + s[-32:].rjust(32, b"\0")
    return f"{signing.decode()}.{b64(raw)}"


def ec_jwk():
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", REPO / "tests/keys/ec256_public.pem", "-outform", "DER"],
        capture_output=True, check=True).stdout
    point = der[-64:]
    return {"kty": "EC", "crv": "P-256", "x": b64(point[:32]), "y": b64(point[32:])}


def seeds():
    access = {"iss": "own", "sub": "user-42", "aud": "api", "typ": "access", "iat": NOW,
              "exp": NOW + 600, "roles": ["user"], "jti": "j-1"}
    proof = {"jti": "p-1", "htm": "POST", "htu": "https://api.example/resource", "iat": NOW}
    bound = dict(proof, jti="p-2", ath=b64(hashlib.sha256(b"an-access-token").digest()))
    dpop_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": ec_jwk()}
    return {
        "path_normalize": ["/a/b", "/a/../b", "/%2e%2e/admin", "/a;b=1/c", "/a//b/./c/",
                           "/%41%7e%c3%a9", "/..%2f", "/a%00", "/a\\b", "/é/x", "/a/%2E%2e/"],
        "route_match": ["/api/{id}/**\n/api/**\n/api/42/x", "/a/*\n/a/{x}\n/a/b",
                        "/\n/**\n/", "/x/**\n/x/*\n/x"],
        "credentials": ["authorization: Bearer abc.def.ghi", "x-api-key: pk_123\ncookie: session=tok",
                        "authorization: DPoP xyz", "authorization: Basic dXNlcg==\ncookie: a=1; session=s; b=2",
                        "authorization: bearer  a \nauthorization: ApiKey k"],
        "jwt_verify": [hs256({"alg": "HS256", "typ": "JWT"}, access),
                       hs256({"alg": "HS256", "kid": "k1"}, dict(access, aud=["api", "x"])),
                       f"{part({'alg': 'none'})}.{part(access)}.",
                       hs256({"alg": "HS384"}, access)],
        "cookie_header": ["session=abc; other=1", "a=1\nsession_refresh=r; b=2", "session=x; session=y",
                          "flag; session = v;; z=\"q\""],
        "cors_origin": ["https://app.example\nhttps://app.example", "HTTPS://App.Example:443\nhttps://app.example",
                        "null\n*", "https://evil.example\nhttps://app.example\nhttp://localhost:8080"],
        "decision_request": ["GET /auth\nx-forwarded-method: GET\nx-forwarded-uri: /api/x?y=1",
                             "POST /ext/api/x\nprefix: /ext",
                             "GET /\nx-original-method: DELETE\nx-original-uri: /a#b"],
        "forwarded_for": ["10.0.0.1\n10.0.0.0/8\n203.0.113.9, 10.0.0.2", "203.0.113.1\n10.0.0.0/8\n1.2.3.4",
                          "::1\n::1,fd00::/8\nfd00::1, 2001:db8::1\n10.0.0.9"],
        "config_load": [(REPO / "gateway.toml").read_text()]
                       + [p.read_text() for p in sorted((REPO / "examples").glob("*/gateway.toml"))][:3],
        "users_toml": [(REPO / "users.toml").read_text(),
                       '[[users]]\nusername = "a"\npassword_hash = "x"\nroles = ["nope"]\n'],
        "endpoint_bodies": ['application/json\n{"username":"a","password":"b"}',
                            "application/x-www-form-urlencoded\ngrant_type=refresh_token&refresh_token=x",
                            'application/json\n{"jti":"x"}',
                            'application/json\n{"username":"a","password":"p","roles":["user"],"claims":{}}',
                            'application/json; charset=utf-8\n{"name":"k","roles":["user"],"expires_at":"2030-01-01T00:00:00Z","allowed_ips":["10.0.0.0/8"]}',
                            'text/plain\n{"disabled":true}'],
        "dpop_proof": [es256(dpop_header, proof), es256(dpop_header, bound),
                       es256(dict(dpop_header, jwk=dict(ec_jwk(), d="x")), proof)],
        "oidc_discovery": [json.dumps({"issuer": "https://idp.example",
                                       "authorization_endpoint": "https://idp.example/auth",
                                       "token_endpoint": "https://idp.example/token",
                                       "jwks_uri": "https://idp.example/jwks",
                                       "end_session_endpoint": "https://idp.example/logout",
                                       "id_token_signing_alg_values_supported": ["ES256", "HS256"]})],
        "oidc_claims": [json.dumps({"sub": "u1", "nonce": "n-0S6_WzA2Mj", "aud": "c"}),
                        json.dumps({"sub": "u1", "jti": "l1", "exp": NOW, "events": {
                            "http://schemas.openid.net/event/backchannel-logout": {}}})],
        "identity_headers": ["X-User-Id: 1\nx_user_roles: admin\nX-Forwarded-For: 1.2.3.4\nx_forwarded_host: evil",
                             "X-AUTH-METHOD: jwt\nx-http-method-override: DELETE\nForwarded: for=1.2.3.4"],
    }


for target, inputs in seeds().items():
    folder = HERE / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for n, text in enumerate(inputs):
        (folder / f"seed-{n:02}").write_bytes(text.encode() if isinstance(text, str) else text)
print("seeds written:", ", ".join(sorted(seeds())))
