#!/bin/bash
# Stop what start-cinder.sh started, by recorded PIDs only: cinder-api,
# cinder-volume and cinder-scheduler (each with its forked children), the
# share's bind mount, the private PostgreSQL cluster and RabbitMQ node (and its
# epmd), and the anchor Glance and Keystone when start-cinder.sh started them
# (--keep-anchors: leave those). Same environment as start-cinder.sh. Idempotent.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

for svc in cinder-api cinder-volume cinder-scheduler; do
  f="$CN_STATE/$svc.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    # Workers and per-backend processes are forked children; remember them first.
    pids="$(tree_pids "$pid" | tr '\n' ' ')"
    kill -TERM "$pid"
    alive=""
    for _ in $(seq 1 150); do
      alive=""
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    for p in $alive; do echo "$svc: SIGKILL $p"; kill -KILL "$p" 2>/dev/null; done
    echo "$svc: stopped (pid $pid)"
  fi
  rm -f "$f"
done

mp="$(share_mount_point)"
if is_mounted "$mp"; then umount "$mp" && echo "share: unmounted $mp"; fi

if pg_running; then
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null && echo "postgresql: stopped ($PG_DATA)"
fi

if running_pidfile "$RB_DIR/rabbit.pid"; then
  ( rabbit_env; timeout 60 "$RB_BIN/rabbitmqctl" stop "$RB_DIR/rabbit.pid" >/dev/null 2>&1 ) && echo "rabbitmq: stopped"
  running_pidfile "$RB_DIR/rabbit.pid" && kill -KILL "$(cat "$RB_DIR/rabbit.pid")"
fi
# The node's own epmd (on its own port): stop it when it serves no node any more.
if [ -d "$RB_DIR" ]; then
  ( rabbit_env; epmd -names 2>/dev/null | grep -q '^name ' || epmd -kill >/dev/null 2>&1 ) && true
fi

if [ "${1:-}" != "--keep-anchors" ]; then
  if [ -f "$CN_STATE/glance-started-here" ]; then
    "$STRATUS_ANCHORS/stop-glance.sh"
    rm -f "$CN_STATE/glance-started-here"
  fi
  if [ -f "$CN_STATE/keystone-started-here" ]; then
    "$STRATUS_ANCHORS/stop-keystone.sh"
    rm -f "$CN_STATE/keystone-started-here"
  fi
fi
exit 0
