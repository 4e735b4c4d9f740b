import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { ContainerBroker } from '../storage/broker.js';
import type { AsyncPendingRecord } from '../storage/updates.js';
import { count, listDir, localDevices, quorumSize, removeIfEmpty, type PassStats, type WorkerContext } from './context.js';
import { iterDbFiles } from './db-files.js';
import { directRequest, isSuccess } from './direct-client.js';

/**
 * The object updater and the container updater (Swift's `object-updater`
 * and `container-updater`).
 *
 * Object updater: replays the `async_pending` files that storage servers
 * wrote when a container (or account) server could not be told about a
 * change: `<device>/async_pending/<suffix>/<hash>-<timestamp>`. For one
 * object only the newest file counts (it carries everything the older ones
 * did: those are removed unsent). Each is sent to every primary of its
 * container (or account); the ones that took it are written back into the
 * file (`successes`), and the file is removed once all have. A file older
 * than the reclaim age is dropped (its container is long gone).
 *
 * Container updater: sends each local container db's counts and timestamps
 * to its account's primaries, when they changed since this process last
 * reported them (all of them on the first pass), as Swift's container
 * updater does with its `reported_*` columns.
 */
export async function updaterPass(ctx: WorkerContext, stats: PassStats, reported: Map<string, string>): Promise<void> {
  const dirs = new Set<string>();
  for (const kind of ['object', 'container', 'account'] as const) for (const dev of localDevices(ctx, kind)) dirs.add(dev.dir);
  for (const dir of dirs) {
    if (ctx.signal.aborted) return;
    await sweepAsyncPending(ctx, stats, dir);
  }
  for (const dev of localDevices(ctx, 'container')) {
    for await (const db of iterDbFiles(dev.dir, 'container')) {
      if (ctx.signal.aborted) return;
      try {
        await reportContainer(ctx, stats, db.file, reported);
      } catch (err) {
        count(stats, 'container_reports_failed');
        ctx.log.warn({ err, file: db.file }, 'container not reported to its account');
      }
    }
  }
}

/** An async_pending record with the primaries that already took it (Swift's `successes`, by device id). */
interface PendingFile extends AsyncPendingRecord {
  successes?: number[];
}

async function sweepAsyncPending(ctx: WorkerContext, stats: PassStats, devicePath: string): Promise<void> {
  const root = path.join(devicePath, 'async_pending');
  for (const suffix of await listDir(root)) {
    const dir = path.join(root, suffix);
    let lastHash = '';
    // Newest first: `<hash>-<timestamp>` sorted backwards groups one object's updates with the newest on top.
    for (const name of (await listDir(dir)).reverse()) {
      if (ctx.signal.aborted) return;
      const file = path.join(dir, name);
      const dash = name.indexOf('-');
      if (dash !== 32 || name.startsWith('.')) continue;
      const hash = name.slice(0, dash);
      if (hash === lastHash) {
        await fs.promises.unlink(file).catch(() => undefined);
        count(stats, 'async_obsolete');
        continue;
      }
      lastHash = hash;
      await processPending(ctx, stats, devicePath, file, name.slice(dash + 1));
    }
    await removeIfEmpty(dir);
  }
}

