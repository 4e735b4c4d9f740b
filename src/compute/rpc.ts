import type { Bus, BusContext } from '../core/bus/index.js';
import type { VncEndpoint } from './virt/driver.js';

/**
 * The typed bus API between compute's roles (oslo.messaging's rpcapi
 * modules): compute-api and compute agents talk to the conductor, the
 * conductor to the scheduler and to one agent (`compute.<host>`). Messages
 * only gain fields; a field never changes meaning.
 */
export const CONDUCTOR_TOPIC = 'compute-conductor';
export const SCHEDULER_TOPIC = 'compute-scheduler';
export const COMPUTE_TOPIC = 'compute';

/** The flavor as a server keeps it (a copy: later flavor changes do not touch the server). */
export interface EmbeddedFlavor {
  flavorid: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  ephemeral_gb: number;
  swap: number;
  rxtx_factor: number;
  is_public: boolean;
  description: string | null;
  extra_specs: Record<string, string>;
}

/** One entry of a server's `networks` as asked at create. */
export interface RequestedNetwork {
  network_id?: string;
  port_id?: string;
  fixed_ip?: string;
  tag?: string;
}

/** What the scheduler needs to place (or place again) a server. Kept in `instance.request_spec`. */
export interface RequestSpec {
  project_id: string;
  user_id: string;
  flavor: EmbeddedFlavor;
  image: { id: string; min_disk: number; min_ram: number; properties: Record<string, unknown> };
  /** The zone asked for, or null. */
  availability_zone: string | null;
  /** `host` and/or `node` an admin forced (`zone:host:node`), or the 2.74 `host`/`hypervisor_hostname`. */
  force_host: string | null;
  force_node: string | null;
  requested_host: string | null;
  requested_node: string | null;
  /** The server group the server is in (scheduler hint `group`). */
  group: { uuid: string; policy: string; rules: Record<string, number> } | null;
  same_host: string[];
  different_host: string[];
  /** `auto`, `none`, or the list asked for. */
  requested_networks: 'auto' | 'none' | RequestedNetwork[];
  security_groups: string[];
  /** Hosts not to try again (a failed build's, the source of a migration). */
  ignore_hosts: string[];
  /** False when the root disk is a volume (DISK_GB is not asked of the host). */
  local_root: boolean;
}

/** A host the scheduler chose, and what it claimed there in placement. */
export interface Destination {
  host: string;
  node: string;
  node_uuid: string;
  /** Placement allocations, by resource provider uuid: `{ [rp]: { VCPU: 1, ... } }`. */
  allocation: Record<string, Record<string, number>>;
}

/** The scheduler's answer for each server asked: where it goes, then alternates for reschedules. */
export type Selection = Destination[];

/** What an agent needs to build a server. */
export interface BuildRequest {
  instance_uuid: string;
  spec: RequestSpec;
  destination: Destination;
  /** Other hosts the scheduler found (tried in order when this one fails). */
  alternates: Destination[];
  /** Hosts already tried for this server. */
  attempts: string[];
  action_id: string;
  /**
   * The requesting user's token, for what the host does in the user's name
   * (new volumes of a boot from volume). Travels on the bus only, as Nova's
   * request context does; never stored.
   */
  user_token?: string;
}

/** The server's attributes an agent reads (through the conductor). */
export interface AgentInstance {
  uuid: string;
  display_name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  host: string | null;
  node: string | null;
  availability_zone: string | null;
  vm_state: string;
  task_state: string | null;
  power_state: number;
  flavor: EmbeddedFlavor;
  new_flavor: EmbeddedFlavor | null;
  old_flavor: EmbeddedFlavor | null;
  image_ref: string;
  image_properties: Record<string, unknown>;
  user_data: string | null;
  key_name: string | null;
  key_data: string | null;
  launch_index: number;
  reservation_id: string;
  created_at: string;
  config_drive: boolean;
  metadata: Record<string, string>;
  network_info: NetworkInfo;
  request_spec: RequestSpec;
  /** Compute's own notes on the server (`shelved_image_id`, `shelved_at`, `old_vm_state`, ...). */
  system_metadata?: Record<string, string>;
  /** The server's block device mappings, root first. */
  block_devices?: AgentBdm[];
}

/** The network info cache of a server: one entry per port. */
export type NetworkInfo = VifInfo[];

