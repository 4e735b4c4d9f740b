#!/usr/bin/env bash
# Network data plane benchmark: COUNT (10) boots of the test guest image through
# a `stratus up` with the qemu virt driver and the Linux network driver, each
# timed from the API call to ACTIVE, to the guest's ready marker and to SSH on
# its floating IP; then PORTS (50) ports plugged on this host (bulk POST, taps
# made at once, until every port is ACTIVE). Needs root. Builds Stratus first
# (NO_BUILD=1: dist/ as it is), then runs bench/network-dataplane/run.ts with
# tsx. See bench/network-dataplane/README.md.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"
if [ ! -x "$root/node_modules/.bin/tsc" ] || [ ! -x "$root/node_modules/.bin/tsx" ]; then
  echo "bench: node_modules is missing: run ./stratus --help once (it installs the dependencies)" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench: the Linux network data plane needs root (namespaces, bridges, taps, iptables)" >&2
  exit 2
fi
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$root" && timeout 600 node_modules/.bin/tsc -p tsconfig.json >&2) || echo "bench: tsc reported errors (above); running with what it emitted" >&2
fi
exec "$root/node_modules/.bin/tsx" "$root/bench/network-dataplane/run.ts" "$@"
