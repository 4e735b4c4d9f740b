import { Timestamp } from '../common.js';
import type { RingDevice } from '../ring/ring.js';
import { AccountBroker, ContainerBroker, type DatabaseBroker, type DbMetadata, type ReplicationInfo } from '../storage/broker.js';
import { count, localDevices, type PassStats, type WorkerContext } from './context.js';
import { iterDbFiles, removeDbDir, type DbFile, type DbKind } from './db-files.js';
import { directRequest } from './direct-client.js';

/**
 * The account and container replicators (Swift's `db_replicator`), over the
 * storage servers' `REPLICATE` protocol for dbs (`storage/db-replicate.ts`).
 *
 * For each db of each local device: `sync` tells the peer this db's info
 * (the peer takes the newest timestamps and metadata) and learns how far the
 * peer has merged this db's rows; a peer without the db gets it created
 * whole (`create`, then every row); the rows after that point go over in
 * batches (`merge_items`), then this db's own sync points (`merge_syncs`),
 * and the peer's newer timestamps and metadata are taken here too. Rows the
 * peer has and this db lacks arrive when the peer's replicator runs.
 *
 * A db this device holds only as a handoff is pushed to every primary and
 * removed once all have it. A deleted db (an empty deleted container, an
 * account deleted and emptied by the reaper) older than `reclaimAge` is
 * removed, and so are deleted rows older than that (Swift's `reclaim`).
 * A container db's peer reports the merged counts to its account server.
 */
export async function dbReplicatorPass(ctx: WorkerContext, stats: PassStats, kind: DbKind): Promise<void> {
  for (const dev of localDevices(ctx, kind)) {
    for await (const db of iterDbFiles(dev.dir, kind)) {
      if (ctx.signal.aborted) return;
      try {
        await replicateDb(ctx, stats, kind, dev.device, db);
      } catch (err) {
        count(stats, `${kind}_failed`);
        ctx.log.error({ err, device: dev.device.device, partition: db.partition, hash: db.hash }, `${kind} db replication failed`);
      }
    }
  }
}

function openBroker(kind: DbKind, file: string): DatabaseBroker {
  return kind === 'account' ? AccountBroker.open(file) : ContainerBroker.open(file);
}

/** `now - reclaimAge` in the internal timestamp form rows and infos keep. */
function reclaimPoint(ctx: WorkerContext): string {
  return new Timestamp(Math.max(0, Math.round((ctx.now() - ctx.reclaimAge) * 1e5))).internal;
}

function olderThan(ts: string, point: string): boolean {
  try {
    return Timestamp.parse(ts).internal < point;
  } catch {
    return false;
  }
}

async function replicateDb(ctx: WorkerContext, stats: PassStats, kind: DbKind, local: RingDevice, db: DbFile): Promise<void> {
  const ring = ctx.rings[kind];
  if (db.partition >= ring.partitionCount) {
    count(stats, `${kind}_failed`);
    ctx.log.warn({ device: local.device, partition: db.partition }, `a ${kind} db in a partition beyond the ring: left alone`);
    return;
  }
  let broker: DatabaseBroker | null = openBroker(kind, db.file);
  try {
    count(stats, `${kind}_dbs`);
    const point = reclaimPoint(ctx);
    const info = broker.info();
    const deleted = kind === 'account' ? broker.isDeleted(info) && info.container_count === 0 : broker.isDeleted(info);
    if (deleted && olderThan(info.delete_timestamp, point)) {
      broker.close();
      broker = null;
      await removeDbDir(db);
      count(stats, `${kind}_reclaimed`);
      ctx.log.info({ device: local.device, partition: db.partition, account: info.account, container: info.container || undefined }, `deleted ${kind} db reclaimed`);
      return;
    }
    reclaimRows(broker, kind, point, stats);

    const primaries = ring.getPartNodes(db.partition);
    const isPrimary = primaries.some((n) => n.id === local.id);
    if (isPrimary) {
      const queue = primaries.filter((n) => n.id !== local.id);
      const handoffs = ring.getMoreNodes(db.partition).filter((n) => n.id !== local.id);
      while (queue.length) {
        if (ctx.signal.aborted) return;
        const node = queue.shift();
        if (!node) break;
        const result = await syncDb(ctx, stats, kind, broker, db, node);
        if (result === 'unmounted') {
          const next = handoffs.shift();
          if (next) queue.push(next);
        }
      }
      return;
    }
    let allDone = primaries.length > 0;
    for (const node of primaries) {
      if (ctx.signal.aborted) return;
      if ((await syncDb(ctx, stats, kind, broker, db, node)) !== 'ok') allDone = false;
    }
    if (allDone) {
      broker.close();
      broker = null;
      await removeDbDir(db);
      count(stats, `${kind}_handoffs_removed`);
      ctx.log.info({ device: local.device, partition: db.partition, account: info.account, container: info.container || undefined }, `handoff ${kind} db moved to its primaries`);
    }
  } finally {
    broker?.close();
  }
}

