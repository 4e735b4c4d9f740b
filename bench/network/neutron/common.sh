# Settings shared by start-neutron.sh and stop-neutron.sh. Source it; do not run it.
#
# Everything lives under $OS_ANCHOR_STATE (default /tmp/os-anchors-netbench, so
# that the Keystone of the shared anchors, /tmp/os-anchors on :5000, is never
# touched): the anchor Keystone in keystone/, Neutron's configuration, logs,
# lock files and its private PostgreSQL cluster in neutron/.

# Defaults of this benchmark, set before the anchors' common.sh reads them.
export OS_ANCHOR_STATE="${OS_ANCHOR_STATE:-/tmp/os-anchors-netbench}"
export KS_PORT="${KS_PORT:-5081}"
export KS_CACHE="${KS_CACHE:-1}"
export KS_MEMCACHE_PORT="${KS_MEMCACHE_PORT:-11216}"
# Two uwsgi processes are plenty: Keystone sees one token request per run and
# one validation per token and Neutron API worker (keystonemiddleware caches it).
export KS_PROCESSES="${KS_PROCESSES:-2}"

NT_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The repository's bench/network/neutron -> <repo>/../shared/anchors/openstack.
STRATUS_ANCHORS="${STRATUS_ANCHORS:-$(cd "$NT_HERE/../../.." && pwd)/../shared/anchors/openstack}"
if [ ! -f "$STRATUS_ANCHORS/common.sh" ]; then
  echo "anchor scripts not found in $STRATUS_ANCHORS (set STRATUS_ANCHORS)" >&2
  exit 1
fi
STRATUS_ANCHORS="$(cd "$STRATUS_ANCHORS" && pwd)"
. "$STRATUS_ANCHORS/common.sh"

NT_STATE="${NEUTRON_STATE:-$OS_ANCHOR_STATE/neutron}"
NT_PORT="${NEUTRON_PORT:-9697}"
NT_URL="http://127.0.0.1:$NT_PORT"
NT_API_WORKERS="${NEUTRON_API_WORKERS:-2}"
NT_RPC_WORKERS="${NEUTRON_RPC_WORKERS:-1}"
NT_SERVICE_PLUGINS="${NEUTRON_SERVICE_PLUGINS-router}"
NT_SERVICE_PASSWORD="${NEUTRON_SERVICE_PASSWORD:-secret}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT="${NEUTRON_PG_PORT:-5439}"
PG_DATA="$NT_STATE/pg/data"
# The cluster listens on a Unix socket in this directory only (no TCP port).
PG_SOCK="$NT_STATE/pg/run"
NT_PIDFILE="$NT_STATE/neutron-server.pid"

# pg_as_owner CMD...: runs a PostgreSQL command as the cluster's owner
# (initdb and postgres refuse to run as root; as root the owner is `postgres`).
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_running() {
  [ -f "$PG_DATA/postmaster.pid" ] && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

neutron_running() {
  [ -f "$NT_PIDFILE" ] && kill -0 "$(cat "$NT_PIDFILE")" 2>/dev/null
}
