#!/bin/bash
# Start Debian 12's real Cinder (OpenStack Zed, cinder 21.x) on 127.0.0.1:$CINDER_PORT
# (8786), as the reference of bench/volume:
#   * cinder-api (the eventlet server of /usr/bin/cinder-api, $CINDER_API_WORKERS = 2
#     workers), cinder-scheduler and cinder-volume, three services as in a deployment,
#     talking over a private RabbitMQ node (127.0.0.1:$CINDER_RABBIT_PORT, 5692);
#   * a private PostgreSQL 15 cluster (Unix socket only), schema by `cinder-manage db sync`;
#   * two backends in cinder-volume, host `volbench`:
#       `nfs`  - cinder.volume.drivers.nfs.NfsDriver, volume files (qcow2 by default,
#                CINDER_FILE_FORMAT=raw for raw) on the local disk. The driver mounts its
#                share with `mount -t nfs` unless the mount point is already a mount; no NFS
#                server runs here, so the share directory $CINDER_STATE/share is
#                bind-mounted on the mount point the driver computes (md5 of the share
#                name) before cinder-volume starts. Everything else is the NFS driver's own
#                code: qemu-img for files, images, snapshots (nfs_snapshot_support) and clones.
#       `fake` - cinder.tests.fake_driver.FakeLoggingVolumeDriver (Cinder's own fake, used by
#                its functional tests): no storage, for volumes-per-second;
#     (LVM is not possible here: the kernel has no device-mapper, /proc/misc lists none);
#   * keystone auth against the anchor Keystone, images from the anchor Glance of
#     ../../../../shared/anchors/openstack (each started here when it does not answer),
#     a `cinder` service user and the volumev3 / block-storage endpoints registered;
#   * quotas unlimited.
# All state under $OS_ANCHOR_STATE (/tmp/os-anchors-volbench): keystone/, glance/, cinder/.
#   ./start-cinder.sh          start (initialise on first use)
#   ./start-cinder.sh --fresh  wipe Cinder's state (database, volumes) first
# stop-cinder.sh stops all of it.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

for c in cinder-api cinder-scheduler cinder-volume cinder-manage cinder-rootwrap glance-api keystone-manage openstack curl qemu-img mount.nfs sudo; do
  command -v "$c" >/dev/null || { echo "$c not installed: apt-get install -y cinder-api cinder-scheduler cinder-volume glance keystone python3-openstackclient nfs-common qemu-utils sudo curl" >&2; exit 1; }
done
[ -x "$PG_BIN/pg_ctl" ] || { echo "PostgreSQL 15 not found in $PG_BIN: apt-get install -y postgresql-15" >&2; exit 1; }
[ -x "$RB_BIN/rabbitmq-server" ] || { echo "RabbitMQ not found in $RB_BIN: apt-get install -y rabbitmq-server" >&2; exit 1; }
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || { echo "apt-get install -y python3-psycopg2" >&2; exit 1; }
/usr/bin/python3 -c 'import cinder.tests.fake_driver' 2>/dev/null || { echo "cinder.tests.fake_driver is not importable (python3-cinder)" >&2; exit 1; }
case "$CN_FILE_FORMAT" in qcow2) QCOW2=true ;; raw) QCOW2=false ;; *) echo "CINDER_FILE_FORMAT=$CN_FILE_FORMAT: qcow2 or raw" >&2; exit 1 ;; esac

# A state directory made here says so (the benchmark refuses to wipe others).
if [ ! -d "$OS_ANCHOR_STATE" ]; then
  mkdir -p "$OS_ANCHOR_STATE"
  touch "$OS_ANCHOR_STATE/.made-by-start-cinder"
fi

if [ "${1:-}" = "--fresh" ]; then
  "$CN_HERE/stop-cinder.sh" --keep-anchors >/dev/null 2>&1 || true
  markers=""
  for m in keystone-started-here glance-started-here; do [ -f "$CN_STATE/$m" ] && markers="$markers $m"; done
  mp="$(share_mount_point)"
  if is_mounted "$mp"; then umount "$mp"; fi
  rm -rf "$CN_STATE"
  mkdir -p "$CN_STATE"
  for m in $markers; do touch "$CN_STATE/$m"; done
fi
if running_pidfile "$CN_STATE/cinder-api.pid"; then
  echo "cinder-api already running (pid $(cat "$CN_STATE/cinder-api.pid")), $CN_URL"; exit 0
