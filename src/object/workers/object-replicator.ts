import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { CorruptFileError, fileTimestamp, listHashes, listPartitions, listSuffixes, loadHashDir, objectDir, POST_HEADERS, quarantineHashDir, readReplicaFiles, type ObjectMetadata, type ReplicaFiles } from '../storage/diskfile.js';
import { count, isDirectory, listDir, localDevices, removeIfEmpty, requestTimeouts, type LocalDevice, type PassStats, type WorkerContext } from './context.js';
import { directRequest, isSuccess } from './direct-client.js';

/**
 * The object replicator (Swift's `object-replicator`, with ssync's way of
 * sending objects as plain object-server requests).
 *
 * For each partition of each local object device, the suffix hashes (an MD5
 * of the file names in each `<suffix>` directory, as the object servers
 * answer `REPLICATE`) are compared with those of the other primaries; for a
 * suffix that differs, every object of it is offered to the peer: the data
 * file as a PUT with its original `X-Timestamp` and metadata (sent with
 * `Expect: 100-continue`, so a peer that has it or something newer answers
 * 409 before any byte is sent), a `.meta` as a POST, a tombstone as a
 * DELETE, all marked `X-Backend-Replication` (no container updates, past
 * `X-Delete-At` accepted). A peer never loses a newer file: the object
 * server refuses anything not newer than what it has. What a peer holds and
 * this device lacks arrives when the peer's replicator runs.
 *
 * A partition this device holds only as a handoff (it is not among the
 * partition's primaries) is pushed to every primary; once every primary has
 * answered for every object, the files that were pushed are removed here.
 *
 * The local suffix hashes come from this node's own object server (its
 * cache is what the peers see). A full pass (every `runOnce`, the first
 * scheduled pass and every tenth after) first makes that cache agree with
 * the disk, so a file lost or changed behind the server's back (a deleted
 * `.data`) is noticed; it also reclaims tombstones older than `reclaimAge`
 * and temporary files older than that.
 */
export async function objectReplicatorPass(ctx: WorkerContext, stats: PassStats, full: boolean): Promise<void> {
  const devices = localDevices(ctx, 'object');
  if (full) {
    for (const dev of devices) {
      if (ctx.signal.aborted) return;
      await cleanTmp(ctx, dev, stats);
      for (const partition of await listPartitions(dev.dir)) {
        if (ctx.signal.aborted) return;
        await refreshLocalHashes(ctx, stats, dev, partition);
      }
    }
  }
  for (const dev of devices) {
    for (const partition of await listPartitions(dev.dir)) {
      if (ctx.signal.aborted) return;
      try {
        await replicatePartition(ctx, stats, dev, partition);
      } catch (err) {
        count(stats, 'failed');
        ctx.log.error({ err, device: dev.device.device, partition }, 'object partition replication failed');
      }
    }
  }
}

/** Suffix hashes as an object server answers REPLICATE (null: unreachable or an error status; 507 is reported apart). */
type HashesResult = { status: 'ok'; hashes: Record<string, string> } | { status: 'unmounted' } | { status: 'failed'; reason: string };

/** Asks a device's object server for its suffix hashes, recalculating `suffixes` first (sent in groups, so the path stays short). */
async function getRemoteHashes(ctx: WorkerContext, node: RingDevice, partition: number, suffixes: string[] = []): Promise<HashesResult> {
  const groups: string[][] = [];
  for (let i = 0; i < suffixes.length; i += 400) groups.push(suffixes.slice(i, i + 400));
  if (groups.length === 0) groups.push([]);
  let result: HashesResult = { status: 'failed', reason: 'no request' };
  for (const group of groups) {
    const res = await directRequest(ctx, node, { method: 'REPLICATE', device: node.device, partition, account: group.join('-'), headers: {} });
    if (res.status === 507) return { status: 'unmounted' };
    if (res.status !== 200) return { status: 'failed', reason: res.error ?? `status ${res.status}` };
    try {
      const parsed = JSON.parse(res.body.toString('utf8')) as Record<string, string | null>;
      const hashes: Record<string, string> = {};
      for (const [suffix, hash] of Object.entries(parsed)) if (typeof hash === 'string') hashes[suffix] = hash;
      result = { status: 'ok', hashes };
    } catch {
      return { status: 'failed', reason: 'REPLICATE answer is not JSON' };
    }
  }
  return result;
}

/**
 * Makes the local object server's suffix hashes of a partition agree with
 * the disk: reclaims old tombstones, then has the server recompute every
 * suffix it caches or the disk holds.
 */
