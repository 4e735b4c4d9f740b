import fs from 'node:fs';
import path from 'node:path';
import type { ObjectConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HashPathSalt } from '../common.js';
import type { Handler } from '../proxy/pipeline.js';
import type { Ring, RingDevice, RingKind } from '../ring/ring.js';
import type { StorageClient } from '../storage/client.js';

/** Seconds after which tombstones (object `.ts` files, deleted db rows, deleted dbs) are reclaimed: Swift's `reclaim_age`, a week. */
export const RECLAIM_AGE_SECONDS = 7 * 86400;

/** The three rings of a cluster. */
export interface Rings {
  account: Ring;
  container: Ring;
  object: Ring;
}

/** Counters of one pass, by what happened (`checked`, `repaired`, `failed`, ...); logged at the end of the pass. */
export type PassStats = Record<string, number>;

/** Adds `n` to a counter of a pass. */
export function count(stats: PassStats, key: string, n = 1): void {
  stats[key] = (stats[key] ?? 0) + n;
}

/** What every worker pass uses: the cluster's rings and storage client, and this node's identity in the rings. */
export interface WorkerContext {
  config: ObjectConfig;
  salt: HashPathSalt;
  rings: Rings;
  storage: StorageClient;
  devicesDir: string;
  log: Logger;
  /** Aborted by `stop()`: a pass checks it between items and ends early. */
  signal: AbortSignal;
  /** The proxy app without auth, when the workers run in the proxy's process (unused by the passes: they talk to the storage servers directly). */
  internal?: Handler;
  /** Seconds after which tombstones are reclaimed (tests shorten it). */
  reclaimAge: number;
  /** Seconds since the epoch: the workers' clock (tests move it). */
  now(): number;
}

/** Per-request timeouts of storage requests made by workers (`node_timeout`, `conn_timeout`). */
export function requestTimeouts(ctx: WorkerContext): { connectTimeoutMs: number; timeoutMs: number } {
  return { connectTimeoutMs: ctx.config.conn_timeout * 1000, timeoutMs: ctx.config.node_timeout * 1000 };
}

/** Whether a ring device is served by this node's server of the ring's kind. */
export function isLocalDevice(config: ObjectConfig, kind: RingKind, device: RingDevice): boolean {
  const { host } = config.storage;
  const port = kind === 'object' ? config.storage.object_port : kind === 'container' ? config.storage.container_port : config.storage.account_port;
  return device.ip === host && device.port === port;
}

/** A device of a ring that this node serves, with its directory (which exists). */
export interface LocalDevice {
  device: RingDevice;
  dir: string;
}

/**
 * This node's devices of a ring (those whose ip:port are this node's storage
 * host and the ring kind's port) whose directory exists under `devicesDir`.
 * A device whose directory is missing is skipped with a warning, as Swift
 * skips an unmounted drive.
 */
export function localDevices(ctx: WorkerContext, kind: RingKind): LocalDevice[] {
  const result: LocalDevice[] = [];
  const seen = new Set<string>();
  for (const device of ctx.rings[kind].devices) {
    if (!isLocalDevice(ctx.config, kind, device) || seen.has(device.device)) continue;
    seen.add(device.device);
    const dir = path.join(ctx.devicesDir, device.device);
    if (!isDirectory(dir)) {
      ctx.log.warn({ ring: kind, device: device.device }, 'skipping device: its directory is missing');
      continue;
    }
    result.push({ device, dir });
  }
  return result;
}

/** True when the path is an existing directory. */
export function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The entries of a directory, sorted; empty when it does not exist (or is not a directory). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fs.promises.readdir(dir)).sort();
  } catch {
    return [];
  }
}

/** Removes a directory when it is empty; ignores every error (it may have been refilled meanwhile). */
export async function removeIfEmpty(dir: string): Promise<void> {
  try {
    await fs.promises.rmdir(dir);
  } catch {
    // Not empty, or gone: both fine.
  }
}

/** Swift's write quorum for n replicas. */
export function quorumSize(replicas: number): number {
  return Math.floor(replicas / 2) + 1;
}
