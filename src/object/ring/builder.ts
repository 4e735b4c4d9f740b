import fs from 'node:fs';
import path from 'node:path';
import { rebalance, ringStats, UNASSIGNED, type BuilderDevice, type RingStats } from './rebalance.js';
import { ringFile, writeRingFile, type RingData, type RingDevice, type RingKind } from './ring.js';

export { RebalanceError, type BuilderDevice, type RingStats } from './rebalance.js';

/** Bad input to the builder (a device that does not exist, a weight that is not a number, ...). */
export class RingBuilderError extends Error {}

/** Largest device id a ring file can hold (its table is uint16). */
const MAX_DEVICE_ID = 0xfffe;

/** The builder file of a ring kind: `<ring_dir>/<kind>.builder.json`. */
export function builderFile(ringDir: string, kind: RingKind): string {
  return path.join(ringDir, `${kind}.builder.json`);
}

/** The builder file's JSON. The tables are base64 of little-endian typed arrays, as in the ring file. */
interface BuilderForm {
  format: 1;
  part_power: number;
  replicas: number;
  min_part_hours: number;
  overload: number;
  /** Rebalances done; the ring file written by the last one carries this version. */
  version: number;
  devices: (BuilderDevice | null)[];
  /** `[replica]` → base64 of Int32 device ids per partition (-1: unassigned); null before the first rebalance. */
  replica2part2dev: string[] | null;
  /** Base64 of Uint32: the minute (since the epoch) each partition last moved. */
  last_moved: string | null;
  /** True when devices changed since the last rebalance. */
  dirty: boolean;
}

/** What a rebalance did, for the operator. */
export interface RebalanceReport {
  /** False when nothing moved and no device was removed: the builder and the ring stay as they were. */
  changed: boolean;
  movedPartitions: number;
  movedReplicas: number;
  parts: number;
  balance: number;
  dispersion: number;
  version: number;
}

/** A device as the operator gives it to `add` (the id is chosen by the builder unless given). */
export type NewDevice = Omit<RingDevice, 'id'> & { id?: number };

/**
 * Swift's ring builder: the devices of a ring and the assignment of its
 * partitions, kept in a builder file from which `rebalance` produces the ring
 * file the servers read. Device ids are never reused, so that an old ring and
 * a new one never mean different devices by the same id.
 */
export class RingBuilder {
  private constructor(private form: BuilderForm) {}

