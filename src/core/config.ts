import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * Stratus configuration: one YAML file (`stratus.yaml`, every key optional),
 * then environment overrides, over documented defaults. This module is the
 * only place that reads `process.env` for configuration.
 *
 * Environment overrides: `STRATUS_<SECTION>__<KEY>=value` (double underscore
 * between levels, case-insensitive), e.g. `STRATUS_IDENTITY__PORT=5001`, plus
 * the short forms below for what operators set most.
 */
export interface StratusConfig {
  /** Where every service keeps its files (SQLite databases, keys, images, ...). */
  data_dir: string;
  /** Address the APIs listen on. */
  bind_host: string;
  /** Host name or address that clients use; it goes into the catalog's URLs. */
  public_host: string;
  region: string;
  log: { level: string; file: string };
  metrics: { enabled: boolean; host: string; port: number };
  database: {
    /**
     * Empty: an SQLite file per service in data_dir. Otherwise a URL
     * (`postgres://...`, `mysql://...`, `sqlite:///path`); `{service}` in it is
     * replaced by the service name, so each service keeps its own database.
     */
    url: string;
  };
  bus: { url: string; call_timeout_ms: number };
  identity: IdentityConfig;
  image: ImageConfig;
  network: NetworkConfig;
  placement: PlacementConfig;
  compute: ComputeConfig;
  volume: VolumeConfig;
  object: ObjectConfig;
  /** Services whose roles `up` runs and whose endpoints bootstrap registers. */
  services: string[];
  /** Optional `policy.yaml` overrides per service (file paths). */
  policy_files: Record<string, string>;
}

export interface IdentityConfig {
  port: number;
  /** Admin password for bootstrap; empty: generated once and printed. */
  admin_password: string;
  admin_user: string;
  admin_project: string;
  /** Token lifetime in seconds (Keystone's default: 3600). */
  token_expiration: number;
  /** Fernet keys kept: one primary, one staged, the rest secondary. */
  max_active_keys: number;
  /** Extra time after expiry in which `allow_expired=true` validation works. */
  allow_expired_window: number;
  /** argon2id parameters (OWASP's recommendation: m=19 MiB, t=2, p=1). */
  password_hash: { memory_kib: number; iterations: number; parallelism: number };
  /** Longest password accepted, as Keystone's `max_password_length`. */
  max_password_length: number;
  /** Where a validated token's answer may be cached (seconds; 0 turns it off). */
  cache_ttl: number;
}

/** One named image store (Glance's `enabled_backends`). */
export interface ImageStoreConfig {
  /** `file`: image data as files under `path`; `http`: read-only locations on web servers; `object`: in object storage (Swift API), in the `glance` user's account. */
  type: 'file' | 'http' | 'object';
  /** For `file`: the directory (empty: `<data_dir>/images/<store id>`). */
  path?: string;
  /** For `object`: the container of the images (default `glance`; created on first use). */
  container?: string;
  /** For `object`: largest segment of a large image in bytes (default 200 MiB); images up to 4 MiB (or this, if smaller) are one object. */
  segment_size?: number;
  description?: string;
}