async function refreshLocalHashes(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number): Promise<void> {
  const reclaimBefore = ctx.now() - ctx.reclaimAge;
  for (const suffix of await listSuffixes(dev.dir, partition)) {
    for (const hash of await listHashes(dev.dir, partition, suffix)) {
      const state = await loadHashDir(objectDir(dev.dir, partition, hash));
      if (!state.tombstone || state.data) continue;
      let seconds: number;
      try {
        seconds = Timestamp.parse(fileTimestamp(state.tombstone)).seconds;
      } catch {
        continue;
      }
      if (seconds >= reclaimBefore) continue;
      for (const name of state.files) await fs.promises.unlink(path.join(state.dir, name)).catch(() => undefined);
      await removeIfEmpty(state.dir);
      count(stats, 'tombstones_reclaimed');
    }
    await removeIfEmpty(path.join(dev.dir, 'objects', String(partition), suffix));
  }
  const cached = await getRemoteHashes(ctx, dev.device, partition);
  if (cached.status !== 'ok') {
    count(stats, 'failed');
    ctx.log.warn({ device: dev.device.device, partition, reason: cached.status === 'failed' ? cached.reason : 'unmounted' }, 'cannot read the local object server suffix hashes');
    return;
  }
  const suffixes = new Set([...Object.keys(cached.hashes), ...(await listSuffixes(dev.dir, partition))]);
  if (suffixes.size) await getRemoteHashes(ctx, dev.device, partition, [...suffixes]);
  await removeIfEmpty(path.join(dev.dir, 'objects', String(partition)));
}

/** Removes temporary files of a device older than the reclaim age (uploads that died with their process). */
async function cleanTmp(ctx: WorkerContext, dev: LocalDevice, stats: PassStats): Promise<void> {
  const tmp = path.join(dev.dir, 'tmp');
  const before = (ctx.now() - ctx.reclaimAge) * 1000;
  for (const name of await listDir(tmp)) {
    try {
      const stat = await fs.promises.stat(path.join(tmp, name));
      if (stat.isFile() && stat.mtimeMs < before) {
        await fs.promises.unlink(path.join(tmp, name));
        count(stats, 'tmp_removed');
      }
    } catch {
      // Gone meanwhile (renamed into place).
    }
  }
}

async function replicatePartition(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number): Promise<void> {
  const ring = ctx.rings.object;
  const partDir = path.join(dev.dir, 'objects', String(partition));
  if (!isDirectory(partDir)) return;
  if (partition >= ring.partitionCount) {
    count(stats, 'failed');
    ctx.log.warn({ device: dev.device.device, partition }, 'a partition beyond the ring: left alone');
    return;
  }
  const primaries = ring.getPartNodes(partition);
  const isPrimary = primaries.some((n) => n.id === dev.device.id);
  count(stats, 'partitions');
  const local = await getRemoteHashes(ctx, dev.device, partition);
  if (local.status !== 'ok') {
    count(stats, 'failed');
    ctx.log.warn({ device: dev.device.device, partition, reason: local.status === 'failed' ? local.reason : 'unmounted' }, 'cannot read the local object server suffix hashes');
    return;
  }
  if (isPrimary) {
    await syncPrimary(ctx, stats, dev, partition, local.hashes, primaries);
  } else {
    await revertHandoff(ctx, stats, dev, partition, local.hashes, primaries);
  }
}

/** A primary's partition: brought to each other primary (a primary whose device is missing, 507, is replaced by a handoff, as Swift does). */
async function syncPrimary(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number, localHashes: Record<string, string>, primaries: RingDevice[]): Promise<void> {
  const queue = primaries.filter((n) => n.id !== dev.device.id);
  const handoffs = ctx.rings.object.getMoreNodes(partition).filter((n) => n.id !== dev.device.id);
  while (queue.length) {
    if (ctx.signal.aborted) return;
    const node = queue.shift();
    if (!node) break;
    const result = await syncWithNode(ctx, stats, dev, partition, localHashes, node);
    if (result === 'unmounted') {
      const next = handoffs.shift();
      if (next) queue.push(next);
    }
  }
}