export interface VifInfo {
  port_id: string;
  network_id: string;
  network_name: string;
  mac_address: string;
  fixed_ips: { ip_address: string; subnet_id: string; version: 4 | 6; floating_ips: string[] }[];
  /** The port was made by compute (deleted with the server). */
  preserve_on_delete: boolean;
  tag: string | null;
  active: boolean;
  devname: string;
}

/** Changes an agent asks the conductor to record on a server. */
export interface InstanceValues {
  vm_state?: string;
  task_state?: string | null;
  power_state?: number;
  host?: string | null;
  node?: string | null;
  launched_at?: string | null;
  terminated_at?: string | null;
  progress?: number;
  network_info?: NetworkInfo;
  flavor?: EmbeddedFlavor;
  old_flavor?: EmbeddedFlavor | null;
  new_flavor?: EmbeddedFlavor | null;
  image_ref?: string;
  image_properties?: Record<string, unknown>;
  availability_zone?: string | null;
}

/** The actions an agent runs on a built server (`run_action`). */
export type AgentAction =
  | { kind: 'reboot'; hard: boolean }
  | { kind: 'stop' }
  | { kind: 'start' }
  | { kind: 'pause' }
  | { kind: 'unpause' }
  | { kind: 'suspend' }
  | { kind: 'resume' }
  | { kind: 'rescue'; image_ref: string }
  | { kind: 'unrescue' }
  | { kind: 'set_password'; password: string }
  | { kind: 'snapshot'; image_id: string; /** createBackup: after the upload, keep only the newest `rotation` backups of this type. */ backup?: { type: string; rotation: number } }
  | { kind: 'rebuild'; image_ref: string; image_properties: Record<string, unknown>; preserve_ephemeral: boolean }
  | { kind: 'resize'; migration_uuid: string; new_flavor: EmbeddedFlavor; destination: Destination; same_host: boolean; old_vm_state?: string }
  | { kind: 'finish_resize'; migration_uuid: string; new_flavor: EmbeddedFlavor; destination: Destination; source_host: string; old_vm_state: string }
  | { kind: 'confirm_resize'; migration_uuid: string }
  | { kind: 'revert_resize'; migration_uuid: string }
  | { kind: 'finish_revert_resize'; migration_uuid: string }
  | { kind: 'shelve'; image_id: string | null; offload: boolean }
  | { kind: 'shelve_offload' }
  /** On the host that gets the server; `destination` null: a SHELVED server starts again where it is. */
  | { kind: 'unshelve'; destination: Destination | null }
  | { kind: 'live_migrate'; migration_uuid: string; destination: Destination }
  | { kind: 'attach_interface'; network_id: string | null; port_id: string | null; fixed_ip: string | null; tag: string | null }
  | { kind: 'detach_interface'; port_id: string }
  | { kind: 'attach_volume'; bdm_id: string }
  | { kind: 'detach_volume'; bdm_id: string }
  | { kind: 'swap_volume'; bdm_id: string; new_volume_id: string; new_attachment_id: string };

/** What the conductor records of a migration for the agents (`update_migration`). */
export interface MigrationValues {
  status?: string;
  dest_compute?: string | null;
  dest_node?: string | null;
  dest_host?: string | null;
}

/** A migration as agents see it. */
export interface AgentMigration {
  uuid: string;
  instance_uuid: string;
  migration_type: string;
  status: string;
  source_compute: string | null;
  source_node: string | null;
  dest_compute: string | null;
  dest_node: string | null;
}

/** A block device mapping as agents read it (`get_bdm`, `get_bdms`). */
export interface AgentBdm {
  id: string;
  instance_uuid: string;
  volume_id: string | null;
  attachment_id: string | null;
  device_name: string | null;
  /** JSON of what the block storage service handed out for this host. */
  connection_info: string | null;
  source_type?: string;
  destination_type?: string;
  boot_index?: number | null;
  image_id?: string | null;
  snapshot_id?: string | null;
  volume_size?: number | null;
  volume_type?: string | null;
  /** 1 when the volume goes with the server. */
  delete_on_termination?: number;
  tag?: string | null;
}

/** How a server is moved (`move_instance`). */
export interface MoveRequest {
  instance_uuid: string;
  kind: 'resize' | 'migrate' | 'unshelve' | 'live_migrate';
  /** Unused: the flavor travels whole in `new_flavor`. */
  new_flavorid?: string;
  /** The flavor a resize goes to (a cold migration keeps the server's). */
  new_flavor?: EmbeddedFlavor;
  /** The host asked for (migrate 2.56, live migration, unshelve 2.91), or null for the scheduler's choice. */
  host?: string | null;
  /** A live migration to `host` that skips the scheduler (2.30 `force`, or any before 2.30). */
  force?: boolean;
  action_id: string;
  migration_uuid?: string;
}

