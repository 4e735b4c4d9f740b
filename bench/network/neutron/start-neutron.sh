#!/bin/bash
# Start Debian 12's real neutron-server (OpenStack Zed, neutron 21.x) on
# 127.0.0.1:$NEUTRON_PORT (9697), as the reference of bench/network:
#   * the eventlet `neutron-server` (API workers + RPC workers in one process
#     tree), api_workers=$NEUTRON_API_WORKERS (2), rpc_workers=1, no state-report workers;
#   * ML2 with type drivers flat,vlan,vxlan, tenant networks vxlan, no mechanism
#     driver (nothing needs an agent; ports stay DOWN and unbound), extension
#     driver port_security, security groups on; service plugin `router` (L3);
#   * oslo.messaging's in-process `fake://` transport: no agents listen, so no
#     RabbitMQ is needed (the casts to agents are dropped in memory);
#   * a private PostgreSQL 15 cluster in $NEUTRON_STATE/pg (Unix socket only,
#     started with pg_ctl as `postgres` when run as root), schema by
#     `neutron-db-manage upgrade heads` (SQLite is no option: neutron 21's
#     migrations fail on it, "No support for ALTER of constraints in SQLite dialect");
#   * keystone auth against the anchor Keystone of ../../../../shared/anchors/openstack
#     (started here with start-keystone.sh when it does not answer on KS_PORT),
#     in which a `neutron` service user and the `network` endpoints are registered;
#   * quotas unlimited (the benchmark makes 10,000+ ports in one project), no
#     notifications to Nova.
# All state under $OS_ANCHOR_STATE (/tmp/os-anchors-netbench): keystone/ and neutron/.
#   ./start-neutron.sh          start (initialise database and registration on first use)
#   ./start-neutron.sh --fresh  wipe Neutron's state (database included) first
# Env: NEUTRON_PORT, NEUTRON_API_WORKERS, NEUTRON_RPC_WORKERS, NEUTRON_SERVICE_PLUGINS
# ("" = none), NEUTRON_DEBUG (true: debug log), NEUTRON_PG_PORT, NEUTRON_STATE,
# OS_ANCHOR_STATE, KS_PORT (5081), KS_CACHE (1), KS_MEMCACHE_PORT (11216),
# KS_PROCESSES (2), STRATUS_ANCHORS. stop-neutron.sh stops all of it.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/common.sh"

for c in neutron-server neutron-db-manage openstack curl; do
  command -v "$c" >/dev/null || { echo "$c not installed: apt-get install -y neutron-server python3-openstackclient curl" >&2; exit 1; }
done
[ -x "$PG_BIN/pg_ctl" ] || { echo "PostgreSQL 15 not found in $PG_BIN: apt-get install -y postgresql-15" >&2; exit 1; }
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || { echo "apt-get install -y python3-psycopg2" >&2; exit 1; }

# A state directory made here says so (the benchmark refuses to wipe others).
if [ ! -d "$OS_ANCHOR_STATE" ]; then
  mkdir -p "$OS_ANCHOR_STATE"
  touch "$OS_ANCHOR_STATE/.made-by-start-neutron"
fi

if [ "${1:-}" = "--fresh" ]; then
  "$NT_HERE/stop-neutron.sh" --keep-keystone >/dev/null 2>&1 || true
  ks_marker=$([ -f "$NT_STATE/keystone-started-here" ] && echo 1 || true)
  rm -rf "$NT_STATE"
  if [ -n "$ks_marker" ]; then mkdir -p "$NT_STATE" && touch "$NT_STATE/keystone-started-here"; fi
fi
if neutron_running; then
  echo "neutron-server already running (pid $(cat "$NT_PIDFILE")), $NT_URL"; exit 0
fi
mkdir -p "$NT_STATE"/{log,lock}

# Keystone: the anchor one, in this state directory and on KS_PORT.
if ! wait_http "$KS_URL/v3" 1; then
  "$STRATUS_ANCHORS/start-keystone.sh"
  # stop-neutron.sh stops the Keystone it finds this marker for.
  touch "$NT_STATE/keystone-started-here"
fi

# Database: a private PostgreSQL cluster.
DB_URL="postgresql+psycopg2://neutron@/neutron?host=$PG_SOCK&port=$PG_PORT"
if [ ! -f "$PG_DATA/PG_VERSION" ]; then
  mkdir -p "$PG_DATA" "$PG_SOCK"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$NT_STATE/pg"
  pg_as_owner test -w "$PG_DATA" || { echo "the PostgreSQL owner cannot write $PG_DATA (a parent directory not searchable?)" >&2; exit 1; }
  # Superuser `neutron`, trust on the Unix socket (nothing else listens).
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U neutron --auth=trust -E UTF8 --locale=C.UTF-8 >"$NT_STATE/log/initdb.log" 2>&1
fi
if ! pg_running; then
  # listen_addresses='': Unix socket only, in $PG_SOCK. fsync etc. as PostgreSQL's defaults.
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 -l "$NT_STATE/pg/postgres.log" \
    -o "-c listen_addresses='' -c port=$PG_PORT -c unix_socket_directories='$PG_SOCK' -c max_connections=200" start >/dev/null
