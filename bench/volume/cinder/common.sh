# Settings shared by start-cinder.sh and stop-cinder.sh. Source it; do not run it.
#
# Everything lives under $OS_ANCHOR_STATE (default /tmp/os-anchors-volbench, so
# that the shared anchors' /tmp/os-anchors is never touched): the anchor
# Keystone in keystone/, the anchor Glance in glance/, and Cinder's
# configuration, logs, private RabbitMQ node, private PostgreSQL cluster and
# volume files in cinder/.

# Defaults of this benchmark, set before the anchors' common.sh reads them.
export OS_ANCHOR_STATE="${OS_ANCHOR_STATE:-/tmp/os-anchors-volbench}"
export KS_PORT="${KS_PORT:-5091}"
export KS_CACHE="${KS_CACHE:-1}"
export KS_MEMCACHE_PORT="${KS_MEMCACHE_PORT:-11217}"
# Keystone sees a token request per run and a validation per token and worker.
export KS_PROCESSES="${KS_PROCESSES:-2}"
export GL_PORT="${GL_PORT:-9393}"
export GL_METADEFS="${GL_METADEFS:-0}"

CN_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The repository's bench/volume/cinder -> <repo>/../shared/anchors/openstack.
STRATUS_ANCHORS="${STRATUS_ANCHORS:-$(cd "$CN_HERE/../../.." && pwd)/../shared/anchors/openstack}"
if [ ! -f "$STRATUS_ANCHORS/common.sh" ]; then
  echo "anchor scripts not found in $STRATUS_ANCHORS (set STRATUS_ANCHORS)" >&2
  exit 1
fi
STRATUS_ANCHORS="$(cd "$STRATUS_ANCHORS" && pwd)"
. "$STRATUS_ANCHORS/common.sh"

CN_STATE="${CINDER_STATE:-$OS_ANCHOR_STATE/cinder}"
CN_PORT="${CINDER_PORT:-8786}"
CN_URL="http://127.0.0.1:$CN_PORT"
CN_API_WORKERS="${CINDER_API_WORKERS:-2}"
CN_HOST="${CINDER_HOST:-volbench}"
CN_SERVICE_PASSWORD="${CINDER_SERVICE_PASSWORD:-secret}"
# qcow2 (default, as the Stratus `file` backend of the benchmark) or raw volume files.
CN_FILE_FORMAT="${CINDER_FILE_FORMAT:-qcow2}"
# The "NFS share": a directory of the local file system, bind-mounted where the
# NFS driver expects the share to be mounted (see start-cinder.sh).
CN_SHARE="127.0.0.1:/volbench"
CN_SHARE_DIR="$CN_STATE/share"
CN_MNT_BASE="$CN_STATE/mnt"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_PORT="${CINDER_PG_PORT:-5449}"
PG_DATA="$CN_STATE/pg/data"
# The cluster listens on a Unix socket in this directory only (no TCP port).
PG_SOCK="$CN_STATE/pg/run"

# A private RabbitMQ node (its own epmd on a port of its own, all on 127.0.0.1).
RB_DIR="$CN_STATE/rabbit"
RB_PORT="${CINDER_RABBIT_PORT:-5692}"
RB_DIST_PORT="${CINDER_RABBIT_DIST_PORT:-25692}"
RB_EPMD_PORT="${CINDER_EPMD_PORT:-4372}"
RB_BIN=/usr/lib/rabbitmq/bin

CN_SERVICES="cinder-api cinder-scheduler cinder-volume"

# rabbit_env: the environment of the private node, for rabbitmq-server and rabbitmqctl.
rabbit_env() {
  export HOME="$RB_DIR" RABBITMQ_NODENAME=volbench@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$RB_PORT" RABBITMQ_DIST_PORT="$RB_DIST_PORT" ERL_EPMD_PORT="$RB_EPMD_PORT" \
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE="$RB_DIR/mnesia" RABBITMQ_LOG_BASE="$RB_DIR/log" \
    RABBITMQ_PID_FILE="$RB_DIR/rabbit.pid" RABBITMQ_ENABLED_PLUGINS_FILE="$RB_DIR/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE=/dev/null RABBITMQ_CONFIG_FILE="$RB_DIR/rabbitmq" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

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

# The NFS driver mounts the share at <nfs_mount_point_base>/<md5 of the share>.
share_mount_point() {
  echo "$CN_MNT_BASE/$(printf '%s' "$CN_SHARE" | md5sum | cut -d' ' -f1)"
}

is_mounted() {
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

running_pidfile() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}
