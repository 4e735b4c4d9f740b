import fs from 'node:fs/promises';
import path from 'node:path';
import type { GuestSpec, GuestVif } from '../driver.js';

/**
 * What a guest's directory holds, and `guest.json`: what its process was
 * started with (the spec, its disks, the volumes and ports plugged into it,
 * rescue), so that recovery, power-on, resume, resize and rescue can build
 * its command line again (the role of libvirt's domain XML).
 */

/** A volume plugged into a guest (at spawn or hot-plugged), with the PCI slot it keeps across restarts. */
export interface GuestVolume {
  volumeId: string;
  /** `/dev/vdb`, ... as compute recorded it (informational: the guest names its disks itself). */
  device: string;
  connectionInfo: Record<string, unknown>;
  slot: number;
}

/** A port plugged into a guest, with its PCI slot and whether this driver made its tap. */
export interface GuestNic extends GuestVif {
  slot: number;
  tapCreated: boolean;
}

/** A base image of the cache, as a disk's backing file. */
export interface BaseImage {
  imageId: string;
  path: string;
  /** `qcow2` or `raw`. */
  format: string;
  virtualSize: number;
}

/** The content of `guest.json`. */
export interface GuestRecord {
  version: 1;
  spec: GuestSpec;
  /** The root disk: an overlay on a cached image (`disk`), or a volume. */
  root: { kind: 'image'; base: BaseImage } | { kind: 'volume'; volume: GuestVolume };
  /** Data volumes, in the order they were plugged. */
  volumes: GuestVolume[];
  nics: GuestNic[];
  /** True when `disk.config` exists and is plugged as a CD. */
  configDrive: boolean;
  /** While rescued: the rescue image, booted from an overlay (`disk.rescue`) before the guest's own disk. */
  rescue: { base: BaseImage } | null;
}

/** The files of one guest under `<instances_path>/<uuid>/`. */
export interface GuestPaths {
  dir: string;
  record: string;
  disk: string;
  ephemeral: string;
  swap: string;
  config: string;
  rescue: string;
  console: string;
  qmp: string;
  /** `qmp-ops.sock`: a second QMP socket for operators and tests (the driver holds the first). */
  monitor: string;
  pid: string;
  /** The saved memory of a suspended guest. */
  state: string;
}

/** The paths of the guest `uuid` under `instancesPath`. */
export function guestPaths(instancesPath: string, uuid: string): GuestPaths {
  const dir = path.join(instancesPath, uuid);
  return {
    dir,
    record: path.join(dir, 'guest.json'),
    disk: path.join(dir, 'disk'),
    ephemeral: path.join(dir, 'disk.eph0'),
    swap: path.join(dir, 'disk.swap'),
    config: path.join(dir, 'disk.config'),
    rescue: path.join(dir, 'disk.rescue'),
    console: path.join(dir, 'console.log'),
    qmp: path.join(dir, 'qmp.sock'),
    monitor: path.join(dir, 'qmp-ops.sock'),
    pid: path.join(dir, 'qemu.pid'),
    state: path.join(dir, 'state'),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for names of guest directories (an instance uuid); the cache (`_base`) and stray files are not. */
export function isGuestName(name: string): boolean {
  return UUID.test(name);
}

/** Reads `guest.json`; null when the guest has none (gone, or never fully made). */
export async function readRecord(paths: GuestPaths): Promise<GuestRecord | null> {
  const text = await fs.readFile(paths.record, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text) as GuestRecord;
  } catch {
    return null;
  }
}

/** Writes `guest.json` atomically (a crash leaves the old or the new one, never half). */
export async function writeRecord(paths: GuestPaths, record: GuestRecord): Promise<void> {
  const tmp = `${paths.record}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(record, null, 1), { mode: 0o600 });
  await fs.rename(tmp, paths.record);
}

/** The first PCI slot given to hot-pluggable devices; 0x2 is the VGA, 0x3-0x7 the boot disks. */
const FIRST_FREE_SLOT = 0x8;
const LAST_SLOT = 0x1f;

/** A PCI slot no volume or port of the guest uses; throws when all are taken. */
export function freeSlot(record: GuestRecord): number {
  const used = new Set([...record.volumes.map((v) => v.slot), ...record.nics.map((n) => n.slot)]);
  for (let slot = FIRST_FREE_SLOT; slot <= LAST_SLOT; slot++) if (!used.has(slot)) return slot;
  throw new Error('the guest has no free PCI slot for another device');
}