fi
mkdir -p "$CN_STATE"/{log,lock,conversion} "$CN_SHARE_DIR" "$CN_MNT_BASE"

# Keystone and Glance: the anchor ones, in this state directory and on KS_PORT / GL_PORT.
if ! wait_http "$KS_URL/v3" 1; then
  "$STRATUS_ANCHORS/start-keystone.sh"
  touch "$CN_STATE/keystone-started-here"
fi
if ! wait_http "$GL_URL/healthcheck" 1; then
  "$STRATUS_ANCHORS/start-glance.sh"
  touch "$CN_STATE/glance-started-here"
fi

# RabbitMQ: a private node (cinder-api, -scheduler and -volume are separate processes).
rabbit_env_run() { ( rabbit_env; "$@" ); }
if ! running_pidfile "$RB_DIR/rabbit.pid"; then
  mkdir -p "$RB_DIR"/{mnesia,log}
  echo '[].' > "$RB_DIR/enabled_plugins"
  ( rabbit_env; setsid "$RB_BIN/rabbitmq-server" >"$RB_DIR/stdout.log" 2>&1 < /dev/null & )
  if ! rabbit_env_run timeout 90 "$RB_BIN/rabbitmqctl" wait --timeout 90 "$RB_DIR/rabbit.pid" >"$RB_DIR/wait.log" 2>&1; then
    echo "RabbitMQ did not start; see $RB_DIR/log and $RB_DIR/stdout.log" >&2; tail -n 20 "$RB_DIR/stdout.log" >&2 || true; exit 1
  fi
fi

# Database: a private PostgreSQL cluster.
DB_URL="postgresql+psycopg2://cinder@/cinder?host=$PG_SOCK&port=$PG_PORT"
if [ ! -f "$PG_DATA/PG_VERSION" ]; then
  mkdir -p "$PG_DATA" "$PG_SOCK"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$CN_STATE/pg"
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U cinder --auth=trust -E UTF8 --locale=C.UTF-8 >"$CN_STATE/log/initdb.log" 2>&1
fi
if ! pg_running; then
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$CN_STATE/pg/postgres.log" \
    -o "-c listen_addresses='' -c port=$PG_PORT -c unix_socket_directories='$PG_SOCK' -c max_connections=200" start >/dev/null
fi
if ! pg_as_owner "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U cinder -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='cinder'" | grep -q 1; then
  pg_as_owner "$PG_BIN/createdb" -h "$PG_SOCK" -p "$PG_PORT" -U cinder -E UTF8 cinder
fi

# The share: a local directory on the mount point the NFS driver computes.
echo "$CN_SHARE" > "$CN_STATE/nfs_shares"
MP="$(share_mount_point)"
mkdir -p "$MP"
is_mounted "$MP" || mount --bind "$CN_SHARE_DIR" "$MP"

CONF="$CN_STATE/cinder.conf"
cat > "$CONF" <<EOF
[DEFAULT]
my_ip = 127.0.0.1
host = $CN_HOST
state_path = $CN_STATE
log_dir = $CN_STATE/log
debug = ${CINDER_DEBUG:-false}
transport_url = rabbit://guest:guest@127.0.0.1:$RB_PORT/
auth_strategy = keystone
api_paste_config = /etc/cinder/api-paste.ini
rootwrap_config = /etc/cinder/rootwrap.conf
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $CN_PORT
osapi_volume_workers = $CN_API_WORKERS
enabled_backends = nfs,fake
glance_api_servers = $GL_URL
image_conversion_dir = $CN_STATE/conversion
quota_volumes = -1
quota_snapshots = -1
quota_gigabytes = -1
quota_backups = -1
quota_backup_gigabytes = -1
quota_groups = -1

[database]
connection = $DB_URL

[keystone_authtoken]
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = cinder
password = $CN_SERVICE_PASSWORD
region_name = $KS_REGION

[oslo_concurrency]
lock_path = $CN_STATE/lock

[nfs]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs
nfs_shares_config = $CN_STATE/nfs_shares
nfs_mount_point_base = $CN_MNT_BASE
nfs_sparsed_volumes = true
nfs_qcow2_volumes = $QCOW2
nfs_snapshot_support = true
nas_secure_file_operations = false
nas_secure_file_permissions = false

