import type { Bus } from '../core/bus/index.js';
import type { AgentBackup } from './backup/rpc.js';

/**
 * The typed bus API between the volume service's roles (Cinder's rpcapi
 * modules). volume-api casts creates to the scheduler and everything else
 * to the agent that holds the volume (`volume.<host>@<backend>`); agents
 * report back through `volume-conductor`, served by the volume-scheduler
 * role, which has the database (agents have none). Messages only gain
 * fields; a field never changes meaning.
 */
export const SCHEDULER_TOPIC = 'volume-scheduler';
export const CONDUCTOR_TOPIC = 'volume-conductor';
export const VOLUME_TOPIC = 'volume';

/** Where a new volume's content comes from. */
export type VolumeSource =
  | { kind: 'empty' }
  | { kind: 'image'; image_id: string }
  | { kind: 'snapshot'; snapshot_id: string; provider_location: string | null; volume_id: string }
  | { kind: 'volume'; volume_id: string; provider_location: string | null }
  /** 3.47: the backup is restored into the new volume (by the backup service of the host that makes it), which stays `creating` until then. */
  | { kind: 'backup'; backup: AgentBackup; user_token: string | null };

/** What the scheduler needs to place a volume (kept until the create ends, for reschedules). */
export interface CreateRequest {
  volume_id: string;
  project_id: string;
  size: number;
  /** The zone the volume is in (always set by the API). */
  availability_zone: string;
  volume_type: { id: string; name: string; extra_specs: Record<string, string> };
  source: VolumeSource;
  /** A snapshot's or a source volume's backend (`host@backend`): the new volume must land there. */
  source_backend: string | null;
  /** Backends already tried (`host@backend`). */
  attempts: string[];
  /** Retype/migration: a backend the volume must not stay on. */
  ignore_backends?: string[];
  request_id?: string;
}

/** A volume as the agent that holds it needs it. */
export interface AgentVolume {
  id: string;
  size: number;
  /** `host@backend#pool`. */
  host: string;
  provider_location: string | null;
  project_id: string;
}

export interface AgentSnapshot {
  id: string;
  volume_id: string;
  volume_size: number;
  provider_location: string | null;
}

/** A host's connector, as compute sends it (os-brick's, small). */
export interface Connector {
  host: string;
  ip?: string;
  initiator?: string;
  platform?: string;
  os_type?: string;
  multipath?: boolean;
  mountpoint?: string;
  [key: string]: unknown;
}

/** What a hypervisor attaches with: `driver_volume_type` `local` (a path on its host) or `nbd` (an export). */
export interface ConnectionInfo {
  driver_volume_type: string;
  data: Record<string, unknown>;
}

/** One pool of a backend, as its agent reports it (Cinder's `get_volume_stats`). */
export interface PoolStats {
  pool_name: string;
  total_capacity_gb: number;
  free_capacity_gb: number;
  allocated_capacity_gb: number;
  provisioned_capacity_gb: number;
  max_over_subscription_ratio: number;
  reserved_percentage: number;
  thin_provisioning_support: boolean;
  thick_provisioning_support: boolean;
  multiattach: boolean;
  online_extend_support: boolean;
  QoS_support: boolean;
  [capability: string]: unknown;
}

/** A backend's report: its identity and pools. */
export interface BackendReport {
  /** `host@backend`. */
  host: string;
  availability_zone: string;
  volume_backend_name: string;
  vendor_name: string;
  driver_version: string;
  storage_protocol: string;
  pools: PoolStats[];
}

/** Volume changes an agent asks the conductor to record. */
export interface VolumeValues {
  status?: string;
  host?: string | null;
  provider_location?: string | null;
  size?: number;
  bootable?: boolean;
  launched_at?: string | null;
  migration_status?: string | null;
  previous_status?: string | null;
  attach_status?: string;
  /** `volume_image_metadata` to record (a create from image). */
  image_metadata?: Record<string, string>;
}

export interface SnapshotValues {
  status?: string;
  progress?: string;
  provider_location?: string | null;
}