  /**
   * A new builder: 2^partPower partitions, `replicas` replicas, partitions
   * movable again after `minPartHours`. `version` is where the ring versions
   * continue from (the version of a ring file being replaced).
   */
  static create(partPower: number, replicas: number, minPartHours: number, version = 0): RingBuilder {
    if (!Number.isInteger(partPower) || partPower < 1 || partPower > 24) throw new RingBuilderError(`the partition power must be a whole number from 1 to 24, not ${partPower}`);
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 16) throw new RingBuilderError(`the replica count must be a whole number from 1 to 16, not ${replicas}`);
    if (!Number.isInteger(minPartHours) || minPartHours < 0) throw new RingBuilderError(`min_part_hours must be a whole number of hours >= 0, not ${minPartHours}`);
    return new RingBuilder({
      format: 1,
      part_power: partPower,
      replicas,
      min_part_hours: minPartHours,
      overload: 0,
      version: Number.isInteger(version) && version > 0 ? version : 0,
      devices: [],
      replica2part2dev: null,
      last_moved: null,
      dirty: true,
    });
  }

  /** Reads a builder file. Throws RingBuilderError when it is missing or not a builder. */
  static load(file: string): RingBuilder {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RingBuilderError(`no ring builder at ${file} (create it with 'stratus ring create')`);
      throw err;
    }
    let form: BuilderForm;
    try {
      form = JSON.parse(text) as BuilderForm;
    } catch {
      throw new RingBuilderError(`${file} is not a ring builder file`);
    }
    if (form.format !== 1 || !Number.isInteger(form.part_power) || !Array.isArray(form.devices)) throw new RingBuilderError(`${file} is not a ring builder file`);
    return new RingBuilder(form);
  }

  /** Writes the builder file atomically (temporary file, fsync, rename). */
  save(file: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, 'w', 0o644);
    try {
      fs.writeSync(fd, `${JSON.stringify(this.form)}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  }

  get partPower(): number {
    return this.form.part_power;
  }

  get replicas(): number {
    return this.form.replicas;
  }

  get minPartHours(): number {
    return this.form.min_part_hours;
  }

  get overload(): number {
    return this.form.overload;
  }

  /** Rebalances done so far (the version of the last ring written). */
  get version(): number {
    return this.form.version;
  }

  /** True when devices changed since the last rebalance (the ring file is out of date). */
  get dirty(): boolean {
    return this.form.dirty;
  }

  /** Devices of the builder, removed-but-not-yet-rebalanced ones included (marked). */
  get devices(): BuilderDevice[] {
    return this.form.devices.filter((d): d is BuilderDevice => d !== null);
  }

  /** A device by id, or undefined. */
  device(id: number): BuilderDevice | undefined {
    return this.form.devices[id] ?? undefined;
  }

  /**
   * Adds a device; returns its id (the lowest never used, unless one is
   * given). Refuses a device whose ip:port/device another device has.
   */
  addDevice(spec: NewDevice): number {
    validateDevice(spec);
    const clash = this.devices.find((d) => !d.removed && d.ip === spec.ip && d.port === spec.port && d.device === spec.device);
    if (clash) throw new RingBuilderError(`device ${clash.id} already uses ${formatAddress(spec.ip, spec.port)}/${spec.device}`);
    let id = spec.id;
    if (id === undefined) id = this.form.devices.length;
    else if (!Number.isInteger(id) || id < 0) throw new RingBuilderError(`a device id must be a whole number >= 0, not ${id}`);
    else if (id < this.form.devices.length) throw new RingBuilderError(`device id ${id} is or was in use`);
    if (id > MAX_DEVICE_ID) throw new RingBuilderError(`a ring holds device ids up to ${MAX_DEVICE_ID}`);
    while (this.form.devices.length < id) this.form.devices.push(null);
    this.form.devices.push({ id, region: spec.region, zone: spec.zone, ip: spec.ip, port: spec.port, device: spec.device, weight: spec.weight, meta: spec.meta });
    this.form.dirty = true;
    return id;
  }

  /** Marks a device for removal: the next rebalance moves all its partitions away and drops it. */
  removeDevice(id: number): BuilderDevice {
    const device = this.liveDevice(id);
    device.removed = true;
    this.form.dirty = true;
    return device;
  }

  /** Sets a device's weight (0 drains it at the pace min_part_hours allows). */
  setWeight(id: number, weight: number): BuilderDevice {
    checkWeight(weight);
    const device = this.liveDevice(id);
    device.weight = weight;
    this.form.dirty = true;
    return device;
  }

  /** Sets the overload: how far (a fraction, 0.1 = 10%) a device may go over its weight for wider dispersion. */
  setOverload(overload: number): void {
    if (!Number.isFinite(overload) || overload < 0) throw new RingBuilderError(`the overload must be a number >= 0, not ${overload}`);
    this.form.overload = overload;
    this.form.dirty = true;
  }

  /** Sets min_part_hours. */
  setMinPartHours(hours: number): void {
    if (!Number.isInteger(hours) || hours < 0) throw new RingBuilderError(`min_part_hours must be a whole number of hours >= 0, not ${hours}`);
    this.form.min_part_hours = hours;
  }

  /** Forgets when partitions last moved, so that the next rebalance may move any (Swift's `pretend_min_part_hours_passed`). */
  pretendMinPartHoursPassed(): void {
    if (this.form.last_moved) this.form.last_moved = encodeU32(new Uint32Array(this.parts));
  }

  /** Seconds until every partition may move again (0 when all may). */
  minPartSecondsLeft(now = Date.now()): number {
    if (!this.form.last_moved || this.form.min_part_hours <= 0) return 0;
    let latest = 0;
    for (const minute of decodeU32(this.form.last_moved)) latest = Math.max(latest, minute);
    return Math.max(0, (latest + this.form.min_part_hours * 60) * 60 - Math.floor(now / 1000));
  }

  private get parts(): number {
    return 2 ** this.form.part_power;
  }

  private liveDevice(id: number): BuilderDevice {
    const device = Number.isInteger(id) ? this.form.devices[id] : undefined;
    if (!device || device.removed) throw new RingBuilderError(`no device with id ${id}`);
    return device;
  }

  /** The current assignment, `[replica][partition]` → device id (-1 unassigned), or null before the first rebalance. */
  assignment(): Int32Array[] | null {
    return this.form.replica2part2dev ? this.form.replica2part2dev.map(decodeI32) : null;
  }

  /**
   * Reassigns partitions (see `rebalance.ts`), drops removed devices and
   * bumps the version; when nothing moved and no device was removed,
   * changes nothing (`changed: false`; as Swift, a weight change that moves
   * nothing yet waits for a rebalance that does). Throws RebalanceError when no ring can be built; the
   * builder is then unchanged. `now` (ms since the epoch) and `seed` make it
   * reproducible in tests.
   */
  rebalance(options: { now?: number; seed?: number } = {}): RebalanceReport {
    const now = options.now ?? Date.now();
    const result = rebalance({
      partPower: this.form.part_power,
      replicas: this.form.replicas,
      devices: this.form.devices,
      assignment: this.assignment(),
      lastMoved: this.form.last_moved ? decodeU32(this.form.last_moved) : null,
      minPartHours: this.form.min_part_hours,
      overload: this.form.overload,
      nowMinute: Math.floor(now / 60_000),
      seed: options.seed ?? this.form.version + 1,
    });
    const changed = result.movedReplicas > 0 || this.form.devices.some((d) => d?.removed === true);
    if (!changed) {
      const stats = this.stats();
      return { changed, movedPartitions: 0, movedReplicas: 0, parts: this.parts, balance: stats.balance, dispersion: stats.dispersion, version: this.form.version };
    }
    for (const [i, d] of this.form.devices.entries()) if (d?.removed) this.form.devices[i] = null;
    this.form.replica2part2dev = result.assignment.map(encodeI32);
    this.form.last_moved = encodeU32(result.lastMoved);
    this.form.version += 1;
    this.form.dirty = false;
    const stats = this.stats();
    return { changed, movedPartitions: result.movedPartitions, movedReplicas: result.movedReplicas, parts: this.parts, balance: stats.balance, dispersion: stats.dispersion, version: this.form.version };
  }

  /** Balance, dispersion and partitions per device of the current assignment. */
  stats(): RingStats {
    return ringStats(this.form.devices, this.form.replicas, this.form.part_power, this.assignment());
  }

  /** The ring file's content for the current assignment. Throws RingBuilderError before the first rebalance. */
  ringData(): RingData {
    const assignment = this.assignment();
    if (!assignment || assignment.some((row) => row.includes(UNASSIGNED))) throw new RingBuilderError('the ring has never been rebalanced (run rebalance first)');
    const devices: (RingDevice | null)[] = this.form.devices.map((d) =>
      d && !d.removed ? { id: d.id, region: d.region, zone: d.zone, ip: d.ip, port: d.port, device: d.device, weight: d.weight, meta: d.meta } : null,
    );
    return {
      part_power: this.form.part_power,
      replica_count: this.form.replicas,
      devices,
      replica2part2dev: assignment.map((row) => Array.from(row)),
      version: this.form.version,
    };
  }

  /** Writes `<ring_dir>/<kind>.ring.gz` from the current assignment; returns its path. */
  writeRing(ringDir: string, kind: RingKind): string {
    const file = ringFile(ringDir, kind);
    writeRingFile(file, this.ringData());
    return file;
  }
}

function validateDevice(spec: NewDevice): void {
  if (!Number.isInteger(spec.region) || spec.region < 0) throw new RingBuilderError(`the region must be a whole number >= 0, not ${spec.region}`);
  if (!Number.isInteger(spec.zone) || spec.zone < 0) throw new RingBuilderError(`the zone must be a whole number >= 0, not ${spec.zone}`);
  if (!spec.ip || /[\s/]/.test(spec.ip)) throw new RingBuilderError(`invalid ip or host ${JSON.stringify(spec.ip)}`);
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) throw new RingBuilderError(`the port must be from 1 to 65535, not ${spec.port}`);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(spec.device) || spec.device === '.' || spec.device === '..') {
    throw new RingBuilderError(`invalid device name ${JSON.stringify(spec.device)} (1-64 letters, digits, '.', '_' or '-')`);
  }
  checkWeight(spec.weight);
}

function checkWeight(weight: number): void {
  if (!Number.isFinite(weight) || weight < 0) throw new RingBuilderError(`the weight must be a number >= 0, not ${weight}`);
}

/** `ip:port`, with IPv6 addresses in brackets. */
export function formatAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function encodeI32(row: Int32Array): string {
  return Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('base64');
}

function decodeI32(text: string): Int32Array {
  const raw = Buffer.from(text, 'base64');
  return new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

function encodeU32(row: Uint32Array): string {
  return Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('base64');
}

function decodeU32(text: string): Uint32Array {
  const raw = Buffer.from(text, 'base64');
  return new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}