export interface ImageConfig {
  port: number;
  /** Identity's v3 URL, where the image service checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `glance` service user; empty: generated once and kept in the data directory. */
  service_password: string;
  /** Named stores; the first writable one is the default unless `default_store` says otherwise. */
  stores: Record<string, ImageStoreConfig>;
  default_store: string;
  /** Where `glance-direct` data is staged (empty: `<data_dir>/images/staging`). */
  staging_dir: string;
  /** Import methods offered in `/v2/info/import`. */
  import_methods: string[];
  /** Which URLs `web-download` may fetch (Glance's `import_filtering_opts`). Empty host lists mean any host. */
  web_download: { allowed_schemes: string[]; allowed_hosts: string[]; disallowed_hosts: string[]; allowed_ports: number[] };
  /** An import step converts data to this disk format (`raw` or `qcow2`); empty: no conversion. */
  convert_to: string;
  /** Properties that `glance-download` copies from the source image (`*` is a wildcard). */
  glance_download_properties: string[];
  /** Largest image accepted, in bytes (Glance's `image_size_cap`, 1 TiB). */
  image_size_cap: number;
  /** Per-image limits (Glance's `image_*_quota`); 413 beyond. */
  image_member_quota: number;
  image_property_quota: number;
  image_tag_quota: number;
  /**
   * Per-project limits used when identity has no registered limit for the
   * image service: counts, and sizes in MiB, as Glance's unified limits name
   * them. -1 means unlimited.
   */
  default_limits: { image_count_total: number; image_size_total: number; image_stage_total: number; image_count_uploading: number };
  /** Page size of lists without `limit`, and the largest `limit` honoured. */
  limit_param_default: number;
  api_limit_max: number;
  /** The `qemu-img` binary used to check and convert image data. */
  qemu_img: string;
}

export interface NetworkConfig {
  port: number;
  /** Identity's v3 URL, where the network service checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `neutron` service user; empty: generated once and kept in the data directory. */
  service_password: string;
  /** `auto` (`linux` when running as root with iproute2, iptables and dnsmasq installed or installable, else `fake`), `linux` (the Linux data plane), or `fake` (IPAM and database only; ports bind at once). */
  driver: string;
  /** MTU of networks on physical networks (Neutron's `global_physnet_mtu`); VXLAN networks get 50 less. */
  global_physnet_mtu: number;
  /** Network type of project networks (`vxlan`, `vlan` or `flat`). */
  tenant_network_type: string;
  /** VXLAN network identifiers handed to project networks (`first:last`). */
  vni_ranges: string;
  /** `physnet:first:last` VLAN ranges; physnets without a range allow flat and admin-chosen VLANs. */
  network_vlan_ranges: string[];
  /** Physical networks that flat networks may use (`*`: any). */
  flat_networks: string[];
  /** The first three octets of every MAC address handed out (Neutron's `base_mac`). */
  base_mac: string;
  /** The availability zone agents report (Neutron's `default_availability_zones`). */
  availability_zone: string;
  /** Seconds without a heartbeat after which an agent is shown dead (Neutron's `agent_down_time`). */
  agent_down_time: number;
  /** Seconds between two heartbeats of an agent. */
  report_interval: number;
  /** Tell compute about port events (`network-vif-plugged`, ...) through its `os-server-external-events`. */
  notify_compute: boolean;
  /** Largest `limit` honoured on lists (Neutron's `pagination_max_limit`; -1: none). */
  pagination_max_limit: number;
  /** Per-project quotas when none is set for the project (-1: unlimited), as Neutron's `[quotas]`. */
  default_quotas: Record<string, number>;
  /** The shared external network bootstrap creates (`enabled: false` to skip). */
  public_network: { enabled: boolean; name: string; physical_network: string; cidr: string; gateway_ip: string; allocation_pool: string; cidr_v6: string };
  /** The `linux` driver's agents (bridge, DHCP, L3, metadata) on each host. */
  linux: LinuxNetworkConfig;
}

/** The Linux data plane's host settings (`network.linux`), as the Neutron Linux bridge, DHCP, L3 and metadata agents' options. */
export interface LinuxNetworkConfig {
  /** physnet -> bridge on the host that flat networks of that physnet use (Neutron's `bridge_mappings`); made when missing. */
  bridge_mappings: Record<string, string>;
  /** physnet -> host interface: flat networks put it on their bridge, VLAN networks a sub-interface of it (`physical_interface_mappings`). */
  interface_mappings: Record<string, string>;
  /** The host keeps the public network's gateway address on that network's bridge, so the host reaches floating IPs (DevStack's br-ex). */
  external_gateway_on_host: boolean;
  /** This host's VXLAN endpoint address (`local_ip`); empty: VXLAN networks stay on this host. */
  local_ip: string;
  vxlan_port: number;
  /** Prefix of this cloud's packet-filter chains and tables (at most 10 characters). */
  chain_prefix: string;
  /** Seconds between the bridge agent's full scans of the host's tap devices (it also follows `ip monitor`). */
  polling_interval: number;
  dhcp_lease_duration: number;
  /** Domain of the host names DHCP and DNS give ports (Neutron's `dns_domain`). */
  dns_domain: string;
  /** Metadata on networks without a router, through the DHCP namespace (`enable_isolated_metadata`). */
  isolated_metadata: boolean;
  /** Port of the metadata proxy inside router and DHCP namespaces. */
  metadata_port: number;
  /** Compute's metadata API the proxies forward to (Neutron's `nova_metadata_host`/`_port`); empty: `http://<public_host>:<compute.metadata.port>`. */
  metadata_url: string;
  /** A namespace standing for the host (tests): bridges, taps and rules go there instead of the host. Empty: the host. */
  host_netns: string;
}