/** The conductor's answer to an agent starting: what it must finish or clean up. */
export interface HostWork {
  /** Volumes on this backend in a transient state (creating, deleting, extending, ...). */
  volumes: (AgentVolume & { status: string; previous_status?: string | null; attach_status?: string })[];
  snapshots: (AgentSnapshot & { status: string })[];
  /** Every volume and snapshot id the database keeps on this backend (files of others are orphans). */
  known_volume_ids: string[];
  known_snapshot_ids: string[];
  /** Volumes on this backend whose migration (`starting`/`migrating`) a previous run of the agent left unfinished. */
  migrating?: string[];
}

/**
 * A volume migration, as the API casts it to the agent that holds the
 * volume (the source), which runs it (Cinder's generic migration): the
 * destination agent makes the volume from the source's export, the
 * conductor switches the record, the source removes its copy.
 */
export interface MigrationRequest {
  volume: AgentVolume;
  /** `host@backend#pool` the volume moves to. */
  destination: string;
  /** A retype: the type the volume takes when it arrives. */
  new_type_id: string | null;
  request_id?: string;
}

/** How the destination of a migration reads the source: the source's export for the destination's host. */
export interface MigrationSource {
  volume: AgentVolume;
  connection: ConnectionInfo;
}

/** Calls to one volume agent (`volume.<host>@<backend>`). */
export class AgentRpc {
  constructor(private readonly bus: Bus) {}

  private target(host: string): { topic: string; server: string } {
    // `host@backend#pool` → server `host@backend`.
    return { topic: VOLUME_TOPIC, server: host.split('#')[0]! };
  }

  createVolume(host: string, req: CreateRequest & { host: string }): Promise<void> {
    return this.bus.cast(this.target(host), 'create_volume', req);
  }

  deleteVolume(volume: AgentVolume): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'delete_volume', { volume });
  }

  extendVolume(volume: AgentVolume, newSize: number, attached: boolean): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'extend_volume', { volume, new_size: newSize, attached });
  }

  createSnapshot(volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'create_snapshot', { volume, snapshot });
  }

  deleteSnapshot(volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'delete_snapshot', { volume, snapshot });
  }

  revertToSnapshot(volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'revert_to_snapshot', { volume, snapshot });
  }

  /** Exports the volume to a host; answers how that host attaches it. */
  initializeConnection(volume: AgentVolume, connector: Connector, attachmentId: string): Promise<ConnectionInfo> {
    return this.bus.call(this.target(volume.host), 'initialize_connection', { volume, connector, attachment_id: attachmentId }, { timeoutMs: 60_000 });
  }

  /** Ends an attachment's export (succeeds when there is none). */
  terminateConnection(volume: AgentVolume, connector: Connector | null, attachmentId: string): Promise<void> {
    return this.bus.call(this.target(volume.host), 'terminate_connection', { volume, connector, attachment_id: attachmentId }, { timeoutMs: 60_000 });
  }

  /** Streams the volume's content to an image that exists in `queued` state (`os-volume_upload_image`). */
  copyVolumeToImage(volume: AgentVolume, image: { id: string; disk_format: string; container_format: string }, restoreStatus: string): Promise<void> {
    return this.bus.cast(this.target(volume.host), 'copy_volume_to_image', { volume, image, restore_status: restoreStatus });
  }

  /** Starts a migration on the source agent (the one that holds the volume); it reports the outcome to the conductor. */
  migrateVolume(req: MigrationRequest): Promise<void> {
    return this.bus.cast(this.target(req.volume.host), 'migrate_volume', req);
  }

  /**
   * Asks the destination agent to make the volume (same id, on its backend)
   * from the source's export; answers its `provider_location`. A failure
   * leaves nothing on the destination. As long as the copy takes.
   */
  acceptMigration(destination: string, source: MigrationSource): Promise<{ provider_location: string | null }> {
    return this.bus.call(this.target(destination), 'accept_migration', source, { timeoutMs: MIGRATION_COPY_TIMEOUT_MS });
  }

  /** Removes a migrated copy from `destination` without touching the volume's record (a migration that failed after the copy). */
  discardMigration(destination: string, volume: AgentVolume): Promise<void> {
    return this.bus.call(this.target(destination), 'discard_migration', { volume }, { timeoutMs: 120_000 });
  }
}

