import path from 'node:path';
import { volumeHost } from '../volume.js';
import { ServiceClient } from '../../core/auth/service-client.js';
import type { Bus, Consumer } from '../../core/bus/index.js';
import type { StratusConfig, VolumeBackendConfig, VolumeConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { VolumeDriver } from '../drivers/driver.js';
import { FakeVolumeDriver } from '../drivers/fake.js';
import { FileVolumeDriver, qemuImgWorks } from '../drivers/file.js';
import { CONDUCTOR_TOPIC, ConductorRpc, VOLUME_TOPIC, type AgentSnapshot, type AgentVolume, type BackendReport, type Connector, type CreateRequest, type HostWork, type MigrationRequest, type MigrationSource, type VolumeValues } from '../rpc.js';
import { BackupManager } from '../backup/manager.js';
import { createBackupDriver } from '../backup/factory.js';
import { acceptMigration, discardMigration, migrateVolume } from './migration.js';
import { copyVolumeToImage, createSnapshot, createVolume, deleteSnapshot, deleteVolume, extendVolume, revertToSnapshot, toDriverSnapshot, toDriverVolume } from './operations.js';

/** What one volume agent runs with. */
export interface VolumeAgentOptions {
  /** `<host>@<backend>`. */
  host: string;
  /** The backend's key in `volume.backends`. */
  backend: string;
  /** The `volume_backend_name` capability (the pool is named after it too). */
  volumeBackendName: string;
  availabilityZone: string;
  driver: VolumeDriver;
  bus: Bus;
  config: VolumeConfig;
  /** Calls the image and compute services as the `cinder` user. */
  client: ServiceClient;
  log: Logger;
}

/** The agent was stopped: work it had started must not report anything any more (as after a crash). */
export class AgentStopped extends Error {
  constructor() {
    super('the volume agent stopped');
    this.name = 'AgentStopped';
  }
}

/**
 * A volume agent (cinder-volume for one backend, `<host>@<backend>`): it
 * serves `volume.<host>@<backend>`, runs its driver, reports capacity through
 * the conductor (every `report_interval` seconds, and after each change),
 * and on start finishes or fails what a previous run left halfway. It has no
 * database: everything it records goes through the conductor.
 */
export class VolumeAgent {
  readonly conductor: ConductorRpc;
  private consumer: Consumer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private reporting: Promise<void> | null = null;
  private reportAgain = false;
  /** Rejects when the agent stops (ends the long calls it serves). */
  private readonly stopSignal = stopSignal();
  /** Work in progress (for tests that wait for quiet). */
  private readonly running = new Set<Promise<unknown>>();

  constructor(readonly options: VolumeAgentOptions) {
    this.conductor = new ConductorRpc(guardBus(options.bus, () => !this.stopped));
  }

  /** `<host>@<backend>`. */
  get host(): string {
    return this.options.host;
  }

  get driver(): VolumeDriver {
    return this.options.driver;
  }

  get log(): Logger {
    return this.options.log;
  }

  /** True once `stop` ran: work still running must give up without reporting. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Recovers what a previous run left, removes orphans, serves its topic, reports, and starts the heartbeat. */
  async start(): Promise<void> {
    const work = await this.conductor.hostWork(this.host);
    const gone = await this.recover(work);
    await this.driver.cleanup(
      work.known_volume_ids.filter((id) => !gone.volumes.has(id)),
      work.known_snapshot_ids.filter((id) => !gone.snapshots.has(id)),
    );
    this.consumer = await this.options.bus.serve(VOLUME_TOPIC, this.host, {
      create_volume: (req: CreateRequest & { host: string }) => void this.track(createVolume(this, req)),
      delete_volume: (args: { volume: AgentVolume }) => void this.track(deleteVolume(this, args.volume)),
      extend_volume: (args: { volume: AgentVolume; new_size: number; attached: boolean }) => void this.track(extendVolume(this, args.volume, args.new_size, args.attached)),
      create_snapshot: (args: { volume: AgentVolume; snapshot: AgentSnapshot }) => void this.track(createSnapshot(this, args.volume, args.snapshot)),
      delete_snapshot: (args: { volume: AgentVolume; snapshot: AgentSnapshot }) => void this.track(deleteSnapshot(this, args.volume, args.snapshot)),
      revert_to_snapshot: (args: { volume: AgentVolume; snapshot: AgentSnapshot }) => void this.track(revertToSnapshot(this, args.volume, args.snapshot)),
      copy_volume_to_image: (args: { volume: AgentVolume; image: { id: string; disk_format: string; container_format: string }; restore_status: string }) =>
        void this.track(copyVolumeToImage(this, args.volume, args.image, args.restore_status)),
      migrate_volume: (req: MigrationRequest) => void this.track(migrateVolume(this, req)),
      accept_migration: (source: MigrationSource) => this.untilStopped(this.trackCall(acceptMigration(this, source))),
      discard_migration: (args: { volume: AgentVolume }) => discardMigration(this, args.volume),
      initialize_connection: (args: { volume: AgentVolume; connector: Connector; attachment_id: string }) => this.driver.initializeConnection(toDriverVolume(args.volume), args.connector, args.attachment_id),
      terminate_connection: (args: { volume: AgentVolume; connector: Connector | null; attachment_id: string }) => this.driver.terminateConnection(toDriverVolume(args.volume), args.connector, args.attachment_id),
    });
    await this.report();
    const every = this.options.config.report_interval;
    if (every > 0) this.timer = setInterval(() => void this.report().catch((err: unknown) => this.warn(err, 'heartbeat failed')), every * 1000);
  }

  /**
   * Stops as a crash would: takes no more work, abandons what runs (its
   * driver operations fail, nothing more is reported; the next start
   * resolves it), stops the heartbeat. Exports stay up for attached guests.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopSignal.reject(new AgentStopped());
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.consumer?.stop();
    this.consumer = null;
    await this.driver.stop();
  }

  /** Resolves once the work started so far has ended (tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private track(work: Promise<void>): Promise<void> {
    const tracked = work.catch((err: unknown) => {
      if (!this.stopped && !(err instanceof AgentStopped)) this.warn(err, 'volume agent work failed');
    });
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
    return tracked;
  }

  /**
   * A long call's answer, or AgentStopped once the agent stops: stopping
   * the consumer waits for the calls it serves, and the work of this one
   * ends only when the driver stops after it.
   */
  private untilStopped<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.stopSignal.promise]);
  }

  /** Tracks the work of a call (its caller gets its outcome, errors included). */
  private trackCall<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return work;
  }

  warn(err: unknown, message: string, fields: Record<string, unknown> = {}): void {
    if (this.stopped) return;
    this.log.warn({ err, host: this.host, ...fields }, message);
  }

  /** Sends the capacity report (coalesced: calls made during one report cause one more). */
  report(): Promise<void> {
    if (this.reporting) {
      this.reportAgain = true;
      return this.reporting;
    }
    this.reporting = (async () => {
      do {
        this.reportAgain = false;
        await this.conductor.report(await this.backendReport());
      } while (this.reportAgain && !this.stopped);
    })().finally(() => {
      this.reporting = null;
    });
    return this.reporting;
  }

  /** After a change of capacity: report now (failures are only logged). */
  changed(): void {
    if (this.stopped) return;
    void this.track(this.report());
  }

  /** The driver's stats as the scheduler takes them: one pool named after the backend. */
  async backendReport(): Promise<BackendReport> {
    const s = await this.driver.stats();
    const name = this.options.volumeBackendName;
    return {
      host: this.host,
      availability_zone: this.options.availabilityZone,
      volume_backend_name: name,
      vendor_name: s.vendor_name,
      driver_version: s.driver_version,
      storage_protocol: s.storage_protocol,
      pools: [
        {
          ...(s.capabilities ?? {}),
          pool_name: name,
          total_capacity_gb: s.total_capacity_gb,
          free_capacity_gb: s.free_capacity_gb,
          allocated_capacity_gb: s.allocated_capacity_gb,
          provisioned_capacity_gb: s.provisioned_capacity_gb,
          max_over_subscription_ratio: s.max_over_subscription_ratio,
          reserved_percentage: s.reserved_percentage,
          thin_provisioning_support: s.thin_provisioning_support,
          thick_provisioning_support: s.thick_provisioning_support,
          multiattach: s.multiattach,
          online_extend_support: s.online_extend_support,
          QoS_support: false,
        },
      ],
    };
  }

  /**
   * Resolves what a previous run left in a transient state (Cinder's
   * `init_host`): a create that never finished is `error` (its partial data
   * removed), a delete is finished, an extend is `error_extending`, an
   * upload goes back to the volume's previous status; snapshots alike.
   * Returns the ids it deleted.
   */
  private async recover(work: HostWork): Promise<{ volumes: Set<string>; snapshots: Set<string> }> {
    const gone = { volumes: new Set<string>(), snapshots: new Set<string>() };
    for (const v of work.volumes) {
      try {
        switch (v.status) {
          case 'creating':
          case 'downloading':
            await this.driver.deleteVolume(toDriverVolume(v));
            await this.conductor.volumeUpdate(v.id, { status: 'error' });
            break;
          case 'deleting':
            await this.driver.deleteVolume(toDriverVolume(v));
            await this.conductor.volumeDeleted(v.id);
            gone.volumes.add(v.id);
            break;
          case 'extending':
            await this.conductor.volumeUpdate(v.id, { status: 'error_extending' });
            break;
          case 'uploading':
            await this.conductor.volumeUpdate(v.id, { status: v.previous_status && v.previous_status !== 'uploading' ? v.previous_status : v.attach_status === 'attached' ? 'in-use' : 'available' });
            break;
          case 'reverting':
            await this.conductor.volumeUpdate(v.id, { status: 'error' });
            break;
          default:
            break;
        }
      } catch (err) {
        this.warn(err, 'could not recover a volume', { volume_id: v.id, status: v.status });
        if (v.status === 'deleting') await this.conductor.volumeUpdate(v.id, { status: 'error_deleting' }).catch(() => undefined);
      }
    }
    for (const id of work.migrating ?? []) {
      // The copy died with the previous run (the destination's start removes what it made): the volume stays here.
      await this.conductor.migrationFailed(id, 'the volume agent restarted during the migration').catch((err: unknown) => this.warn(err, 'could not fail an interrupted migration', { volume_id: id }));
    }
    for (const s of work.snapshots) {
      try {
        if (s.status === 'creating') {
          await this.driver.deleteSnapshot(toDriverSnapshot(s));
          await this.conductor.snapshotUpdate(s.id, { status: 'error' });
        } else if (s.status === 'deleting') {
          await this.driver.deleteSnapshot(toDriverSnapshot(s));
          await this.conductor.snapshotDeleted(s.id);
          gone.snapshots.add(s.id);
        } else if (s.status === 'restoring') {
          await this.conductor.snapshotUpdate(s.id, { status: 'available' });
        }
      } catch (err) {
        this.warn(err, 'could not recover a snapshot', { snapshot_id: s.id, status: s.status });
        if (s.status === 'deleting') await this.conductor.snapshotUpdate(s.id, { status: 'error_deleting' }).catch(() => undefined);
      }
    }
    return gone;
  }

  /** The servers a volume is attached to (for `volume-extended`). */
  async attachedInstances(volumeId: string): Promise<string[]> {
    if (this.stopped) throw new AgentStopped();
    return this.options.bus.call<string[]>({ topic: CONDUCTOR_TOPIC }, 'attached_instances', { volume_id: volumeId }, { timeoutMs: 30_000 });
  }

  /** Records a volume's new values; false when the conductor did not apply them (the volume is gone or no longer in the expected state). */
  async updateVolume(volumeId: string, values: VolumeValues, event?: string): Promise<boolean> {
    const res = (await this.conductor.volumeUpdate(volumeId, values, event)) as unknown as { updated?: boolean } | null | undefined;
    return res?.updated !== false;
  }
}