export interface PlacementConfig {
  port: number;
  /** Identity's v3 URL, where placement checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `placement` service user; empty: generated once and kept in the data directory. */
  service_password: string;
}

export interface ComputeConfig {
  port: number;
  /** Identity's v3 URL, where compute checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `nova` service user; empty: generated once and kept in the data directory. */
  service_password: string;
  /** The virt driver of the compute agents: `auto` (`qemu` when QEMU is installed or installable, else `fake`), `qemu`, or `fake` (no guests). */
  virt_driver: string;
  /** Fake hypervisor hosts that `up` runs in its process (`fake-<n>`); 0: one, named after this machine. */
  fake_hosts: number;
  /** What each fake host reports to placement. */
  fake_host_resources: { vcpus: number; memory_mb: number; local_gb: number };
  /** Allocation ratios of new hosts' inventories (Nova's `initial_*_allocation_ratio`) and what is reserved. */
  cpu_allocation_ratio: number;
  ram_allocation_ratio: number;
  disk_allocation_ratio: number;
  reserved_host_memory_mb: number;
  reserved_host_disk_mb: number;
  /** The availability zone of hosts not in an aggregate that names one (Nova's `default_availability_zone`). */
  default_availability_zone: string;
  /** The zone servers land in when they ask for none (empty: any). */
  default_schedule_zone: string;
  /** Seconds between agent heartbeats, and without one after which a service is down (Nova's `report_interval`, `service_down_time`). */
  report_interval: number;
  service_down_time: number;
  /** Seconds an agent waits for `network-vif-plugged`; 0 does not wait (Nova's `vif_plugging_timeout`). */
  vif_plugging_timeout: number;
  /** A missing `network-vif-plugged` fails the boot rather than going on (Nova's `vif_plugging_is_fatal`). */
  vif_plugging_is_fatal: boolean;
  /** Seconds between the agents' power-state syncs (Nova's `sync_power_state_interval`; 0: never). */
  sync_power_state_interval: number;
  /** Hosts tried per server before it goes to ERROR (Nova's `[scheduler]max_attempts`). */
  max_attempts: number;
  /** `spread` (fewest used first, Nova's default) or `pack` (fullest first). */
  weigher: string;
  /** Seconds after which an unconfirmed resize is confirmed by itself (0: never). */
  resize_confirm_window: number;
  /** Seconds a shelved server keeps its host before it is offloaded (Nova's `shelved_offload_time`; 0: at once, -1: never). */
  shelved_offload_time: number;
  /** A resize may pick the server's own host (Nova's `allow_resize_to_same_host`); a cold migration never does. */
  allow_resize_to_same_host: boolean;
  /** Largest `limit` honoured on lists (Nova's `max_limit`). */
  max_limit: number;
  /** Quotas of a project for which none is set (Nova's `[quota]`; -1: unlimited). */
  default_quotas: Record<string, number>;
  /** The flavors bootstrap creates when there are none (`m1.tiny`, ...). */
  bootstrap_flavors: boolean;
  /** The `qemu` virt driver (one qemu-system-x86_64 per guest, controlled over QMP). */
  qemu: QemuConfig;
  /** The metadata service (nova-api-metadata). */
  metadata: MetadataConfig;
  /** VNC consoles and their websocket proxy (nova-novncproxy). */
  vnc: VncConfig;
  /** The small test guest image `up` builds (`images/build-test-image.sh`) and registers when QEMU is there. */
  test_image: { build: boolean; name: string };
}