/** How long the copy of a migration may take (a large volume between hosts). */
export const MIGRATION_COPY_TIMEOUT_MS = 24 * 3600 * 1000;

/** What `find_backend` places: a volume of `size` and `volume_type` in the zone, away from `ignore_backends`. */
export interface FindBackendRequest {
  size: number;
  availability_zone: string;
  volume_type: CreateRequest['volume_type'];
  ignore_backends: string[];
  /** Only this backend or pool (`host@backend[#pool]`) may answer: a migration to a chosen host. */
  backend?: string;
}

/** Calls from the API and from agents to the scheduler and conductor. */
export class SchedulerRpc {
  constructor(private readonly bus: Bus) {}

  createVolume(req: CreateRequest): Promise<void> {
    return this.bus.cast({ topic: SCHEDULER_TOPIC }, 'create_volume', req);
  }

  /** The pools the scheduler knows (`/scheduler-stats/get_pools`). */
  getPools(): Promise<{ name: string; capabilities: PoolStats & { volume_backend_name: string; timestamp: string; storage_protocol: string; vendor_name: string; driver_version: string } }[]> {
    return this.bus.call({ topic: SCHEDULER_TOPIC }, 'get_pools', {}, { timeoutMs: 30_000 });
  }

  /** A backend that can hold the volume with `volume_type` and `size` (retype, extend checks), or null. */
  findBackend(req: FindBackendRequest): Promise<string | null> {
    return this.bus.call({ topic: SCHEDULER_TOPIC }, 'find_backend', req, { timeoutMs: 30_000 });
  }
}

export class ConductorRpc {
  constructor(private readonly bus: Bus) {}

  /** A heartbeat with the backend's capacity; creates the service row on first report. */
  report(report: BackendReport): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'service_report', report, { timeoutMs: 30_000 });
  }

  /** What a starting agent must finish or clean up. */
  hostWork(host: string): Promise<HostWork> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'host_work', { host }, { timeoutMs: 60_000 });
  }

  volumeUpdate(volumeId: string, values: VolumeValues, event?: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'volume_update', { volume_id: volumeId, values, event }, { timeoutMs: 60_000 });
  }

  /** A create failed on `host`: the conductor reschedules it or puts the volume in `error` with `reason`. */
  createFailed(req: CreateRequest & { host: string }, reason: string, reschedule: boolean): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'create_failed', { request: req, reason, reschedule }, { timeoutMs: 60_000 });
  }

  /** The volume is deleted from its backend: the conductor removes its record. */
  volumeDeleted(volumeId: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'volume_deleted', { volume_id: volumeId }, { timeoutMs: 60_000 });
  }

  snapshotUpdate(snapshotId: string, values: SnapshotValues, event?: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'snapshot_update', { snapshot_id: snapshotId, values, event }, { timeoutMs: 60_000 });
  }

  snapshotDeleted(snapshotId: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'snapshot_deleted', { snapshot_id: snapshotId }, { timeoutMs: 60_000 });
  }

  /**
   * A migration's copy is on `host` (`host@backend#pool`): the volume's
   * record moves there (and takes `new_type_id` for a retype), its
   * migration status becomes `success` and its status what it was before.
   * `updated` is false when the volume is no longer migrating.
   */
  migrationFinished(volumeId: string, host: string, providerLocation: string | null, newTypeId: string | null): Promise<{ updated: boolean }> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'migration_finished', { volume_id: volumeId, host, provider_location: providerLocation, new_type_id: newTypeId }, { timeoutMs: 60_000 });
  }

  /** A migration failed: the volume stays on its source, migration status `error`, its status back to what it was. */
  migrationFailed(volumeId: string, reason: string): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'migration_failed', { volume_id: volumeId, reason }, { timeoutMs: 60_000 });
  }

  /** Records a user message (`/messages`) about a resource. */
  addMessage(message: { project_id: string; resource_type: string; resource_uuid: string; action_id: string; detail_id: string; request_id?: string }): Promise<void> {
    return this.bus.call({ topic: CONDUCTOR_TOPIC }, 'add_message', message, { timeoutMs: 30_000 });
  }
}
