#!/usr/bin/env bash
# Compute benchmark: servers booted to ACTIVE and deleted per second through
# the compute API of `stratus up --fake-hosts 100`, at concurrency 1, 8 and 32,
# on SQLite + the in-process bus and on PostgreSQL + RabbitMQ. Builds Stratus
# first (./stratus --help rebuilds dist/ when a source changed), then runs
# bench/compute/run.ts with tsx. Every step has a time limit; everything
# started is stopped on exit, error, Ctrl-C or TOTAL_TIMEOUT_S.
# Settings: environment or --name=value flags, see bench/compute/README.md.
# Quick try: COUNT=100 CONCURRENCY=8 BACKENDS=sqlite bash bench/compute/run.sh
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"

for arg in "$@"; do
  case "$arg" in
    -h | --help) echo "usage: bench/compute/run.sh [--name=value ...]; settings (environment or flags): bench/compute/README.md"; exit 0 ;;
  esac
done

if [ "${NO_BUILD:-0}" != 1 ] && [ -z "${STRATUS_MAIN:-}" ]; then
  if ! "$root/stratus" --help >/dev/null; then
    echo "bench: building Stratus failed (above)" >&2
    exit 1
  fi
fi
tsx="$root/node_modules/.bin/tsx"
if [ ! -x "$tsx" ]; then
  echo "bench: $tsx is missing: run ./stratus --help once (it installs the dependencies)" >&2
  exit 2
fi
exec "$tsx" "$root/bench/compute/run.ts" "$@"