/** An event other services send about a server (`os-server-external-events`). */
export interface ExternalEvent {
  name: string;
  server_uuid: string;
  tag?: string;
  status: 'completed' | 'failed' | 'in-progress';
  /** The instance action the agent records its event under (`extend_volume` for `volume-extended`). */
  action_id?: string;
}

/** Calls from compute-api and agents to the conductor. */
export class ConductorRpc {
  constructor(
    private readonly bus: Bus,
    private readonly timeoutMs = 60_000,
  ) {}

  /** Schedules and builds servers recorded by compute-api (fire and forget). */
  buildInstances(args: { instance_uuids: string[]; action_ids: Record<string, string>; user_token?: string }, context?: BusContext): Promise<void> {
    return this.bus.cast({ topic: CONDUCTOR_TOPIC }, 'build_instances', args, context ? { context } : {});
  }

  /** Moves a server to another host (resize, migrate, unshelve): schedules, then asks the agents. */
  moveInstance(args: MoveRequest, context?: BusContext): Promise<void> {
    return this.bus.cast({ topic: CONDUCTOR_TOPIC }, 'move_instance', args, context ? { context } : {});
  }

  /**
   * The same, answering once the destination is chosen and the agents are
   * asked (a live migration before 2.34): a failure to schedule throws the
   * conductor's error (`RemoteError`) after the server is put back.
   */
  moveInstanceAndWait(args: MoveRequest): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'move_instance_sync', args, { timeoutMs: this.timeoutMs });
  }

  call<T>(method: string, args: unknown): Promise<T> {
    return this.bus.call<T>({ topic: CONDUCTOR_TOPIC }, method, args, { timeoutMs: this.timeoutMs });
  }
}

/** Calls to one host's compute agent. */
export class AgentRpc {
  constructor(
    private readonly bus: Bus,
    private readonly timeoutMs = 60_000,
  ) {}

  buildAndRun(host: string, request: BuildRequest): Promise<void> {
    return this.bus.cast({ topic: COMPUTE_TOPIC, server: host }, 'build_and_run_instance', request);
  }

  terminate(host: string, args: { instance_uuid: string; action_id: string | null }): Promise<void> {
    return this.bus.cast({ topic: COMPUTE_TOPIC, server: host }, 'terminate_instance', args);
  }

  runAction(host: string, args: { instance_uuid: string; action: AgentAction; action_id: string }): Promise<void> {
    return this.bus.cast({ topic: COMPUTE_TOPIC, server: host }, 'run_action', args);
  }

  /** Attaches a port (made, or given) to a server on its host and answers with the port's id (Nova's synchronous `attach_interface`). */
  attachInterface(host: string, args: { instance_uuid: string; action: Extract<AgentAction, { kind: 'attach_interface' }>; action_id: string }): Promise<string> {
    return this.bus.call<string>({ topic: COMPUTE_TOPIC, server: host }, 'attach_interface', args, { timeoutMs: this.timeoutMs });
  }

  /** The destination's half of a live migration: starts the guest there (called by the source host). */
  receiveLiveMigration(host: string, args: { instance_uuid: string; migration_uuid: string; action_id: string }): Promise<void> {
    return this.bus.call({ topic: COMPUTE_TOPIC, server: host }, 'receive_live_migration', args, { timeoutMs: this.timeoutMs });
  }

  externalEvents(host: string, events: ExternalEvent[]): Promise<void> {
    return this.bus.cast({ topic: COMPUTE_TOPIC, server: host }, 'external_instance_event', { events });
  }

  consoleOutput(host: string, instanceUuid: string, length: number | null): Promise<string> {
    return this.bus.call<string>({ topic: COMPUTE_TOPIC, server: host }, 'get_console_output', { instance_uuid: instanceUuid, length }, { timeoutMs: this.timeoutMs });
  }

  /** Where a server's VNC server listens on its host (`get_vnc_console`); null when the driver has none for it. */
  vncConsole(host: string, instanceUuid: string): Promise<VncEndpoint | null> {
    return this.bus.call<VncEndpoint | null>({ topic: COMPUTE_TOPIC, server: host }, 'get_vnc_console', { instance_uuid: instanceUuid }, { timeoutMs: this.timeoutMs });
  }
}
