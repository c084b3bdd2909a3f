#!/usr/bin/env python3
"""DPoP credentials for the rig's `dpop` scenario: one HS256 access token of the rig's issuer
(sub user-0, role admin) bound to a P-256 key (cnf.jkt), and N proofs of that key for
GET http://127.0.0.1:PORT/, each to be sent once (every proof's jti is single use).

    dpop_proofs.py WORK_DIR [N] [PORT]  ->  WORK_DIR/tokens/dpop.txt: "<token>\t<proof>" lines

The proofs are made with `cryptography`, not with Portcullis's code. Their iat is now: the
gateway of the scenario accepts them for `[dpop] max_age = "10m"`.
"""
import base64, hashlib, hmac, json, os, sys, time, uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

work = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 400_000
port = int(sys.argv[3]) if len(sys.argv) > 3 else 18200

b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
enc = lambda obj: b64(json.dumps(obj, separators=(",", ":")).encode())

key = ec.generate_private_key(ec.SECP256R1())
nums = key.public_key().public_numbers()
jwk = {"kty": "EC", "crv": "P-256", "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}
canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
jkt = b64(hashlib.sha256(canonical.encode()).digest())

secret = open(os.path.join(work, "keys", "hs256.secret"), "rb").read().strip()
now = int(time.time())
claims = {"iss": "bench", "aud": "bench-api", "sub": "user-0", "role": "admin", "iat": now,
          "exp": now + 10 * 365 * 86400, "cnf": {"jkt": jkt}}
signing = enc({"alg": "HS256", "typ": "JWT", "kid": "hs1"}) + "." + enc(claims)
token = signing + "." + b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())
ath = b64(hashlib.sha256(token.encode()).digest())

header = enc({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})
htu = f"http://127.0.0.1:{port}/"
with open(os.path.join(work, "tokens", "dpop.txt"), "w") as out:
    for _ in range(n):
        body = enc({"jti": uuid.uuid4().hex, "htm": "GET", "htu": htu, "iat": now, "ath": ath})
        message = (header + "." + body).encode()
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        sig = b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        out.write(f"{token}\t{header}.{body}.{sig}\n")
print(f"{n} DPoP proofs in {work}/tokens/dpop.txt")
