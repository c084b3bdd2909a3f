#!/usr/bin/env bash
# The walk-through's OpenID Provider: node's certified oidc-provider (the tests' own harness,
# tests/oidc-provider) on 127.0.0.1:9002, with the client of examples/oidc/gateway.toml and the
# users alice / alice-oidc-demo and bob / bob-oidc-demo. DEMO ONLY. Node.js and the packages
# are installed when missing. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/need-tools.sh
need_node
echo "OpenID Provider on http://127.0.0.1:9002 (discovery: /.well-known/openid-configuration)" >&2
OIDC_TEST_PROVIDER_IGNORE_STDIN=1 exec node tests/oidc-provider/provider.mjs examples/oidc/provider.json
