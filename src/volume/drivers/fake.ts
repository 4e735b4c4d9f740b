import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { bufferRange } from './byte-ranges.js';
import {
  DriverUserError,
  GiB,
  type BackupSource,
  type Connector,
  type ConnectionInfo,
  type DriverImage,
  type DriverSnapshot,
  type DriverStats,
  type DriverUpdate,
  type DriverVolume,
  type OpenImageStream,
  type VolumeDriver,
  type VolumeReader,
  type VolumeWriter,
} from './driver.js';

/** The operations a test can hook (make fail or block). */
export type FakeOperation =
  | 'createVolume'
  | 'createFromImage'
  | 'createFromSnapshot'
  | 'createClone'
  | 'createFromExport'
  | 'deleteVolume'
  | 'extendVolume'
  | 'createSnapshot'
  | 'deleteSnapshot'
  | 'revertToSnapshot'
  | 'initializeConnection'
  | 'terminateConnection'
  | 'copyToImage'
  | 'openBackupSource'
  | 'openRestoreTarget';

/** A volume the fake keeps. `partial` until its create finished: what a crash leaves behind. */
export interface FakeVolume {
  id: string;
  size: number;
  partial: boolean;
  /** The data of a small image it was made from (or copied), for round-trip tests; null otherwise. */
  content: Buffer | null;
}

export interface FakeSnapshot {
  id: string;
  volume_id: string;
  size: number;
  partial: boolean;
  content: Buffer | null;
}

/** A test's hook on one operation: throwing fails it, a pending promise blocks it. */
export type FakeHook = (id: string) => void | Promise<void>;

/** Image data kept per volume at most (larger data is read through and dropped). */
const CONTENT_LIMIT = 1024 * 1024;

/**
 * A backend in memory: instant, deterministic, capacity from the
 * configuration (default 1000 GiB). Creates record a partial volume first
 * and complete it at the end, so a test that stops an agent halfway (a hook
 * that blocks) sees what a crash leaves and what `cleanup` removes.
 */
export class FakeVolumeDriver implements VolumeDriver {
  readonly type = 'fake';
  readonly volumes = new Map<string, FakeVolume>();
  readonly snapshots = new Map<string, FakeSnapshot>();
  /** Exports by attachment id. */
  readonly connections = new Map<string, { volume_id: string; connector: Connector }>();
  /** Every operation asked, in order (`createVolume:<id>`), the last 10,000. */
  readonly calls: string[] = [];
  /** Hooks by operation, run after the operation recorded its partial state. */
  hooks: Partial<Record<FakeOperation, FakeHook>> = {};
  readonly capacityGb: number;
  private readonly failures = new Map<FakeOperation, string[]>();
  /** Rejects the operations blocked in hooks when the driver stops (a crash). */
  private stopping: { promise: Promise<never>; reject: (err: Error) => void } = stopSignal();

  /** Every fake backend of this process by its id (connection infos name it), for migrations between them. */
  private static readonly byId = new Map<string, WeakRef<FakeVolumeDriver>>();
  /** This backend's id in connection infos. */
  readonly backendId = randomUUID();

  /** Fake backends by key, so that agents restarted in the same process find their volumes again (as on real storage). */
  private static readonly backends = new Map<string, FakeVolumeDriver>();

  /** The fake backend of that key (a data directory and backend host), made on first use. */
  static shared(key: string, options: { capacityGb?: number } = {}): FakeVolumeDriver {
    let driver = FakeVolumeDriver.backends.get(key);
    if (!driver) {
      driver = new FakeVolumeDriver(options);
      FakeVolumeDriver.backends.set(key, driver);
    }
    return driver;
  }

  constructor(options: { capacityGb?: number } = {}) {
    this.capacityGb = options.capacityGb && options.capacityGb > 0 ? options.capacityGb : 1000;
    FakeVolumeDriver.byId.set(this.backendId, new WeakRef(this));
  }

  /** Makes the next call of `op` fail with `message`. */
  failNext(op: FakeOperation, message = `fake ${op} failure`): void {
    const list = this.failures.get(op) ?? [];
    list.push(message);
    this.failures.set(op, list);
  }

  /**
   * Blocks the next call of `op`: `reached` resolves with the resource id
   * once it is blocked; `release()` lets it go on. A stop of the driver
   * (an agent crash) fails it instead.
   */
  block(op: FakeOperation): { reached: Promise<string>; release(): void } {
    const gate = deferred<void>();
    const hit = deferred<string>();
    this.hooks[op] = async (id) => {
      delete this.hooks[op];
      hit.resolve(id);
      await gate.promise;
    };
    return { reached: hit.promise, release: () => gate.resolve() };
  }

  private async step(op: FakeOperation, id: string): Promise<void> {
    if (this.calls.length >= 10_000) this.calls.splice(0, 1000);
    this.calls.push(`${op}:${id}`);
    const failure = this.failures.get(op)?.shift();
    if (failure !== undefined) throw new Error(failure);
    const hook = this.hooks[op];
    if (hook) await Promise.race([Promise.resolve().then(() => hook(id)), this.stopping.promise]);
  }

