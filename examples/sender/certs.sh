#!/usr/bin/env bash
# Makes the walk-through's certificates with openssl, into examples/sender/pki (git-ignored):
# a CA, the gateway's certificate for localhost, and two client certificates: billing's (a
# SPIFFE ID as its URI SAN) and batch's (a DNS name only). DEMO ONLY.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p pki && cd pki
command -v openssl >/dev/null || { echo "needs openssl: sudo apt-get install -y openssl" >&2; exit 1; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=Portcullis demo CA" -keyout ca.key -out ca.pem 2>/dev/null
issue() {  # name subject extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue billing "/CN=billing" "subjectAltName=URI:spiffe://example.org/ns/prod/sa/billing
extendedKeyUsage=clientAuth"
issue batch "/CN=batch" "subjectAltName=DNS:batch.internal
extendedKeyUsage=clientAuth"
echo "examples/sender/pki: ca.pem, server.pem/.key, billing.pem/.key, batch.pem/.key"
