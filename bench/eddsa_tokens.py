#!/usr/bin/env python3
"""EdDSA (Ed25519) credentials for the load rig, which ships HS256, RS256 and ES256 ones only.

    eddsa_tokens.py RIG_DIR

Writes, next to the rig's own (idempotent: an existing key is kept):
  keys/ed_priv.pem, keys/ed_pub.pem
  tokens/eddsa.txt                  1000 valid tokens, distinct sub, the rig's claims
  tokens/bad/eddsa-wrongkey.txt     signed by another Ed25519 key
  tokens/bad/eddsa-expired.txt      exp in the past
Claims as the rig's gen_tokens.py: iss=bench, aud=bench-api, sub=user-<i>, role=admin, exp=+10y.
Needs only `cryptography` (pip install cryptography).
"""
import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

rig = sys.argv[1]
keys, tokens = os.path.join(rig, "keys"), os.path.join(rig, "tokens")
os.makedirs(os.path.join(tokens, "bad"), exist_ok=True)
priv_path, pub_path = os.path.join(keys, "ed_priv.pem"), os.path.join(keys, "ed_pub.pem")

if not os.path.exists(priv_path):
    key = Ed25519PrivateKey.generate()
    with open(priv_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(pub_path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
key = serialization.load_pem_private_key(open(priv_path, "rb").read(), None)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(signer, sub, exp):
    now = int(time.time())
    header = b64u(json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": "ed1"}).encode())
    claims = {"iss": "bench", "aud": "bench-api", "sub": sub, "role": "admin", "iat": now, "exp": exp}
    payload = b64u(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{b64u(signer.sign(signing_input))}"


far = int(time.time()) + 10 * 365 * 86400
with open(os.path.join(tokens, "eddsa.txt"), "w") as f:
    f.write("".join(token(key, f"user-{i}", far) + "\n" for i in range(1000)))
with open(os.path.join(tokens, "bad", "eddsa-wrongkey.txt"), "w") as f:
    f.write(token(Ed25519PrivateKey.generate(), "user-0", far) + "\n")
with open(os.path.join(tokens, "bad", "eddsa-expired.txt"), "w") as f:
    f.write(token(key, "user-0", int(time.time()) - 3600) + "\n")