function stopSignal(): { promise: Promise<never>; reject: (err: Error) => void } {
  let reject: (err: Error) => void = () => undefined;
  const promise = new Promise<never>((_resolve, fail) => {
    reject = fail;
  });
  promise.catch(() => undefined);
  return { promise, reject };
}

/** A bus whose calls and casts fail with AgentStopped once `alive()` is false. */
function guardBus(bus: Bus, alive: () => boolean): Bus {
  const check = (): void => {
    if (!alive()) throw new AgentStopped();
  };
  return {
    call: (target, method, args, options) => (alive() ? bus.call(target, method, args, options) : Promise.reject(new AgentStopped())),
    cast: (target, method, args, options) => (alive() ? bus.cast(target, method, args, options) : Promise.reject(new AgentStopped())),
    fanout: (topic, method, args, options) => (alive() ? bus.fanout(topic, method, args, options) : Promise.reject(new AgentStopped())),
    notify: (publisher, event, payload, priority) => (alive() ? bus.notify(publisher, event, payload, priority) : Promise.reject(new AgentStopped())),
    serve: (topic, server, handlers) => {
      check();
      return bus.serve(topic, server, handlers);
    },
    onNotification: (filter, listener, options) => {
      check();
      return bus.onNotification(filter, listener, options);
    },
    close: () => Promise.resolve(),
  };
}

