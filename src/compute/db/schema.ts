/**
 * Row types of the compute database (see migrations.ts). Booleans are
 * integers (0/1) and structured values JSON text, so that SQLite, PostgreSQL
 * and MySQL store them alike; times are ISO 8601 strings.
 */
export interface ComputeSchema {
  service: ServiceRow;
  compute_node: ComputeNodeRow;
  flavor: FlavorRow;
  flavor_extra_spec: { flavorid: string; key: string; value: string };
  flavor_project: { flavorid: string; project_id: string };
  key_pair: KeyPairRow;
  instance: InstanceRow;
  instance_metadata: { instance_uuid: string; key: string; value: string };
  /** Compute's own notes on a server (`shelved_image_id`, `old_vm_state`, ...), never shown to users. */
  instance_system_metadata: { instance_uuid: string; key: string; value: string };
  instance_tag: { instance_uuid: string; tag: string };
  instance_fault: InstanceFaultRow;
  instance_action: InstanceActionRow;
  instance_action_event: InstanceActionEventRow;
  instance_group: InstanceGroupRow;
  instance_group_member: { group_uuid: string; instance_uuid: string };
  quota: { project_id: string; user_id: string; resource: string; hard_limit: number };
  quota_class: { class_name: string; resource: string; hard_limit: number };
  aggregate: AggregateRow;
  aggregate_host: { aggregate_id: number; host: string };
  aggregate_metadata: { aggregate_id: number; key: string; value: string };
  migration: MigrationRow;
  block_device_mapping: BlockDeviceMappingRow;
  virtual_interface: VirtualInterfaceRow;
  console_auth_tokens: ConsoleAuthTokenRow;
}

export interface ServiceRow {
  id: number;
  uuid: string;
  host: string;
  /** `nova-compute`, `nova-scheduler`, `nova-conductor`. */
  binary: string;
  topic: string;
  disabled: number;
  disabled_reason: string | null;
  forced_down: number;
  last_seen_up: string | null;
  report_count: number;
  version: number;
  created_at: string;
  updated_at: string | null;
}

/** A hypervisor: what one compute agent's driver reports. Its uuid is its resource provider's. */
export interface ComputeNodeRow {
  id: number;
  uuid: string;
  service_id: number;
  host: string;
  hypervisor_hostname: string;
  hypervisor_type: string;
  hypervisor_version: number;
  host_ip: string;
  vcpus: number;
  memory_mb: number;
  local_gb: number;
  /** JSON: the driver's CPU description. */
  cpu_info: string;
  /** JSON: the driver's capability traits (`COMPUTE_*`) and properties. */
  capabilities: string;
  created_at: string;
  updated_at: string | null;
}

export interface FlavorRow {
  flavorid: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  ephemeral_gb: number;
  swap: number;
  rxtx_factor: number;
  is_public: number;
  disabled: number;
  description: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface KeyPairRow {
  user_id: string;
  name: string;
  /** `ssh` or `x509`. */
  type: string;
  fingerprint: string;
  public_key: string;
  created_at: string;
}

export interface InstanceRow {
  uuid: string;
  project_id: string;
  user_id: string;
  display_name: string;
  display_description: string | null;
  hostname: string;
  host: string | null;
  node: string | null;
  availability_zone: string | null;
  vm_state: string;
  task_state: string | null;
  power_state: number;
  /** JSON: the flavor as it was when the server got it (see `EmbeddedFlavor`). */
  flavor: string;
  old_flavor: string | null;
  new_flavor: string | null;
  /** The flavor's, copied for quota counting in SQL. */
  vcpus: number;
  memory_mb: number;
  /** The image id ('' for a server booted from a volume). */
  image_ref: string;
  /** JSON: the image's properties the server was built from (`min_disk`, `hw_*`, ...). */
  image: string;
  key_name: string | null;
  key_data: string | null;
  user_data: string | null;
  /** '' or 'True'. */
  config_drive: string;
  access_ip_v4: string | null;
  access_ip_v6: string | null;
  /** `OS-DCF:diskConfig`: AUTO or MANUAL. */
  disk_config: string;
  locked: number;
  /** `owner` or `admin`. */
  locked_by: string | null;
  locked_reason: string | null;
  progress: number;
  reservation_id: string;
  launch_index: number;
  root_device_name: string | null;
  /** JSON: security group names. */
  security_groups: string;
  /** JSON: the network info cache (`NetworkInfo`). */
  network_info: string;
  /** JSON: what the scheduler needs to place the server again (`RequestSpec`). */
  request_spec: string;
  trusted_certs: string | null;
  launched_at: string | null;
  terminated_at: string | null;
  created_at: string;
  updated_at: string;
  deleted: number;
  deleted_at: string | null;
}

export interface InstanceFaultRow {
  id: string;
  instance_uuid: string;
  code: number;
  message: string;
  details: string;
  host: string | null;
  created_at: string;
}

export interface InstanceActionRow {
  id: string;
  request_id: string;
  instance_uuid: string;
  action: string;
  project_id: string;
  user_id: string;
  message: string | null;
  start_time: string;
  updated_at: string;
}

export interface InstanceActionEventRow {
  id: string;
  action_id: string;
  event: string;
  start_time: string;
  finish_time: string | null;
  /** `Success` or `Error`. */
  result: string | null;
  traceback: string | null;
  host: string | null;
  details: string | null;
}

export interface InstanceGroupRow {
  uuid: string;
  name: string;
  project_id: string;
  user_id: string;
  /** `affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`. */
  policy: string;
  /** JSON: `{"max_server_per_host": N}` or `{}`. */
  rules: string;
  created_at: string;
}

export interface AggregateRow {
  id: number;
  uuid: string;
  name: string;
  created_at: string;
  updated_at: string | null;
}

export interface MigrationRow {
  id: number;
  uuid: string;
  instance_uuid: string;
  /** `migration`, `resize`, `live-migration`, `evacuation`. */
  migration_type: string;
  status: string;
  source_compute: string | null;
  source_node: string | null;
  dest_compute: string | null;
  dest_node: string | null;
  dest_host: string | null;
  old_flavorid: string | null;
  new_flavorid: string | null;
  project_id: string;
  user_id: string;
  created_at: string;
  updated_at: string;
}

export interface BlockDeviceMappingRow {
  id: string;
  instance_uuid: string;
  source_type: string;
  destination_type: string;
  boot_index: number | null;
  device_name: string | null;
  device_type: string | null;
  disk_bus: string | null;
  guest_format: string | null;
  image_id: string | null;
  volume_id: string | null;
  snapshot_id: string | null;
  volume_size: number | null;
  volume_type: string | null;
  delete_on_termination: number;
  tag: string | null;
  attachment_id: string | null;
  connection_info: string | null;
  created_at: string;
}

export interface VirtualInterfaceRow {
  port_id: string;
  instance_uuid: string;
  network_id: string;
  mac_address: string;
  tag: string | null;
  /** 1 when compute made the port (and deletes it with the server). */
  created_by_compute: number;
  created_at: string;
}

/** A console URL handed out (Nova's `console_auth_tokens`): where it leads, until when; the token itself is never kept. */
export interface ConsoleAuthTokenRow {
  id: string;
  /** SHA-256 of the token, hex. */
  token_hash: string;
  /** `novnc`. */
  console_type: string;
  /** Where the guest's console server listens (as the proxy reaches it). */
  host: string;
  port: number;
  internal_access_path: string | null;
  instance_uuid: string;
  /** Unix seconds after which the token is refused. */
  expires: number;
  access_url_base: string | null;
  created_at: string;
}