[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
EOF

# Keystone side, once per Keystone: cinder user (admin in service), volumev3 and
# block-storage services with public/internal/admin endpoints.
ks_id="$KS_URL $(stat -c %Y "$KS_STATE/initialised" 2>/dev/null || echo external)"
if [ "$(cat "$CN_STATE/registered" 2>/dev/null)" != "$ks_id $CN_URL" ]; then
  (
    ks_admin_env
    openstack project show service >/dev/null 2>&1 || openstack project create --domain Default service >/dev/null
    openstack user show cinder >/dev/null 2>&1 || openstack user create --domain Default --password "$CN_SERVICE_PASSWORD" cinder >/dev/null
    openstack user set --password "$CN_SERVICE_PASSWORD" cinder
    openstack role add --project service --user cinder admin >/dev/null
    for type in volumev3 block-storage; do
      for id in $(openstack endpoint list --service "$type" -f value -c ID 2>/dev/null); do openstack endpoint delete "$id"; done
      openstack service show "$type" >/dev/null 2>&1 || openstack service create --name "$([ "$type" = volumev3 ] && echo cinderv3 || echo cinder)" "$type" >/dev/null
      for i in public internal admin; do openstack endpoint create --region "$KS_REGION" "$type" $i "$CN_URL/v3/%(project_id)s" >/dev/null; done
    done
  )
  echo "$ks_id $CN_URL" > "$CN_STATE/registered"
fi

if [ ! -f "$CN_STATE/initialised" ]; then
  t0=$(date +%s.%N)
  cinder-manage --config-file "$CONF" db sync >"$CN_STATE/log/db-sync.log" 2>&1 \
    || { echo "cinder-manage db sync failed; see $CN_STATE/log/db-sync.log:" >&2; tail -n 15 "$CN_STATE/log/db-sync.log" >&2; exit 1; }
  touch "$CN_STATE/initialised"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "cinder: database migrated in %.1f s\n", b-a}'
fi

for svc in cinder-scheduler cinder-volume cinder-api; do
  if ! running_pidfile "$CN_STATE/$svc.pid"; then
    setsid "$svc" --config-file "$CONF" --log-file "$CN_STATE/log/$svc.log" >>"$CN_STATE/log/stdout.log" 2>&1 < /dev/null &
    echo $! > "$CN_STATE/$svc.pid"
  fi
done
if ! wait_http "$CN_URL/" 120; then
  echo "cinder-api did not answer on $CN_URL within 120 s; see $CN_STATE/log/" >&2
  tail -n 20 "$CN_STATE/log/cinder-api.log" >&2 || true
  exit 1
fi

# Every service up: the scheduler and both backends' volume services report in os-services.
token=$(curl -s -D - -o /dev/null --max-time 60 -H 'Content-Type: application/json' \
  -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"$KS_ADMIN_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" \
  "$KS_URL/v3/auth/tokens" | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r')
up=""
for _ in $(seq 1 240); do
  body=$(curl -s --max-time 30 -H "X-Auth-Token: $token" "$CN_URL/v3/os-services" || true)
  up=$(printf '%s' "$body" | /usr/bin/python3 -c 'import json,sys
try: s=json.load(sys.stdin)["services"]
except Exception: sys.exit(0)
print(" ".join(sorted(x["binary"]+":"+x["host"] for x in s if x["state"]=="up" and x["status"]=="enabled")))' || true)
  case "$up" in *"cinder-scheduler:"*"cinder-volume:$CN_HOST@fake"*"cinder-volume:$CN_HOST@nfs"*) break ;; esac
  sleep 0.5
done
case "$up" in
  *"cinder-scheduler:"*"cinder-volume:$CN_HOST@fake"*"cinder-volume:$CN_HOST@nfs"*) ;;
  *)
    echo "Cinder services not all up after 120 s (up: ${up:-none}); see $CN_STATE/log/:" >&2
    grep -h -E 'ERROR|CRITICAL' "$CN_STATE"/log/cinder-volume*.log "$CN_STATE"/log/cinder-scheduler.log 2>/dev/null | tail -n 15 >&2 || true
    exit 1 ;;
esac
echo "cinder running: api pid $(cat "$CN_STATE/cinder-api.pid"), $CN_URL ($CN_API_WORKERS API workers; services: $up; database PostgreSQL; RabbitMQ :$RB_PORT; keystone $KS_URL; glance $GL_URL)"
