#!/usr/bin/env bash
# Identity benchmark: Stratus next to Debian's Keystone in the same run.
# Builds Stratus (./stratus --help rebuilds dist/ when a source changed), then
# runs dist/bench/identity/run.js. Settings come from the environment, see
# bench/identity/README.md (DURATION, REPEATS, COLD_RUNS, STRATUS_ANCHORS, ...).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
"$root/stratus" --help >/dev/null
exec node "$root/dist/bench/identity/run.js" "$@"