  private begin(volume: DriverVolume): FakeVolume {
    const record: FakeVolume = { id: volume.id, size: volume.size, partial: true, content: null };
    this.volumes.set(volume.id, record);
    return record;
  }

  private finish(record: FakeVolume): DriverUpdate {
    record.partial = false;
    return { provider_location: `fake:volume-${record.id}` };
  }

  private volume(id: string): FakeVolume {
    const v = this.volumes.get(id);
    if (!v || v.partial) throw new Error(`Volume ${id} does not exist on this backend.`);
    return v;
  }

  async stats(): Promise<DriverStats> {
    let used = 0;
    for (const v of this.volumes.values()) used += v.size;
    for (const s of this.snapshots.values()) used += s.size;
    return {
      total_capacity_gb: this.capacityGb,
      free_capacity_gb: Math.max(0, this.capacityGb - used),
      allocated_capacity_gb: used,
      provisioned_capacity_gb: used,
      thin_provisioning_support: false,
      thick_provisioning_support: true,
      max_over_subscription_ratio: 1,
      reserved_percentage: 0,
      multiattach: true,
      online_extend_support: true,
      storage_protocol: 'NBD',
      vendor_name: 'Open Source',
      driver_version: '1.0.0',
    };
  }

  async createVolume(volume: DriverVolume): Promise<DriverUpdate> {
    const record = this.begin(volume);
    await this.step('createVolume', volume.id);
    return this.finish(record);
  }

