#!/usr/bin/env bash
# Block storage benchmark: create-from-image (1 GiB) against cp, snapshot and
# clone on the file backend, and volumes created/deleted per second on the fake
# backend at concurrency 1, 8, 32, on Stratus and on Debian's Cinder (Zed) in the
# same run. When Stratus is a target (TARGETS, default stratus,cinder), builds it
# first (npx tsc -p tsconfig.json; NO_BUILD=1 uses dist/ as it is); then runs
# bench/volume/run.ts with tsx, from the source, so the harness runs even while
# the build is broken (Stratus is then reported as not measured). Every step has
# a time limit; everything started is stopped on exit, error, Ctrl-C or
# TOTAL_TIMEOUT_S. Settings: environment or --flags, see bench/volume/README.md.
# Quick try: COUNT=50 REPEAT=1 IMAGE_MIB=256 CONCURRENCY=8 TARGETS=stratus bash bench/volume/run.sh
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"

targets="${TARGETS:-stratus,cinder}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --targets=*) targets="${args[$i]#--targets=}" ;;
    --targets) targets="${args[$((i + 1))]:-}" ;;
    --no-build=*) NO_BUILD="${args[$i]#--no-build=}" ;;
    -h | --help) echo "usage: bench/volume/run.sh [--name value ...]; settings (environment or flags): bench/volume/README.md"; exit 0 ;;
  esac
done

if [ ! -x "$root/node_modules/.bin/tsc" ] || [ ! -x "$root/node_modules/.bin/tsx" ]; then
  echo "bench: node_modules is missing: run ./stratus --help once (it installs the dependencies)" >&2
  exit 2
fi
if [[ ",$targets," == *",stratus,"* ]] && [ "${NO_BUILD:-0}" != 1 ] && [ -z "${STRATUS_MAIN:-}" ]; then
  # tsc writes dist/ even when some file has type errors; a missing dist/src/cli/main.js is reported by the run.
  (cd "$root" && timeout 600 node_modules/.bin/tsc -p tsconfig.json >&2) || echo "bench: tsc reported errors (above); running with what it emitted" >&2
fi
exec "$root/node_modules/.bin/tsx" "$root/bench/volume/run.ts" "$@"
