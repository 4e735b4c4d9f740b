import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { hashPath, partitionOf, type HashPathSalt } from '../common.js';

/** One storage device of a ring: a directory on a storage node, served by that node's server of the ring's kind. */
export interface RingDevice {
  id: number;
  region: number;
  zone: number;
  /** Where the node's server for this ring listens. */
  ip: string;
  port: number;
  /** The device's directory name under the node's `devices_dir`. */
  device: string;
  weight: number;
  meta: string;
}

/**
 * What a ring file holds (`<kind>.ring.gz`: gzipped JSON): 2^part_power
 * partitions, each on `replica_count` devices. `replica2part2dev[r][p]` is the
 * device id of replica r of partition p. Devices removed from the ring are
 * null (ids are never reused).
 */
export interface RingData {
  part_power: number;
  replica_count: number;
  devices: (RingDevice | null)[];
  replica2part2dev: number[][];
  /** Bumped by every rebalance; nodes reload a ring whose version changed. */
  version: number;
}

export type RingKind = 'account' | 'container' | 'object';

export function ringFile(ringDir: string, kind: RingKind): string {
  return path.join(ringDir, `${kind}.ring.gz`);
}

/** On-disk form: the table as base64 of little-endian uint16s, one string per replica (a ring of 2^18 partitions stays small). */
interface RingFileForm extends Omit<RingData, 'replica2part2dev'> {
  replica2part2dev: string[];
}

export function encodeRing(data: RingData): Buffer {
  const form: RingFileForm = {
    ...data,
    replica2part2dev: data.replica2part2dev.map((row) => Buffer.from(new Uint16Array(row).buffer).toString('base64')),
  };
  return gzipSync(JSON.stringify(form));
}

export function decodeRing(bytes: Buffer): RingData {
  const form = JSON.parse(gunzipSync(bytes).toString('utf8')) as RingFileForm;
  const table = form.replica2part2dev.map((row) => {
    const raw = Buffer.from(row, 'base64');
    return Array.from(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
  });
  return { ...form, replica2part2dev: table };
}

/** Writes a ring file atomically (temporary file, fsync, rename). */
export function writeRingFile(file: string, data: RingData): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'w', 0o644);
  try {
    fs.writeSync(fd, encodeRing(data));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}

/** Where a name lives: its partition and the devices of its replicas. */
export interface Placement {
  partition: number;
  nodes: RingDevice[];
}

/**
 * Looks names up in a ring (Swift's `Ring`). The file is re-read when it
 * changes on disk (checked at most every `reloadSeconds`), so a rebalance
 * reaches running servers without a restart.
 */
export class Ring {
  private data: RingData;
  private mtimeMs = 0;
  private checkedAt = 0;

  constructor(
    data: RingData,
    private readonly salt: HashPathSalt,
    private readonly file: string | null = null,
    private readonly reloadSeconds = 15,
  ) {
    this.data = data;
  }

  static load(file: string, salt: HashPathSalt, reloadSeconds = 15): Ring {
    const ring = new Ring(decodeRing(fs.readFileSync(file)), salt, file, reloadSeconds);
    ring.mtimeMs = fs.statSync(file).mtimeMs;
    ring.checkedAt = Date.now();
    return ring;
  }

  private fresh(): RingData {
    if (this.file && Date.now() - this.checkedAt > this.reloadSeconds * 1000) {
      this.checkedAt = Date.now();
      try {
        const mtime = fs.statSync(this.file).mtimeMs;
        if (mtime !== this.mtimeMs) {
          this.data = decodeRing(fs.readFileSync(this.file));
          this.mtimeMs = mtime;
        }
      } catch {
        // Keep the ring we have while the file is being replaced or is unreadable.
      }
    }
    return this.data;
  }

  get partPower(): number {
    return this.fresh().part_power;
  }

  get partitionCount(): number {
    return 2 ** this.fresh().part_power;
  }

  get replicaCount(): number {
    return this.fresh().replica_count;
  }

  get version(): number {
    return this.fresh().version;
  }

  /** Every device in the ring (removed ones left out). */
  get devices(): RingDevice[] {
    return this.fresh().devices.filter((d): d is RingDevice => d !== null);
  }

  /** The partition of a name. */
  partition(account: string, container?: string, object?: string): number {
    return partitionOf(hashPath(this.salt, account, container, object), this.fresh().part_power);
  }

  /** The partition of a name and the primary devices of its replicas, in replica order. */
  getNodes(account: string, container?: string, object?: string): Placement {
    const partition = this.partition(account, container, object);
    return { partition, nodes: this.getPartNodes(partition) };
  }

  /** The primary devices of a partition (no device twice). */
  getPartNodes(partition: number): RingDevice[] {
    const data = this.fresh();
    const seen = new Set<number>();
    const nodes: RingDevice[] = [];
    for (const row of data.replica2part2dev) {
      const id = row[partition];
      if (id === undefined || seen.has(id)) continue;
      const device = data.devices[id];
      if (!device) continue;
      seen.add(id);
      nodes.push(device);
    }
    return nodes;
  }

  /**
   * Handoff devices of a partition, best first: those in a region, then a
   * zone, then a node not used by the primaries, then the rest; the order
   * within each group is fixed per partition, so every proxy picks the same
   * handoffs. Devices of weight 0 are never handoffs.
   */
  getMoreNodes(partition: number): RingDevice[] {
    const primaries = this.getPartNodes(partition);
    const primaryIds = new Set(primaries.map((d) => d.id));
    const regions = new Set(primaries.map((d) => d.region));
    const zones = new Set(primaries.map((d) => `${d.region}/${d.zone}`));
    const nodes = new Set(primaries.map((d) => `${d.ip}:${d.port}`));
    const rank = (d: RingDevice): number => (!regions.has(d.region) ? 0 : !zones.has(`${d.region}/${d.zone}`) ? 1 : !nodes.has(`${d.ip}:${d.port}`) ? 2 : 3);
    const order = (d: RingDevice): string => createHash('md5').update(`${partition}/${d.id}`).digest('hex');
    return this.devices
      .filter((d) => !primaryIds.has(d.id) && d.weight > 0)
      .map((d) => ({ d, rank: rank(d), key: order(d) }))
      .sort((a, b) => a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(({ d }) => d);
  }
}

/**
 * A balanced ring for tests and first starts: partition p's replica r on
 * device (p + r) mod n. With at least `replicas` devices no partition has a
 * device twice. The ring builder (`stratus ring`) makes real, weighted rings.
 */
export function simpleRing(devices: Omit<RingDevice, 'id'>[], partPower: number, replicas: number): RingData {
  const withIds = devices.map((d, id) => ({ ...d, id }));
  const count = 2 ** partPower;
  const table = Array.from({ length: replicas }, (_, r) => Array.from({ length: count }, (_, p) => (p + r) % withIds.length));
  return { part_power: partPower, replica_count: replicas, devices: withIds, replica2part2dev: table, version: 1 };
}