  async createFromImage(volume: DriverVolume, image: DriverImage, openImageStream: OpenImageStream): Promise<DriverUpdate> {
    const record = this.begin(volume);
    await this.step('createFromImage', volume.id);
    const virtualGb = Math.ceil((image.virtual_size ?? image.size ?? 0) / GiB);
    if (virtualGb > volume.size) throw DriverUserError.imageTooBig(virtualGb, volume.size);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of await openImageStream()) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      total += b.length;
      if (total <= CONTENT_LIMIT) chunks.push(b);
    }
    record.content = total <= CONTENT_LIMIT ? Buffer.concat(chunks) : null;
    return this.finish(record);
  }

  async createFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<DriverUpdate> {
    const record = this.begin(volume);
    await this.step('createFromSnapshot', volume.id);
    const source = this.snapshots.get(snapshot.id);
    if (!source || source.partial) throw new Error(`Snapshot ${snapshot.id} does not exist on this backend.`);
    record.content = source.content;
    return this.finish(record);
  }

  async createClone(volume: DriverVolume, source: DriverVolume): Promise<DriverUpdate> {
    const record = this.begin(volume);
    await this.step('createClone', volume.id);
    record.content = this.volume(source.id).content;
    return this.finish(record);
  }

  /** Copies the content of the volume on the fake backend the connection names (in this process). */
  async createFromExport(volume: DriverVolume, source: ConnectionInfo): Promise<DriverUpdate> {
    const record = this.begin(volume);
    await this.step('createFromExport', volume.id);
    const backendId = source.driver_volume_type === 'fake' ? source.data.fake_backend : undefined;
    const backend = typeof backendId === 'string' ? FakeVolumeDriver.byId.get(backendId)?.deref() : undefined;
    if (!backend) throw new Error(`The fake backend cannot read a volume through a ${source.driver_volume_type} connection of another process.`);
    const from = backend.volume(String(source.data.volume_id));
    record.content = from.content;
    return this.finish(record);
  }

  async deleteVolume(volume: DriverVolume): Promise<void> {
    await this.step('deleteVolume', volume.id);
    this.volumes.delete(volume.id);
    for (const [id, c] of this.connections) if (c.volume_id === volume.id) this.connections.delete(id);
  }

  async extendVolume(volume: DriverVolume, newSize: number): Promise<void> {
    await this.step('extendVolume', volume.id);
    this.volume(volume.id).size = newSize;
  }

  async createSnapshot(snapshot: DriverSnapshot, volume: DriverVolume): Promise<DriverUpdate> {
    const source = this.volume(volume.id);
    const record: FakeSnapshot = { id: snapshot.id, volume_id: volume.id, size: source.size, partial: true, content: source.content };
    this.snapshots.set(snapshot.id, record);
    await this.step('createSnapshot', snapshot.id);
    record.partial = false;
    return { provider_location: `fake:snapshot-${snapshot.id}` };
  }

  async deleteSnapshot(snapshot: DriverSnapshot): Promise<void> {
    await this.step('deleteSnapshot', snapshot.id);
    this.snapshots.delete(snapshot.id);
  }

  async revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void> {
    await this.step('revertToSnapshot', volume.id);
    const source = this.snapshots.get(snapshot.id);
    if (!source || source.partial) throw new Error(`Snapshot ${snapshot.id} does not exist on this backend.`);
    this.volume(volume.id).content = source.content;
  }

  async initializeConnection(volume: DriverVolume, connector: Connector, attachmentId: string): Promise<ConnectionInfo> {
    await this.step('initializeConnection', volume.id);
    this.volume(volume.id);
    this.connections.set(attachmentId, { volume_id: volume.id, connector });
    return { driver_volume_type: 'fake', data: { volume_id: volume.id, attachment_id: attachmentId, access_mode: 'rw', target_discovered: false, encrypted: false, fake_backend: this.backendId } };
  }

  async terminateConnection(volume: DriverVolume, _connector: Connector | null, attachmentId: string): Promise<void> {
    await this.step('terminateConnection', volume.id);
    this.connections.delete(attachmentId);
  }

  async copyToImage(volume: DriverVolume, diskFormat: string): Promise<Readable> {
    await this.step('copyToImage', volume.id);
    const v = this.volume(volume.id);
    return Readable.from([v.content ?? Buffer.from(`fake ${diskFormat} image of volume ${volume.id} (${v.size} GiB)\n`)]);
  }

  /** The content of the volume or snapshot (its data, then zeros): what `content` holds. */
  async openBackupSource(source: BackupSource): Promise<VolumeReader> {
    const record = 'volume' in source ? this.volume(source.volume.id) : this.snapshots.get(source.snapshot.id);
    const id = 'volume' in source ? source.volume.id : source.snapshot.id;
    if (!record || record.partial) throw new Error(`Snapshot ${id} does not exist on this backend.`);
    await this.step('openBackupSource', id);
    const content = record.content;
    return {
      size: record.size * GiB,
      extents: content && content.length > 0 ? [{ offset: 0, length: content.length }] : [],
      read: (offset, length) => bufferRange(content, offset, length),
      close: async () => undefined,
    };
  }

  /** Writes into `content` (data past 1 MiB is dropped: `content` becomes null, as for a large image). */
  async openRestoreTarget(volume: DriverVolume, options: { isNew: boolean }): Promise<VolumeWriter> {
    const record = this.volume(volume.id);
    await this.step('openRestoreTarget', volume.id);
    let work: Buffer | null = Buffer.alloc(CONTENT_LIMIT);
    let end = 0;
    if (!options.isNew && record.content) {
      record.content.copy(work);
      end = Math.min(record.content.length, CONTENT_LIMIT);
    }
    const put = (offset: number, bytes: Buffer): void => {
      if (!work) return;
      const inside = Math.max(0, Math.min(bytes.length, CONTENT_LIMIT - offset));
      if (inside > 0) {
        bytes.copy(work, offset, 0, inside);
        if (bytes.subarray(0, inside).some((b) => b !== 0)) end = Math.max(end, offset + inside);
      }
      if (bytes.subarray(inside).some((b) => b !== 0)) work = null;
    };
    return {
      size: record.size * GiB,
      async write(offset, data) {
        let at = offset;
        for await (const chunk of data) {
          const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          put(at, bytes);
          at += bytes.length;
        }
      },
      async zero(offset, length) {
        if (work && offset < CONTENT_LIMIT) work.fill(0, offset, Math.min(CONTENT_LIMIT, offset + length));
      },
      async commit() {
        if (!work) {
          record.content = null;
          return;
        }
        let last = Math.min(end, CONTENT_LIMIT);
        while (last > 0 && work[last - 1] === 0) last--;
        record.content = last > 0 ? Buffer.from(work.subarray(0, last)) : null;
      },
      close: async () => undefined,
    };
  }

  async cleanup(knownVolumeIds: string[], knownSnapshotIds: string[]): Promise<void> {
    const volumes = new Set(knownVolumeIds);
    const snapshots = new Set(knownSnapshotIds);
    for (const [id, v] of this.volumes) if (v.partial || !volumes.has(id)) this.volumes.delete(id);
    for (const [id, s] of this.snapshots) if (s.partial || !snapshots.has(id)) this.snapshots.delete(id);
    for (const [id, c] of this.connections) if (!this.volumes.has(c.volume_id)) this.connections.delete(id);
  }

  /** Fails every operation blocked in a hook, as a crash would end it (partial records stay for `cleanup`); the driver can be used again. */
  async stop(): Promise<void> {
    const current = this.stopping;
    this.stopping = stopSignal();
    current.reject(new Error('the volume driver stopped'));
  }
}

function stopSignal(): { promise: Promise<never>; reject: (err: Error) => void } {
  const signal = deferred<never>();
  signal.promise.catch(() => undefined);
  return { promise: signal.promise, reject: signal.reject };
}

/** A promise and the functions that settle it. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  const settle: { resolve: (value: T) => void; reject: (err: Error) => void } = { resolve: () => undefined, reject: () => undefined };
  const promise = new Promise<T>((resolve, reject) => {
    settle.resolve = resolve;
    settle.reject = reject;
  });
  return { promise, ...settle };
}