fi
if ! pg_as_owner "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -U neutron -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname='neutron'" | grep -q 1; then
  pg_as_owner "$PG_BIN/createdb" -h "$PG_SOCK" -p "$PG_PORT" -U neutron -E UTF8 neutron
fi

CONF="$NT_STATE/neutron.conf"
ML2="$NT_STATE/ml2_conf.ini"
cat > "$CONF" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $NT_PORT
api_workers = $NT_API_WORKERS
rpc_workers = $NT_RPC_WORKERS
rpc_state_report_workers = 0
core_plugin = ml2
service_plugins = $NT_SERVICE_PLUGINS
auth_strategy = keystone
api_paste_config = /etc/neutron/api-paste.ini
allow_overlapping_ips = true
state_path = $NT_STATE
log_dir = $NT_STATE/log
log_file = neutron-server.log
debug = ${NEUTRON_DEBUG:-false}
transport_url = fake://
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
dhcp_agent_notification = false

[database]
connection = $DB_URL

[keystone_authtoken]
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $NT_SERVICE_PASSWORD
region_name = $KS_REGION

[oslo_concurrency]
lock_path = $NT_STATE/lock

[oslo_policy]
policy_file = $NT_STATE/policy.yaml

[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1

[agent]
root_helper =
EOF
cat > "$ML2" <<EOF
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security

[ml2_type_flat]
flat_networks = *

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:4000

[ml2_type_vxlan]
vni_ranges = 1:100000

[securitygroup]
enable_security_group = true
EOF
# Neutron's built-in policy defaults (Zed: legacy admin/owner rules).
echo '# empty: the policy defaults in the code apply' > "$NT_STATE/policy.yaml"

# Keystone side, once per Keystone (its `initialised` file changes on --fresh):
# service project, neutron user (admin in service), network service + endpoints.
ks_id="$KS_URL $(stat -c %Y "$KS_STATE/initialised" 2>/dev/null || echo external)"
if [ "$(cat "$NT_STATE/registered" 2>/dev/null)" != "$ks_id $NT_URL" ]; then
  (
    ks_admin_env
    openstack project show service >/dev/null 2>&1 || openstack project create --domain Default service >/dev/null
    openstack user show neutron >/dev/null 2>&1 || openstack user create --domain Default --password "$NT_SERVICE_PASSWORD" neutron >/dev/null
    openstack user set --password "$NT_SERVICE_PASSWORD" neutron
    openstack role add --project service --user neutron admin >/dev/null
    for id in $(openstack endpoint list --service network -f value -c ID 2>/dev/null); do openstack endpoint delete "$id"; done
    openstack service show network >/dev/null 2>&1 || openstack service create --name neutron network >/dev/null
    for i in public internal admin; do openstack endpoint create --region "$KS_REGION" network $i "$NT_URL" >/dev/null; done
  )
  echo "$ks_id $NT_URL" > "$NT_STATE/registered"
fi

if [ ! -f "$NT_STATE/initialised" ]; then
  t0=$(date +%s.%N)
  neutron-db-manage --config-file "$CONF" --config-file "$ML2" upgrade heads >"$NT_STATE/log/db-manage.log" 2>&1 \
    || { echo "neutron-db-manage upgrade heads failed; see $NT_STATE/log/db-manage.log:" >&2; tail -n 15 "$NT_STATE/log/db-manage.log" >&2; exit 1; }
  touch "$NT_STATE/initialised"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "neutron: database migrated in %.1f s\n", b-a}'
fi

setsid neutron-server --config-file "$CONF" --config-file "$ML2" >>"$NT_STATE/log/stdout.log" 2>&1 < /dev/null &
echo $! > "$NT_PIDFILE"
# The version document needs no token; then one authenticated list proves
# that keystonemiddleware, the plugin and the database work.
if ! wait_http "$NT_URL/" 120; then
  echo "neutron-server did not answer on $NT_URL within 120 s; see $NT_STATE/log/" >&2
  tail -n 20 "$NT_STATE/log/neutron-server.log" >&2 || true
  exit 1
fi
token=$(curl -s -D - -o /dev/null --max-time 60 -H 'Content-Type: application/json' \
  -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"$KS_ADMIN_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" \
  "$KS_URL/v3/auth/tokens" | awk 'tolower($1)=="x-subject-token:"{print $2}' | tr -d '\r')
code=000
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "X-Auth-Token: $token" "$NT_URL/v2.0/networks" || true)
  [ "$code" = 200 ] && break
  sleep 0.5
done
if [ "$code" != 200 ]; then
  echo "neutron-server answers GET /v2.0/networks with HTTP $code; see $NT_STATE/log/neutron-server.log" >&2; exit 1
fi
echo "neutron-server running: pid $(cat "$NT_PIDFILE"), $NT_URL (api_workers=$NT_API_WORKERS rpc_workers=$NT_RPC_WORKERS, database PostgreSQL, keystone $KS_URL)"
