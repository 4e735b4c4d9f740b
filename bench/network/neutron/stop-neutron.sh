#!/bin/bash
# Stop what start-neutron.sh started, by recorded PIDs only: neutron-server
# (its parent and every worker), the private PostgreSQL cluster, and the
# anchor Keystone when start-neutron.sh started it (--keep-keystone: leave it).
# Same environment as start-neutron.sh (OS_ANCHOR_STATE, KS_PORT, ...). Idempotent.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

if [ -f "$NT_PIDFILE" ]; then
  pid=$(cat "$NT_PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    # The workers are forked children; remember them before the parent goes.
    pids="$(tree_pids "$pid" | tr '\n' ' ')"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do
      alive=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    for p in $alive; do echo "neutron-server: SIGKILL $p"; kill -KILL "$p" 2>/dev/null; done
    echo "neutron-server: stopped (pid $pid)"
  else
    echo "neutron-server: pid $pid not running"
  fi
  rm -f "$NT_PIDFILE"
fi

if pg_running; then
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null && echo "postgresql: stopped ($PG_DATA)"
fi

if [ "${1:-}" != "--keep-keystone" ] && [ -f "$NT_STATE/keystone-started-here" ]; then
  "$STRATUS_ANCHORS/stop-keystone.sh"
  rm -f "$NT_STATE/keystone-started-here"
fi
exit 0