/** A handoff partition: pushed to every primary, then the pushed files are removed here if every primary took them. */
async function revertHandoff(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number, localHashes: Record<string, string>, primaries: RingDevice[]): Promise<void> {
  if (primaries.length === 0) return;
  // What is here now: only these files are removed at the end (a write that lands meanwhile stays for the next pass).
  const snapshot = new Map<string, string[]>();
  for (const suffix of await listSuffixes(dev.dir, partition)) {
    for (const hash of await listHashes(dev.dir, partition, suffix)) snapshot.set(hash, (await loadHashDir(objectDir(dev.dir, partition, hash))).files);
  }
  let allDone = true;
  for (const node of primaries) {
    if (ctx.signal.aborted) return;
    const result = await syncWithNode(ctx, stats, dev, partition, localHashes, node);
    if (result !== 'ok') allDone = false;
  }
  if (!allDone) {
    ctx.log.info({ device: dev.device.device, partition }, 'handoff partition kept: not every primary has it yet');
    return;
  }
  const touched = new Set<string>();
  for (const [hash, files] of snapshot) {
    const dir = objectDir(dev.dir, partition, hash);
    for (const name of files) await fs.promises.unlink(path.join(dir, name)).catch(() => undefined);
    await removeIfEmpty(dir);
    await removeIfEmpty(path.dirname(dir));
    touched.add(hash.slice(-3));
    count(stats, 'handoffs_removed');
  }
  await removeIfEmpty(path.join(dev.dir, 'objects', String(partition)));
  // The local server's cache still names the removed suffixes: have it look again.
  if (touched.size) await getRemoteHashes(ctx, dev.device, partition, [...touched]);
  ctx.log.info({ device: dev.device.device, partition, objects: snapshot.size }, 'handoff partition moved to its primaries');
}

/**
 * Compares suffix hashes with one node and sends it every object of the
 * suffixes that differ. 'ok' when the node now has all of them (or newer),
 * 'unmounted' on 507, 'failed' otherwise.
 */
async function syncWithNode(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number, localHashes: Record<string, string>, node: RingDevice): Promise<'ok' | 'unmounted' | 'failed'> {
  const remote = await getRemoteHashes(ctx, node, partition);
  if (remote.status === 'unmounted') {
    count(stats, 'failed');
    ctx.log.warn({ node: `${node.ip}:${node.port}/${node.device}`, partition }, 'peer device unmounted (507): trying a handoff');
    return 'unmounted';
  }
  if (remote.status === 'failed') {
    count(stats, 'failed');
    ctx.log.warn({ node: `${node.ip}:${node.port}/${node.device}`, partition, reason: remote.reason }, 'peer unreachable: partition not replicated to it');
    return 'failed';
  }
  const suffixes = Object.keys(localHashes).filter((s) => remote.hashes[s] !== localHashes[s]);
  if (suffixes.length === 0) {
    count(stats, 'in_sync');
    return 'ok';
  }
  let ok = true;
  for (const suffix of suffixes) {
    for (const hash of await listHashes(dev.dir, partition, suffix)) {
      if (ctx.signal.aborted) return 'failed';
      if (!(await sendObject(ctx, stats, dev, partition, hash, node))) ok = false;
    }
  }
  // The peer's server invalidated what it wrote; asking it to recompute these suffixes also covers a cache that went stale.
  await getRemoteHashes(ctx, node, partition, suffixes);
  count(stats, 'suffixes_synced', suffixes.length);
  return ok ? 'ok' : 'failed';
}

/** Metadata keys that a PUT sets from its own request, not as headers to copy. */
const RESERVED = new Set(['name', 'x-timestamp', 'content-length', 'etag']);

/** Whether the object server stores a header of a PUT (or POST) without being told to (`x-backend-replication-headers` names the others). */
function storedByServer(key: string, post: boolean): boolean {
  if (key.startsWith('x-object-meta-') || key.startsWith('x-object-transient-sysmeta-') || POST_HEADERS.has(key)) return true;
  if (post) return key === 'content-type' || key === 'content-type-timestamp';
  return key === 'content-type' || key.startsWith('x-object-sysmeta-');
}

/** Request headers that carry a file's metadata to a peer, with the list of those the server would not keep by itself. */
function metadataHeaders(metadata: ObjectMetadata, post: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  const extra: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    if (RESERVED.has(key) || typeof value !== 'string') continue;
    headers[key] = value;
    if (!storedByServer(key, post)) extra.push(key);
  }
  if (extra.length) headers['x-backend-replication-headers'] = extra.join(' ');
  return headers;
}

/** `/a/c/o` → its parts (the object keeps its slashes). */
function splitName(name: string | undefined): { account: string; container: string; object: string } | null {
  if (!name || !name.startsWith('/')) return null;
  const first = name.indexOf('/', 1);
  const second = first < 0 ? -1 : name.indexOf('/', first + 1);
  if (first < 0 || second < 0) return null;
  const account = name.slice(1, first);
  const container = name.slice(first + 1, second);
  const object = name.slice(second + 1);
  if (!account || !container || !object) return null;
  return { account, container, object };
}

/**
 * Offers one object's current files to a node. True when the node has them
 * now (or has something newer). A local file that turns out to be corrupt
 * is quarantined (and not sent).
 */