/** The `qemu` virt driver's settings (`compute.qemu`). */
export interface QemuConfig {
  /** The emulator (looked up on PATH when not absolute). */
  binary: string;
  /** Where each guest's directory goes (empty: `<data_dir>/compute/instances`). */
  instances_path: string;
  /** The per-host cache of base images (empty: `<instances_path>/_base`). */
  image_cache_path: string;
  /** `auto` (KVM when the probe guest boots under it, else TCG), `kvm` or `tcg`. */
  accel: string;
  /** Seconds the probe guest has to print its marker under KVM. */
  probe_timeout: number;
  /** Seconds a guest has to power off after ACPI powerdown before it is stopped hard (Nova's `shutdown_timeout`). */
  shutdown_timeout: number;
  /** Seconds an unused base image stays in the cache (Nova's `remove_unused_original_minimum_age_seconds`). */
  remove_unused_base_images_after: number;
  /** Every guest gets a config drive (Nova's `force_config_drive`). */
  force_config_drive: boolean;
  /** The address guests' VNC servers listen on (Nova's `[vnc]server_listen`); the proxy connects there. */
  vnc_listen: string;
}

/** The metadata service's settings (`compute.metadata`). */
export interface MetadataConfig {
  /** Port of the metadata API (nova-api-metadata, 8775). */
  port: number;
  /** The secret the network's metadata proxy signs instance ids with (`metadata_proxy_shared_secret`); empty: generated once and kept in the data directory. */
  shared_secret: string;
  /** The domain of guests' host names (Nova's `dhcp_domain`; empty: none). */
  dhcp_domain: string;
  /** Static vendor data served as `vendor_data.json`. */
  vendor_data: Record<string, unknown>;
}

/** VNC consoles (`compute.vnc`). */
export interface VncConfig {
  enabled: boolean;
  /** Port of the websocket proxy (nova-novncproxy, 6080). */
  proxy_port: number;
  /** The URL handed out with the token (empty: `http://<public_host>:<proxy_port>/vnc_lite.html`). */
  base_url: string;
  /** Seconds a console token stays valid (Nova's `[consoleauth]token_ttl`). */
  token_ttl: number;
}

/** One storage backend of the volume service (Cinder's `enabled_backends` section). */
export interface VolumeBackendConfig {
  /** `file` (a qcow2 or raw file per volume, made with qemu-img) or `fake` (in memory, for tests and scale). */
  driver: string;
  /** The `volume_backend_name` capability that volume types match (empty: the backend's key). */
  volume_backend_name: string;
  /** For `file`: the directory of the volume files (empty: `<data_dir>/volumes/<backend>`). */
  path: string;
  /** For `file`: `qcow2` or `raw`. */
  format: string;
  /** Capacity reported to the scheduler in GiB (0: the size of the file system under `path`; the fake driver's default is 1000). */
  capacity_gb: number;
  /** Zone of the backend (empty: `volume.storage_availability_zone`). */
  availability_zone: string;
}

