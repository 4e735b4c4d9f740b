import fs from 'node:fs';
import path from 'node:path';
import type { StratusConfig } from '../../core/config.js';
import type { HashPathSalt } from '../common.js';
import { builderFile, RingBuilder } from './builder.js';
import { Ring, ringFile, type RingKind } from './ring.js';

/** The three rings of object storage. */
export const RING_KINDS: readonly RingKind[] = ['account', 'container', 'object'];

/** Where the ring and builder files are: `object.ring_dir`, else `<data_dir>/object/rings`. */
export function ringDir(config: StratusConfig): string {
  return path.resolve(config.object.ring_dir || path.join(config.data_dir, 'object', 'rings'));
}

/** Where this node's device directories are: `object.devices_dir`, else `<data_dir>/object/devices`. */
export function devicesDir(config: StratusConfig): string {
  return path.resolve(config.object.devices_dir || path.join(config.data_dir, 'object', 'devices'));
}

/** The port a ring's devices are served on by this node's storage server of that kind. */
export function storagePort(config: StratusConfig, kind: RingKind): number {
  const { storage } = config.object;
  switch (kind) {
    case 'account':
      return storage.account_port;
    case 'container':
      return storage.container_port;
    case 'object':
      return storage.object_port;
  }
}

/** What `ensureDefaultRings` found or made. */
export interface DefaultRings {
  ringDir: string;
  devicesDir: string;
  /** Rings this call wrote (empty when all three were there). */
  created: RingKind[];
  /** The three rings, loaded, when a salt was given. */
  rings?: Record<RingKind, Ring>;
}

/**
 * Makes sure the three rings exist. When `<ring_dir>` has none, builds them
 * from `object.default_ring` (one node: devices `d1..dN` on
 * `object.storage.host` at each kind's port, one zone each, weight 100),
 * creates `<devices_dir>/d1..dN`, then writes builder and ring files (device
 * directories first, rings last, so that an interrupted first start is
 * simply redone). A ring missing beside others is written from its builder
 * file when there is one; otherwise this throws rather than guess a layout
 * the operator did not choose. Idempotent. With a salt, also loads the rings.
 */
export function ensureDefaultRings(config: StratusConfig, salt?: HashPathSalt): DefaultRings {
  const rings = ringDir(config);
  const devices = devicesDir(config);
  const present = RING_KINDS.filter((kind) => fs.existsSync(ringFile(rings, kind)));
  const missing = RING_KINDS.filter((kind) => !present.includes(kind));
  const created: RingKind[] = [];
  if (present.length === 0) {
    const { part_power, replicas, devices: count, min_part_hours } = config.object.default_ring;
    for (let i = 1; i <= count; i += 1) fs.mkdirSync(path.join(devices, `d${i}`), { recursive: true, mode: 0o750 });
    const builders = RING_KINDS.map((kind) => {
      const builder = RingBuilder.create(part_power, replicas, min_part_hours);
      for (let i = 1; i <= count; i += 1) {
        builder.addDevice({ region: 1, zone: i, ip: config.object.storage.host, port: storagePort(config, kind), device: `d${i}`, weight: 100, meta: '' });
      }
      builder.rebalance();
      builder.save(builderFile(rings, kind));
      return { kind, builder };
    });
    for (const { kind, builder } of builders) {
      builder.writeRing(rings, kind);
      created.push(kind);
    }
  } else {
    for (const kind of missing) {
      const file = builderFile(rings, kind);
      if (!fs.existsSync(file)) {
        throw new Error(`${rings} has the ${present.join(' and ')} ring(s) but no ${kind} ring and no ${kind} builder: build it with 'stratus ring create/add/rebalance ${kind}'`);
      }
      RingBuilder.load(file).writeRing(rings, kind);
      created.push(kind);
    }
  }
  const result: DefaultRings = { ringDir: rings, devicesDir: devices, created };
  if (salt) {
    result.rings = {
      account: Ring.load(ringFile(rings, 'account'), salt),
      container: Ring.load(ringFile(rings, 'container'), salt),
      object: Ring.load(ringFile(rings, 'object'), salt),
    };
  }
  return result;
}