/** This process's volume agents and the host's backup service; `stop()` stops them all (as a crash, see {@link VolumeAgent.stop}). */
export interface RunningAgents {
  agents: VolumeAgent[];
  /** The backup service (cinder-backup) of this host, which reads and writes volumes through the agents' drivers. */
  backups: BackupManager;
  stop(): Promise<void>;
}

/** The backends this process runs: `enabled_backends`, or all of `backends`. */
export function enabledBackends(config: VolumeConfig): [string, VolumeBackendConfig][] {
  const names = config.enabled_backends.length > 0 ? config.enabled_backends : Object.keys(config.backends);
  return names.map((name) => {
    const backend = config.backends[name];
    if (!backend) throw new Error(`volume.enabled_backends names "${name}", which volume.backends does not define`);
    return [name, backend];
  });
}

/**
 * Builds the driver of a backend from its configuration. A `file` backend
 * without a working `qemu-img` falls back to the fake driver, loudly (as
 * `up` does for every real driver whose tools are missing).
 */
export async function createVolumeDriver(name: string, backend: VolumeBackendConfig, config: StratusConfig, log: Logger): Promise<VolumeDriver> {
  const fakeBackend = (): VolumeDriver => FakeVolumeDriver.shared(`${path.resolve(config.data_dir)}|${volumeHost(config)}@${name}`, { capacityGb: backend.capacity_gb });
  switch (backend.driver) {
    case 'fake':
      return fakeBackend();
    case 'file': {
      if (!(await qemuImgWorks(config.volume.qemu_img))) {
        log.error({ backend: name, qemu_img: config.volume.qemu_img }, `qemu-img (${config.volume.qemu_img}) cannot be run: volume backend ${name} uses the FAKE driver instead (volumes hold no data). Install qemu-utils to store volumes in files.`);
        return fakeBackend();
      }
      return new FileVolumeDriver({
        path: backend.path || path.join(config.data_dir, 'volumes', name),
        format: backend.format === 'raw' ? 'raw' : 'qcow2',
        capacityGb: backend.capacity_gb,
        qemuImg: config.volume.qemu_img,
        nbdHost: config.volume.nbd_host,
        host: volumeHost(config),
      });
    }
    default:
      throw new Error(`volume backend "${name}" has an unknown driver "${backend.driver}" (expected "file" or "fake")`);
  }
}