async function sendObject(ctx: WorkerContext, stats: PassStats, dev: LocalDevice, partition: number, hash: string, node: RingDevice): Promise<boolean> {
  let files: ReplicaFiles;
  try {
    files = await readReplicaFiles(dev.dir, partition, hash);
  } catch (err) {
    if (err instanceof CorruptFileError) {
      await quarantineHashDir(dev.dir, partition, hash);
      count(stats, 'quarantined');
      ctx.log.warn({ device: dev.device.device, partition, hash, reason: err.message }, 'unreadable object quarantined by the replicator');
      return true;
    }
    throw err;
  }
  const where = { node: `${node.ip}:${node.port}/${node.device}`, partition, hash };
  try {
    if (files.tombstone) {
      const names = splitName(files.tombstone.metadata.name);
      if (!names) return true;
      const res = await directRequest(ctx, node, {
        method: 'DELETE',
        device: node.device,
        partition,
        ...names,
        headers: { 'x-timestamp': fileTimestamp(files.tombstone.name), 'x-backend-replication': 'true' },
      });
      if (isSuccess(res.status) || res.status === 404 || res.status === 409) {
        if (isSuccess(res.status) || res.status === 404) count(stats, 'deletes_sent');
        return true;
      }
      count(stats, 'failed');
      ctx.log.warn({ ...where, status: res.status, error: res.error }, 'tombstone not replicated');
      return false;
    }
    if (!files.data) return true;
    const names = splitName(files.data.metadata.name);
    if (!names) {
      await quarantineHashDir(dev.dir, partition, hash);
      count(stats, 'quarantined');
      ctx.log.warn({ device: dev.device.device, partition, hash }, 'object without a valid name quarantined by the replicator');
      return true;
    }
    if (!(await sendData(ctx, stats, dev, partition, hash, node, files, names))) return false;
    if (files.meta) return await sendMeta(ctx, stats, node, partition, files.meta, names);
    return true;
  } catch (err) {
    count(stats, 'failed');
    ctx.log.warn({ ...where, err }, 'object not replicated');
    return false;
  }
}

async function sendData(
  ctx: WorkerContext,
  stats: PassStats,
  dev: LocalDevice,
  partition: number,
  hash: string,
  node: RingDevice,
  files: ReplicaFiles,
  names: { account: string; container: string; object: string },
): Promise<boolean> {
  const data = files.data;
  if (!data) return true;
  const body: Readable = await data.open();
  const timestamp = data.metadata['x-timestamp'] ?? fileTimestamp(data.name);
  const headers: Record<string, string> = {
    ...metadataHeaders(data.metadata, false),
    'x-timestamp': timestamp,
    'x-backend-replication': 'true',
    'content-length': String(data.length),
    expect: '100-continue',
  };
  if (data.metadata.etag) headers.etag = data.metadata.etag;
  if (!headers['content-type']) headers['content-type'] = 'application/octet-stream';
  let status: number;
  let error: string | undefined;
  try {
    const res = await ctx.storage.request(node, { method: 'PUT', device: node.device, partition, ...names, headers, body }, requestTimeouts(ctx));
    status = res.status;
    res.body.resume();
  } catch (err) {
    status = 0;
    error = err instanceof Error ? err.message : String(err);
  } finally {
    // A peer that had it answered before asking for the body: stop reading the file.
    body.destroy();
  }
  if (status === 201) {
    count(stats, 'objects_sent');
    return true;
  }
  if (status === 409) return true;
  if (status === 422) {
    // The bytes here no longer match their ETag: this copy is the bad one.
    await quarantineHashDir(dev.dir, partition, hash);
    count(stats, 'quarantined');
    ctx.log.warn({ device: dev.device.device, partition, hash }, 'object whose body does not match its ETag quarantined by the replicator');
    return true;
  }
  count(stats, 'failed');
  ctx.log.warn({ node: `${node.ip}:${node.port}/${node.device}`, partition, hash, status, error }, 'object not replicated');
  return false;
}

async function sendMeta(ctx: WorkerContext, stats: PassStats, node: RingDevice, partition: number, meta: NonNullable<ReplicaFiles['meta']>, names: { account: string; container: string; object: string }): Promise<boolean> {
  const headers: Record<string, string> = {
    ...metadataHeaders(meta.metadata, true),
    'x-timestamp': meta.metadata['x-timestamp'] ?? fileTimestamp(meta.name),
    'x-backend-replication': 'true',
  };
  const res = await directRequest(ctx, node, { method: 'POST', device: node.device, partition, ...names, headers });
  if (res.status === 202) count(stats, 'metadata_sent');
  // 409: the peer's metadata is as new or newer; 404: the peer has a newer tombstone.
  if (res.status === 202 || res.status === 409 || res.status === 404) return true;
  count(stats, 'failed');
  ctx.log.warn({ node: `${node.ip}:${node.port}/${node.device}`, partition, status: res.status, error: res.error }, 'object metadata not replicated');
  return false;
}
