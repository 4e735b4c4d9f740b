#!/usr/bin/env bash
# Image benchmark: upload/download throughput of one large image on Stratus,
# Debian's Glance (when it starts) and cp / cp + fsync / cat of the same file,
# in the same run. Builds Stratus (./stratus --help rebuilds dist/ when a
# source changed), then runs dist/bench/image/run.js, which stops everything it
# started on exit, error, Ctrl-C or its TOTAL_TIMEOUT_S. Settings come from the
# environment, see bench/image/README.md (IMG_MIB, RUNS, GLANCE, ...).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
"$root/stratus" --help >/dev/null
exec node "$root/dist/bench/image/run.js" "$@"
