#!/usr/bin/env bash
# Networking benchmark: ports created per second (c=1, c=16) and port list
# latency with 10,000 ports, on Debian's neutron-server and on Stratus, in the
# same run. When Stratus is a target (TARGETS, default neutron,stratus), builds
# it first (./stratus --help rebuilds dist/ when a source changed); then runs
# bench/network/run.ts with tsx, from the source, so the harness runs even while
# the build is broken (Stratus is then reported as not measured). Every step
# has a time limit; everything started is stopped on exit, error, Ctrl-C or
# TOTAL_TIMEOUT_S. Settings: environment or --flags, see bench/network/README.md.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)"

targets="${TARGETS:-neutron,stratus}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --targets=*) targets="${args[$i]#--targets=}" ;;
    --targets) targets="${args[$((i + 1))]:-}" ;;
    -h | --help) echo "usage: bench/network/run.sh [--name value ...]; settings (environment or flags): bench/network/README.md"; exit 0 ;;
  esac
done

if [[ ",$targets," == *",stratus,"* ]] && [ "${NO_BUILD:-0}" != 1 ] && [ -z "${STRATUS_MAIN:-}" ]; then
  if ! "$root/stratus" --help >/dev/null; then
    echo "bench: building Stratus failed (above): it will be reported as not measured (TARGETS=neutron leaves it out)" >&2
  fi
fi
tsx="$root/node_modules/.bin/tsx"
if [ ! -x "$tsx" ]; then
  echo "bench: $tsx is missing: run ./stratus --help once (it installs the dependencies)" >&2
  exit 2
fi
exec "$tsx" "$root/bench/network/run.ts" "$@"