async function processPending(ctx: WorkerContext, stats: PassStats, devicePath: string, file: string, timestamp: string): Promise<void> {
  let record: PendingFile;
  try {
    record = JSON.parse(await fs.promises.readFile(file, 'utf8')) as PendingFile;
    if (!record || typeof record !== 'object' || typeof record.account !== 'string' || typeof record.container !== 'string' || (record.op !== 'PUT' && record.op !== 'DELETE')) throw new Error('not an update record');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    const dest = path.join(devicePath, 'quarantined', 'objects', path.basename(file));
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    await fs.promises.rename(file, dest).catch(() => undefined);
    count(stats, 'async_quarantined');
    ctx.log.warn({ file, err }, 'unreadable async_pending file quarantined');
    return;
  }
  count(stats, 'async_checked');
  const toAccount = record.target === 'account' || record.obj === undefined;
  const placement = toAccount ? ctx.rings.account.getNodes(record.account) : ctx.rings.container.getNodes(record.account, record.container);
  const successes = new Set(record.successes ?? []);
  const headers = { ...record.headers, 'user-agent': `object-updater ${process.pid}` };
  const results = await Promise.all(
    placement.nodes.map(async (node: RingDevice) => {
      if (successes.has(node.id)) return true;
      const res = await directRequest(ctx, node, {
        method: record.op,
        device: node.device,
        partition: placement.partition,
        account: record.account,
        container: record.container,
        ...(!toAccount && record.obj !== undefined ? { object: record.obj } : {}),
        headers,
      });
      if (isSuccess(res.status)) {
        successes.add(node.id);
        return true;
      }
      ctx.log.debug({ node: `${node.ip}:${node.port}/${node.device}`, status: res.status, error: res.error, account: record.account, container: record.container }, 'update not taken');
      return false;
    }),
  );
  if (results.every(Boolean)) {
    await fs.promises.unlink(file).catch(() => undefined);
    count(stats, 'async_sent');
    return;
  }
  if (isOlderThanReclaim(ctx, timestamp)) {
    await fs.promises.unlink(file).catch(() => undefined);
    count(stats, 'async_expired');
    ctx.log.warn({ file, account: record.account, container: record.container }, 'async_pending older than the reclaim age dropped unsent');
    return;
  }
  count(stats, 'async_failed');
  if (successes.size !== (record.successes ?? []).length) await rewritePending(devicePath, file, { ...record, successes: [...successes] });
}

function isOlderThanReclaim(ctx: WorkerContext, timestamp: string): boolean {
  try {
    return Timestamp.parse(timestamp).seconds < ctx.now() - ctx.reclaimAge;
  } catch {
    return false;
  }
}

/** Replaces a pending file atomically (temporary file in `<device>/tmp`, fsync, rename). */
async function rewritePending(devicePath: string, file: string, record: PendingFile): Promise<void> {
  const tmp = path.join(devicePath, 'tmp');
  await fs.promises.mkdir(tmp, { recursive: true });
  const temp = path.join(tmp, `async-${randomBytes(8).toString('hex')}`);
  const handle = await fs.promises.open(temp, 'w', 0o644);
  try {
    await handle.writeFile(JSON.stringify(record));
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, file);
}

/** Sends one container db's stats to its account's primaries when they changed since the last report. */
async function reportContainer(ctx: WorkerContext, stats: PassStats, file: string, reported: Map<string, string>): Promise<void> {
  const broker = ContainerBroker.open(file);
  let info;
  try {
    info = broker.info();
  } finally {
    broker.close();
  }
  const key = `${info.put_timestamp}/${info.delete_timestamp}/${info.object_count}/${info.bytes_used}`;
  if (reported.get(file) === key) return;
  count(stats, 'containers_checked');
  const { partition, nodes } = ctx.rings.account.getNodes(info.account);
  const headers: Record<string, string> = {
    'x-put-timestamp': info.put_timestamp,
    'x-delete-timestamp': info.delete_timestamp,
    'x-object-count': String(info.object_count),
    'x-bytes-used': String(info.bytes_used),
    'x-backend-storage-policy-index': String(info.storage_policy_index),
    'x-backend-stats-timestamp': Timestamp.now().internal,
    'x-timestamp': Timestamp.now().internal,
    'user-agent': `container-updater ${process.pid}`,
  };
  const results = await Promise.all(nodes.map((node) => directRequest(ctx, node, { method: 'PUT', device: node.device, partition, account: info.account, container: info.container, headers })));
  const ok = results.filter((r) => isSuccess(r.status)).length;
  if (results.length > 0 && results.every((r) => r.status === 404)) {
    // The account is deleted (or not there at all): nothing to tell it; the reaper removes the container.
    reported.set(file, key);
    count(stats, 'containers_account_gone');
    return;
  }
  if (ok >= quorumSize(nodes.length)) {
    reported.set(file, key);
    count(stats, 'containers_reported');
    return;
  }
  count(stats, 'container_reports_failed');
  ctx.log.warn({ account: info.account, container: info.container, statuses: results.map((r) => r.status) }, 'container counts not reported to a quorum of account servers');
}