export interface VolumeConfig {
  port: number;
  /** Identity's v3 URL, where the volume service checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `cinder` service user; empty: generated once and kept in the data directory. */
  service_password: string;
  /** The backends, by name; each runs in a volume agent as `<host>@<name>`. */
  backends: Record<string, VolumeBackendConfig>;
  /** The backends the volume agents of this process run (empty: all of `backends`). */
  enabled_backends: string[];
  /** Host name of this process's volume agents (empty: `public_host`). */
  host: string;
  /** Zone of backends that name none (Cinder's `storage_availability_zone`). */
  storage_availability_zone: string;
  /** Zone of volumes created without one (empty: the storage zone). */
  default_availability_zone: string;
  /** The volume type of volumes created without one (Cinder's `default_volume_type`). */
  default_volume_type: string;
  /** Seconds between agent heartbeats, and without one after which a service is down. */
  report_interval: number;
  service_down_time: number;
  /** Backends tried per volume before it goes to `error` (Cinder's `scheduler_max_attempts`). */
  max_attempts: number;
  /** Largest `limit` honoured on lists (Cinder's `osapi_max_limit`). */
  max_limit: number;
  /** Quotas of a project for which none is set (Cinder's `quota_*`; -1: unlimited). */
  default_quotas: Record<string, number>;
  /** The `qemu-img` binary that creates, resizes and converts volume files. */
  qemu_img: string;
  /** Address NBD exports listen on for hosts that cannot open the volume file. */
  nbd_host: string;
  /** Where volume backups go (Cinder's `backup_driver`): `object` (object storage through the Swift API) or `fake` (in memory, for tests). */
  backup_driver: string;
  /** The object storage container of backups made without one (Cinder's `backup_swift_container`). */
  backup_container: string;
  /** Bytes of volume data per backup object (Cinder's `backup_swift_object_size`). */
  backup_chunk_size: number;
  /** How each backup object is compressed: `gzip`, `zlib` or `none` (Cinder's `backup_compression_algorithm`). */
  backup_compression: string;
  /**
   * Whose object storage account keeps backups (Cinder's `backup_swift_auth`): `per_user`, the
   * account of the volume's project, reached with the caller's token (the `cinder` service token
   * when the caller's is refused or absent); `single_user`, the `cinder` user's own account.
   */
  backup_swift_auth: string;
}

/** Object storage (Swift and S3): the proxy, this node's storage servers, the rings, the background workers. */
export interface ObjectConfig {
  /** Port of the object-proxy (Swift API v1 and S3). */
  port: number;
  /** Identity's v3 URL, where the proxy checks tokens (empty: `http://<public_host>:<identity.port>/v3`). */
  auth_url: string;
  /** Password of the `swift` service user; empty: generated once and kept in the data directory. */
  service_password: string;
  /** Where the ring files are (`account.ring.json`, `container.ring.json`, `object.ring.json`; empty: `<data_dir>/object/rings`). */
  ring_dir: string;
  /** Where this node's device directories are (empty: `<data_dir>/object/devices`). */
  devices_dir: string;
  /** Swift's `swift_hash_path_prefix`/`suffix` (empty: generated once and kept in `<data_dir>/object/hash-path.json`); every node of a cluster must share them. */
  hash_path_prefix: string;
  hash_path_suffix: string;
  /** Where this node's storage servers listen and what the rings name them by. */
  storage: { bind_host: string; host: string; object_port: number; container_port: number; account_port: number };
  /** The rings `up` builds on first start when none exist: one node, `devices` directories, each its own zone. */
  default_ring: { part_power: number; replicas: number; devices: number; min_part_hours: number };
  /** Seconds the proxy waits for a storage server to answer (Swift's `node_timeout`, `conn_timeout`). */
  node_timeout: number;
  conn_timeout: number;
  /** Roles that own an account of their project (keystoneauth's `operator_roles`). */
  operator_roles: string[];
  /** The role that may act on every account (keystoneauth's `reseller_admin_role`). */
  reseller_admin_role: string;
  /** Accounts are `<reseller_prefix><project_id>`. */
  reseller_prefix: string;
  /** Largest object accepted in one PUT, in bytes (Swift's `max_file_size`). */
  max_file_size: number;
  /** Seconds between passes of each background worker (0: not run). */
  workers: { replicator_interval: number; auditor_interval: number; updater_interval: number; expirer_interval: number; reaper_interval: number };
  /** Bytes per second the auditor reads (0: unlimited). */
  auditor_bytes_per_second: number;
  /** The S3 API on the proxy's port. */
  s3: { enabled: boolean; region: string };
}

