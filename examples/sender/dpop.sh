#!/usr/bin/env bash
# Runs examples/sender/dpop-login.mjs against the walk-through's gateway: Node and the `dpop`
# package are installed when missing (examples/need-tools.sh), the demo CA is trusted.
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/need-tools.sh
need_node
NODE_EXTRA_CA_CERTS=examples/sender/pki/ca.pem node examples/sender/dpop-login.mjs "$@"