/** Removes deleted rows older than the reclaim age (the tombstones of objects or containers). */
function reclaimRows(broker: DatabaseBroker, kind: DbKind, point: string, stats: PassStats): void {
  const sql = kind === 'container' ? 'DELETE FROM object WHERE deleted = 1 AND created_at < ?' : 'DELETE FROM container WHERE deleted = 1 AND delete_timestamp < ?';
  const result = broker.db.prepare(sql).run(point);
  if (result.changes) count(stats, `${kind}_rows_reclaimed`, result.changes);
}

/** Rows sent per `merge_items`. */
const BATCH = 1000;

type DbReplicateAnswer = { status: number; json: Record<string, unknown> | null; error?: string };

async function replicateOp(ctx: WorkerContext, node: RingDevice, partition: number, hash: string, body: unknown): Promise<DbReplicateAnswer> {
  const res = await directRequest(ctx, node, {
    method: 'REPLICATE',
    device: node.device,
    partition,
    account: hash,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  });
  let json: Record<string, unknown> | null = null;
  if (res.status >= 200 && res.status < 300 && res.body.length) {
    try {
      json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      json = null;
    }
  }
  return { status: res.status, json, ...(res.error ? { error: res.error } : {}) };
}

/** One db with one peer: 'ok' when the peer now has every row of this db, 'unmounted' on 507. */
async function syncDb(ctx: WorkerContext, stats: PassStats, kind: DbKind, broker: DatabaseBroker, db: DbFile, node: RingDevice): Promise<'ok' | 'unmounted' | 'failed'> {
  const where = { node: `${node.ip}:${node.port}/${node.device}`, partition: db.partition, hash: db.hash };
  const info: ReplicationInfo = broker.replicationInfo();
  let answer = await replicateOp(ctx, node, db.partition, db.hash, { op: 'sync', info });
  if (answer.status === 404) {
    const created = await replicateOp(ctx, node, db.partition, db.hash, { op: 'create', info });
    if (created.status !== 201 && created.status !== 202) {
      count(stats, `${kind}_failed`);
      ctx.log.warn({ ...where, status: created.status, error: created.error }, `${kind} db not created on its peer`);
      return created.status === 507 ? 'unmounted' : 'failed';
    }
    count(stats, `${kind}_created_remote`);
    answer = await replicateOp(ctx, node, db.partition, db.hash, { op: 'sync', info });
  }
  if (answer.status === 507) {
    count(stats, `${kind}_failed`);
    ctx.log.warn(where, `peer device unmounted (507): ${kind} db goes to a handoff`);
    return 'unmounted';
  }
  const remote = answer.json as (ReplicationInfo & { point?: number }) | null;
  if (answer.status !== 200 || !remote || typeof remote.id !== 'string') {
    count(stats, `${kind}_failed`);
    ctx.log.warn({ ...where, status: answer.status, error: answer.error }, `${kind} db not replicated: peer did not answer sync`);
    return 'failed';
  }
  // What the peer knows that this db does not (timestamps, metadata) is taken here at once.
  broker.mergeTimestamps(remote.created_at, remote.put_timestamp, remote.delete_timestamp);
  const remoteMetadata = parseMetadata(remote.metadata);
  if (Object.keys(remoteMetadata).length) broker.updateMetadata(remoteMetadata);

  let point = Math.max(typeof remote.point === 'number' ? remote.point : -1, broker.getSync(remote.id, false));
  if (point >= info.max_row) {
    count(stats, `${kind}_in_sync`);
    return 'ok';
  }
  let sent = 0;
  for (;;) {
    if (ctx.signal.aborted) return 'failed';
    const items = broker.getItemsSince(point, BATCH);
    const last = items.at(-1);
    if (!last || last.ROWID === undefined) break;
    const merged = await replicateOp(ctx, node, db.partition, db.hash, { op: 'merge_items', items, source: info.id });
    if (!(merged.status >= 200 && merged.status < 300)) {
      count(stats, `${kind}_failed`);
      ctx.log.warn({ ...where, status: merged.status, error: merged.error }, `${kind} rows not replicated`);
      return merged.status === 507 ? 'unmounted' : 'failed';
    }
    sent += items.length;
    point = last.ROWID;
    if (items.length < BATCH) break;
  }
  const syncs = await replicateOp(ctx, node, db.partition, db.hash, { op: 'merge_syncs', syncs: broker.getSyncs(true) });
  if (!(syncs.status >= 200 && syncs.status < 300)) ctx.log.warn({ ...where, status: syncs.status }, 'sync points not shared (the rows were)');
  broker.mergeSyncs([{ remote_id: remote.id, sync_point: point }], false);
  count(stats, `${kind}_rows_sent`, sent);
  count(stats, `${kind}_synced`);
  return 'ok';
}

function parseMetadata(text: unknown): DbMetadata {
  if (typeof text !== 'string' || !text) return {};
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as DbMetadata) : {};
  } catch {
    return {};
  }
}