export const DEFAULTS: StratusConfig = {
  data_dir: './data',
  bind_host: '127.0.0.1',
  public_host: '127.0.0.1',
  region: 'RegionOne',
  log: { level: 'info', file: '' },
  metrics: { enabled: true, host: '127.0.0.1', port: 9464 },
  database: { url: '' },
  bus: { url: 'memory://', call_timeout_ms: 60000 },
  identity: {
    port: 5000,
    admin_password: '',
    admin_user: 'admin',
    admin_project: 'admin',
    token_expiration: 3600,
    max_active_keys: 3,
    allow_expired_window: 172800,
    password_hash: { memory_kib: 19456, iterations: 2, parallelism: 1 },
    max_password_length: 4096,
    cache_ttl: 300,
  },
  image: {
    port: 9292,
    auth_url: '',
    service_password: '',
    stores: { file: { type: 'file', path: '', description: 'Local files in the data directory' } },
    default_store: '',
    staging_dir: '',
    import_methods: ['glance-direct', 'web-download', 'copy-image', 'glance-download'],
    web_download: { allowed_schemes: ['http', 'https'], allowed_hosts: [], disallowed_hosts: [], allowed_ports: [80, 443] },
    convert_to: '',
    glance_download_properties: ['hw_*', 'trait:*', 'os_distro', 'os_secure_boot', 'os_type'],
    image_size_cap: 1099511627776,
    image_member_quota: 128,
    image_property_quota: 128,
    image_tag_quota: 128,
    default_limits: { image_count_total: -1, image_size_total: -1, image_stage_total: -1, image_count_uploading: -1 },
    limit_param_default: 25,
    api_limit_max: 1000,
    qemu_img: 'qemu-img',
  },
  network: {
    port: 9696,
    auth_url: '',
    service_password: '',
    driver: 'auto',
    global_physnet_mtu: 1500,
    tenant_network_type: 'vxlan',
    vni_ranges: '1:65535',
    network_vlan_ranges: ['public'],
    flat_networks: ['*'],
    base_mac: 'fa:16:3e:00:00:00',
    availability_zone: 'nova',
    agent_down_time: 75,
    report_interval: 30,
    notify_compute: true,
    pagination_max_limit: -1,
    default_quotas: { network: 100, subnet: 100, subnetpool: -1, port: 500, router: 10, floatingip: 50, security_group: 10, security_group_rule: 100, rbac_policy: 10 },
    public_network: { enabled: true, name: 'public', physical_network: 'public', cidr: '172.24.4.0/24', gateway_ip: '172.24.4.1', allocation_pool: '172.24.4.10-172.24.4.250', cidr_v6: '' },
    linux: {
      bridge_mappings: { public: 'br-ex' },
      interface_mappings: {},
      external_gateway_on_host: true,
      local_ip: '',
      vxlan_port: 4789,
      chain_prefix: 'stratus',
      polling_interval: 2,
      dhcp_lease_duration: 86400,
      dns_domain: 'openstacklocal',
      isolated_metadata: true,
      metadata_port: 9697,
      metadata_url: '',
      host_netns: '',
    },
  },
  placement: { port: 8778, auth_url: '', service_password: '' },
  compute: {
    port: 8774,
    auth_url: '',
    service_password: '',
    virt_driver: 'auto',
    fake_hosts: 0,
    fake_host_resources: { vcpus: 8, memory_mb: 16384, local_gb: 200 },
    cpu_allocation_ratio: 4.0,
    ram_allocation_ratio: 1.0,
    disk_allocation_ratio: 1.0,
    reserved_host_memory_mb: 512,
    reserved_host_disk_mb: 0,
    default_availability_zone: 'nova',
    default_schedule_zone: '',
    report_interval: 10,
    service_down_time: 60,
    vif_plugging_timeout: 300,
    vif_plugging_is_fatal: true,
    sync_power_state_interval: 600,
    max_attempts: 3,
    weigher: 'spread',
    resize_confirm_window: 0,
    shelved_offload_time: 0,
    allow_resize_to_same_host: false,
    max_limit: 1000,
    default_quotas: {
      instances: 10,
      cores: 20,
      ram: 51200,
      metadata_items: 128,
      injected_files: 5,
      injected_file_content_bytes: 10240,
      injected_file_path_bytes: 255,
      key_pairs: 100,
      server_groups: 10,
      server_group_members: 10,
    },
    bootstrap_flavors: true,
    qemu: {
      binary: 'qemu-system-x86_64',
      instances_path: '',
      image_cache_path: '',
      accel: 'auto',
      probe_timeout: 10,
      shutdown_timeout: 60,
      remove_unused_base_images_after: 86400,
      force_config_drive: false,
      vnc_listen: '127.0.0.1',
    },
    metadata: { port: 8775, shared_secret: '', dhcp_domain: 'novalocal', vendor_data: {} },
    vnc: { enabled: true, proxy_port: 6080, base_url: '', token_ttl: 600 },
    test_image: { build: true, name: 'stratus-test' },
  },
  volume: {
    port: 8776,
    auth_url: '',
    service_password: '',
    backends: { file: { driver: 'file', volume_backend_name: '', path: '', format: 'qcow2', capacity_gb: 0, availability_zone: '' } },
    enabled_backends: [],
    host: '',
    storage_availability_zone: 'nova',
    default_availability_zone: '',
    default_volume_type: '__DEFAULT__',
    report_interval: 10,
    service_down_time: 60,
    max_attempts: 3,
    max_limit: 1000,
    default_quotas: { volumes: 10, snapshots: 10, gigabytes: 1000, backups: 10, backup_gigabytes: 1000, per_volume_gigabytes: -1, groups: 10 },
    qemu_img: 'qemu-img',
    nbd_host: '127.0.0.1',
    backup_driver: 'object',
    backup_container: 'volumebackups',
    backup_chunk_size: 32 * 1024 * 1024,
    backup_compression: 'gzip',
    backup_swift_auth: 'per_user',
  },
  object: {
    port: 8080,
    auth_url: '',
    service_password: '',
    ring_dir: '',
    devices_dir: '',
    hash_path_prefix: '',
    hash_path_suffix: '',
    storage: { bind_host: '127.0.0.1', host: '127.0.0.1', object_port: 6200, container_port: 6201, account_port: 6202 },
    default_ring: { part_power: 10, replicas: 3, devices: 3, min_part_hours: 1 },
    node_timeout: 10,
    conn_timeout: 0.5,
    operator_roles: ['admin', 'member', 'swiftoperator'],
    reseller_admin_role: 'ResellerAdmin',
    reseller_prefix: 'AUTH_',
    max_file_size: 5 * 1024 * 1024 * 1024 + 2,
    workers: { replicator_interval: 30, auditor_interval: 300, updater_interval: 30, expirer_interval: 30, reaper_interval: 300 },
    auditor_bytes_per_second: 10 * 1024 * 1024,
    s3: { enabled: true, region: 'us-east-1' },
  },
  services: ['identity', 'image', 'network', 'placement', 'compute', 'volume', 'object'],
  policy_files: {},
};

