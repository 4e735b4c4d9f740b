#!/usr/bin/env bash
# Object storage benchmark: 4 KiB PUT/GET per second (concurrency 1 and 16,
# p50/p99) and 256 MiB PUT/GET in MiB/s on Stratus (`stratus up`, identity +
# object) and on Debian's Swift (anchor scripts, policy `triple`: 3 replicas),
# one after the other in the same run, next to the disk's own limits (4 KiB
# files with fsync, dd conv=fsync, dd reads). When Stratus is a target
# (TARGETS, default stratus,swift), builds it first (npx tsc -p tsconfig.json;
# NO_BUILD=1 uses dist/ as it is); then runs bench/object/run.ts with tsx,
# from the source. Every step has a time limit; everything started is stopped
# on exit, error, Ctrl-C or TOTAL_TIMEOUT_S. Settings: environment or
# --flags, see bench/object/README.md.
# Quick try: REPEAT=1 DURATION_S=3 BIG_MIB=64 bash bench/object/run.sh
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"

targets="${TARGETS:-stratus,swift}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --targets=*) targets="${args[$i]#--targets=}" ;;
    --targets) targets="${args[$((i + 1))]:-}" ;;
    --no-build=*) NO_BUILD="${args[$i]#--no-build=}" ;;
    -h | --help) echo "usage: bench/object/run.sh [--name value ...]; settings (environment or flags): bench/object/README.md"; exit 0 ;;
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
exec "$root/node_modules/.bin/tsx" "$root/bench/object/run.ts" "$@"
