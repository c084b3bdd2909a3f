#!/usr/bin/env bash
# The tests, on any machine: what the build and the tests need is installed (or named) first,
# then `cargo test` with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
. examples/need-tools.sh
need_build_tools
need_test_services
exec cargo test "$@"