/** Short environment names for the settings operators change most. */
const SHORT_ENV: Record<string, string> = {
  STRATUS_DATA_DIR: 'data_dir',
  STRATUS_ADMIN_PASSWORD: 'identity.admin_password',
  STRATUS_DATABASE_URL: 'database.url',
  STRATUS_BUS_URL: 'bus.url',
  STRATUS_LOG_LEVEL: 'log.level',
  STRATUS_PUBLIC_HOST: 'public_host',
  STRATUS_BIND_HOST: 'bind_host',
  STRATUS_SERVICES: 'services',
};

export class ConfigError extends Error {}

/**
 * Loads the configuration. `file` may be absent; `overrides` (from command
 * line flags) win over the environment, which wins over the file.
 */
export function loadConfig(options: { file?: string; overrides?: Record<string, unknown>; env?: NodeJS.ProcessEnv } = {}): StratusConfig {
  const env = options.env ?? process.env;
  const config = structuredClone(DEFAULTS) as unknown as Record<string, unknown>;
  const file = options.file ?? env.STRATUS_CONFIG;
  if (file) {
    if (!fs.existsSync(file)) throw new ConfigError(`configuration file ${file} does not exist`);
    const parsed: unknown = parseYaml(fs.readFileSync(file, 'utf8')) ?? {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`${file}: the top level must be a mapping`);
    merge(config, parsed as Record<string, unknown>, file);
  }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const short = SHORT_ENV[name];
    if (short) setPath(config, short.split('.'), value, name);
    else if (name.startsWith('STRATUS_') && name.includes('__')) {
      setPath(config, name.slice('STRATUS_'.length).toLowerCase().split('__'), value, name);
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(config, key.split('.'), value, `--${key}`);
  }
  const result = config as unknown as StratusConfig;
  result.data_dir = path.resolve(result.data_dir);
  return result;
}

