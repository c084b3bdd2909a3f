#!/usr/bin/env bash
# A local SMTP server for the walk-through: Python's aiosmtpd on 127.0.0.1:2525, printing every
# mail it receives (the reset and verification mails of examples/gateway-sqlite.toml). It
# delivers nothing anywhere. aiosmtpd is installed from PyPI when missing. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. examples/need-tools.sh
need_aiosmtpd
echo "SMTP sink on 127.0.0.1:2525: mails are printed here" >&2
exec python3 -m aiosmtpd -n -l 127.0.0.1:2525