/**
 * Starts this host's volume agents, one per enabled backend, each named
 * `<volume.host or public_host>@<backend>`, and the host's backup service
 * (`volume-backup.<host>`, with the `volume.backup_driver`), which uses the
 * agents' drivers. `drivers` replaces the drivers the configuration names
 * (tests); otherwise they are built from it. A failed start stops what
 * already started.
 */
export async function startVolumeAgents(
  config: StratusConfig,
  bus: Bus,
  options: { identity: { authUrl: string; password: string }; log: Logger; drivers?: Record<string, VolumeDriver> },
): Promise<RunningAgents> {
  const client = new ServiceClient(
    { authUrl: options.identity.authUrl, username: 'cinder', password: options.identity.password, projectName: 'service', region: config.region },
    { logger: options.log, userAgent: 'stratus-volume-agent' },
  );
  const hostName = volumeHost(config);
  const agents: VolumeAgent[] = [];
  let backups: BackupManager | null = null;
  try {
    for (const [name, backend] of enabledBackends(config.volume)) {
      const driver = options.drivers?.[name] ?? (await createVolumeDriver(name, backend, config, options.log));
      const host = `${hostName}@${name}`;
      const agent = new VolumeAgent({
        host,
        backend: name,
        volumeBackendName: backend.volume_backend_name || name,
        availabilityZone: backend.availability_zone || config.volume.storage_availability_zone,
        driver,
        bus,
        config: config.volume,
        client,
        log: options.log.child({ host }),
      });
      await agent.start();
      agents.push(agent);
    }
    backups = new BackupManager({
      host: hostName,
      availabilityZone: config.volume.storage_availability_zone,
      drivers: new Map(agents.map((a) => [a.options.backend, a.driver])),
      driver: createBackupDriver(config, client),
      bus,
      config: config.volume,
      log: options.log.child({ role: 'volume-backup', host: hostName }),
    });
    await backups.start();
  } catch (err) {
    await backups?.stop().catch(() => undefined);
    for (const a of agents) await a.stop().catch(() => undefined);
    throw err;
  }
  const manager = backups;
  return {
    agents,
    backups: manager,
    async stop() {
      await manager.stop();
      await Promise.all(agents.map((a) => a.stop()));
    },
  };
}
