import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../core/logging.js';
import { hashPathHex, type HashPathSalt } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import type { StorageClient } from './client.js';

/**
 * Updates one storage server sends another: an object server tells the
 * container servers about an object PUT/DELETE (and the expirer queue about
 * X-Delete-At), a container server tells the account servers about a
 * container. An update that fails becomes an `async_pending` file the
 * updater replays:
 * `<device>/async_pending/<suffix>/<hash>-<timestamp>`, JSON
 * `{op, account, container, obj?, headers, target}`, hash = hash of
 * `/account/container/obj` (or `/account/container` for an account update).
 * `target` is `container` (a row of an object in a container db; the updater
 * finds the container's nodes in the container ring) or `account` (a row of
 * a container in an account db: account ring). Headers are lower-case.
 */
export interface AsyncPendingRecord {
  op: 'PUT' | 'DELETE';
  account: string;
  container: string;
  /** The object of a container update; absent for an account update. */
  obj?: string;
  headers: Record<string, string>;
  target: 'container' | 'account';
}

/** Where one update goes (from `X-Container-Host`/`-Device`/`-Partition` and the like). */
export interface UpdateTarget {
  ip: string;
  port: number;
  device: string;
  partition: number;
}

/** What sending updates needs. */
export interface UpdateContext {
  client: StorageClient;
  salt: HashPathSalt;
  log: Logger;
  connTimeoutMs: number;
  nodeTimeoutMs: number;
  /** Work still running after a reply (stop() waits for it). */
  background: Set<Promise<unknown>>;
}

/** Parses comma-separated host and device lists with one partition (a mismatch gives none, as Swift logs and skips). */
export function parseTargets(hosts: string | undefined, devices: string | undefined, partition: string | undefined): UpdateTarget[] {
  if (!hosts || !devices || !partition || !/^\d+$/.test(partition.trim())) return [];
  const h = hosts.split(',').map((s) => s.trim());
  const d = devices.split(',').map((s) => s.trim());
  if (h.length !== d.length) return [];
  const out: UpdateTarget[] = [];
  for (let i = 0; i < h.length; i++) {
    const host = h[i] ?? '';
    const device = d[i] ?? '';
    const colon = host.lastIndexOf(':');
    if (colon <= 0 || !device) continue;
    const ip = host.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(host.slice(colon + 1));
    if (!Number.isInteger(port) || port <= 0) continue;
    out.push({ ip, port, device, partition: Number(partition) });
  }
  return out;
}

function ringDevice(t: UpdateTarget): RingDevice {
  return { id: -1, region: 0, zone: 0, ip: t.ip, port: t.port, device: t.device, weight: 0, meta: '' };
}

/** Sends one update; true on a 2xx. Never throws. */
export async function sendUpdate(ctx: UpdateContext, target: UpdateTarget, record: AsyncPendingRecord): Promise<boolean> {
  try {
    const res = await ctx.client.request(
      ringDevice(target),
      {
        method: record.op,
        device: target.device,
        partition: target.partition,
        account: record.account,
        container: record.container,
        ...(record.obj !== undefined ? { object: record.obj } : {}),
        headers: record.headers,
        body: null,
      },
      { connectTimeoutMs: ctx.connTimeoutMs, timeoutMs: ctx.nodeTimeoutMs },
    );
    res.body.resume();
    if (res.status >= 200 && res.status < 300) return true;
    ctx.log.warn({ status: res.status, target: `${target.ip}:${target.port}/${target.device}`, account: record.account, container: record.container }, `${record.target} update failed (saved for the updater)`);
    return false;
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, target: `${target.ip}:${target.port}/${target.device}`, account: record.account, container: record.container }, `${record.target} update failed (saved for the updater)`);
    return false;
  }
}

/**
 * Sends an update to each target, and writes an async_pending file for each
 * that fails (or for the record alone when there is no target). Waits at most
 * `waitMs` (Swift's `container_update_timeout`); updates still running go on
 * in the background and save themselves if they fail.
 */
export async function sendUpdates(ctx: UpdateContext, devicePath: string, targets: UpdateTarget[], record: AsyncPendingRecord, timestamp: string, waitMs = 1000): Promise<void> {
  if (targets.length === 0) {
    await writeAsyncPending(ctx.salt, devicePath, record, timestamp).catch((err: Error) => ctx.log.error({ err }, 'cannot write async_pending'));
    return;
  }
  let saved = false;
  const save = async (): Promise<void> => {
    if (saved) return;
    saved = true;
    await writeAsyncPending(ctx.salt, devicePath, record, timestamp).catch((err: Error) => ctx.log.error({ err }, 'cannot write async_pending'));
  };
  const all = Promise.all(
    targets.map(async (t) => {
      if (!(await sendUpdate(ctx, t, record))) await save();
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    all.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), waitMs);
    }),
  ]);
  if (timer) clearTimeout(timer);
  if (timedOut) {
    const tracked: Promise<unknown> = all.finally(() => ctx.background.delete(tracked));
    ctx.background.add(tracked);
  }
}

const madeDirs = new Set<string>();

/** Writes an async_pending file durably (temporary file, fdatasync, rename, fsync of its directory). */
export async function writeAsyncPending(salt: HashPathSalt, devicePath: string, record: AsyncPendingRecord, timestamp: string): Promise<string> {
  const hash = record.obj !== undefined ? hashPathHex(salt, record.account, record.container, record.obj) : hashPathHex(salt, record.account, record.container);
  const dir = path.join(devicePath, 'async_pending', hash.slice(-3));
  const tmp = path.join(devicePath, 'tmp');
  for (const d of [dir, tmp]) {
    if (!madeDirs.has(d)) {
      await fs.promises.mkdir(d, { recursive: true });
      madeDirs.add(d);
    }
  }
  const file = path.join(dir, `${hash}-${timestamp}`);
  const temp = path.join(tmp, `async-${randomBytes(8).toString('hex')}`);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(temp, 'w', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.promises.mkdir(tmp, { recursive: true });
    handle = await fs.promises.open(temp, 'w', 0o644);
  }
  try {
    await handle.writeFile(JSON.stringify(record));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  try {
    await fs.promises.rename(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    madeDirs.delete(dir);
    await fs.promises.mkdir(dir, { recursive: true });
    await fs.promises.rename(temp, file);
  }
  const dirHandle = await fs.promises.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return file;
}

/** The async_pending files of a device (full paths), oldest timestamp last-sorted by name. */
export async function listAsyncPending(devicePath: string): Promise<string[]> {
  const root = path.join(devicePath, 'async_pending');
  let suffixes: string[];
  try {
    suffixes = await fs.promises.readdir(root);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const s of suffixes.sort()) {
    let names: string[];
    try {
      names = await fs.promises.readdir(path.join(root, s));
    } catch {
      continue;
    }
    for (const n of names.sort()) out.push(path.join(root, s, n));
  }
  return out;
}

/** Reads one async_pending file. */
export async function readAsyncPending(file: string): Promise<AsyncPendingRecord> {
  return JSON.parse(await fs.promises.readFile(file, 'utf8')) as AsyncPendingRecord;
}
