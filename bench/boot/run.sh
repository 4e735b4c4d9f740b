#!/usr/bin/env bash
# Boot benchmark: COUNT (10) servers of the test guest image through the compute
# API of `stratus up` with the qemu driver, from the API call to ACTIVE and to the
# guest's ready marker, against the same image booted by a bare qemu-system-x86_64
# with Stratus's own command line. Builds Stratus first (NO_BUILD=1: dist/ as it
# is), then runs bench/boot/run.ts with tsx. See bench/boot/README.md.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
if [ ! -x "$root/node_modules/.bin/tsc" ] || [ ! -x "$root/node_modules/.bin/tsx" ]; then
  echo "bench: node_modules is missing: run ./stratus --help once (it installs the dependencies)" >&2
  exit 2
fi
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$root" && timeout 600 node_modules/.bin/tsc -p tsconfig.json >&2) || echo "bench: tsc reported errors (above); running with what it emitted" >&2
fi
exec "$root/node_modules/.bin/tsx" "$root/bench/boot/run.ts" "$@"