/** The database URL of one service, with `{service}` filled in. */
export function databaseUrl(config: StratusConfig, service: string): string {
  if (!config.database.url) return `sqlite://${path.join(config.data_dir, `${service}.sqlite`)}`;
  return config.database.url.replaceAll('{service}', service);
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>, where: string, prefix = ''): void {
  for (const [key, value] of Object.entries(from)) {
    const name = prefix + key;
    if (!(key in into)) throw new ConfigError(`${where}: unknown option '${name}'`);
    const current = into[key];
    if (isMapping(current) && !isOpenMapping(name)) {
      if (!isMapping(value)) throw new ConfigError(`${where}: option '${name}' must be a mapping`);
      merge(current, value, where, `${name}.`);
    } else {
      into[key] = coerce(current, value, name, where);
    }
  }
}

function setPath(config: Record<string, unknown>, keys: string[], raw: unknown, where: string): void {
  let node = config;
  for (const [i, key] of keys.entries()) {
    const name = keys.slice(0, i + 1).join('.');
    if (!(key in node) && !isOpenMapping(keys.slice(0, i).join('.'))) throw new ConfigError(`${where}: unknown option '${name}'`);
    if (i === keys.length - 1) {
      node[key] = coerce(node[key], raw, name, where);
      return;
    }
    const next = node[key];
    if (!isMapping(next)) throw new ConfigError(`${where}: option '${name}' is not a section`);
    node = next;
  }
}

/** Mappings whose keys are free (not checked against the defaults). */
function isOpenMapping(name: string): boolean {
  return name === 'policy_files' || name === 'image.stores' || name === 'volume.backends' || name === 'network.linux.bridge_mappings' || name === 'network.linux.interface_mappings';
}

function coerce(current: unknown, value: unknown, name: string, where: string): unknown {
  const fail = (kind: string): never => {
    throw new ConfigError(`${where}: option '${name}' must be ${kind}, got ${JSON.stringify(value)}`);
  };
  if (current === undefined) return value;
  if (typeof current === 'number') {
    const n = typeof value === 'string' ? Number(value) : value;
    return typeof n === 'number' && Number.isFinite(n) ? n : fail('a number');
  }
  if (typeof current === 'boolean') {
    if (typeof value === 'boolean') return value;
    if (typeof value === 'string' && /^(true|false|1|0|yes|no)$/i.test(value)) return /^(true|1|yes)$/i.test(value);
    return fail('true or false');
  }
  if (Array.isArray(current)) {
    const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : fail('a list');
    // A list of numbers by default (ports, ...) stays a list of numbers.
    if (typeof current[0] === 'number') {
      const numbers = items.map(Number);
      return numbers.every(Number.isFinite) ? numbers : fail('a list of numbers');
    }
    return items.map(String);
  }
  if (typeof current === 'string') return typeof value === 'string' || typeof value === 'number' ? String(value) : fail('a string');
  if (isMapping(current)) return isMapping(value) ? value : fail('a mapping');
  return value;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
