import { createHash } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { hashPathHex } from '../common.js';
import { bodyStream, CorruptFileError, listHashes, listPartitions, listSuffixes, objectDir, openObject, quarantineHashDir, readMetadataFile, type OpenedObject } from '../storage/diskfile.js';
import { count, localDevices, type LocalDevice, type PassStats, type WorkerContext } from './context.js';
import { iterDbFiles, quarantineDb, type DbFile, type DbKind } from './db-files.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * The auditor (Swift's object, container and account auditors). Reads every
 * object of the local object devices, at most
 * `config.object.auditor_bytes_per_second`, and recomputes its MD5 and
 * length: a body that does not match the ETag and Content-Length of its
 * metadata, a file whose metadata cannot be read, or an object whose name
 * does not hash to its directory is quarantined (its hash directory moves
 * to `<device>/quarantined/objects/`, and its suffix hash is invalidated so
 * that the replicators bring a good copy back). Every account and container
 * db is opened and checked with `PRAGMA quick_check`; a broken one moves to
 * `<device>/quarantined/{accounts,containers}/` (its replicas then recreate
 * it).
 */
export async function auditorPass(ctx: WorkerContext, stats: PassStats): Promise<void> {
  const limiter = new RateLimiter(ctx.config.auditor_bytes_per_second);
  for (const dev of localDevices(ctx, 'object')) {
    for (const partition of await listPartitions(dev.dir)) {
      for (const suffix of await listSuffixes(dev.dir, partition)) {
        for (const hash of await listHashes(dev.dir, partition, suffix)) {
          if (ctx.signal.aborted) return;
          try {
            await auditObject(ctx, stats, limiter, dev, partition, hash);
          } catch (err) {
            count(stats, 'errors');
            ctx.log.error({ err, device: dev.device.device, partition, hash }, 'object audit failed');
          }
        }
      }
    }
  }
  for (const kind of ['account', 'container'] as const) {
    for (const dev of localDevices(ctx, kind)) {
      for await (const db of iterDbFiles(dev.dir, kind)) {
        if (ctx.signal.aborted) return;
        await auditDb(ctx, stats, kind, dev, db);
      }
    }
  }
}

async function auditObject(ctx: WorkerContext, stats: PassStats, limiter: RateLimiter, dev: LocalDevice, partition: number, hash: string): Promise<void> {
  const dir = objectDir(dev.dir, partition, hash);
  let reason: string | null = null;
  let opened: OpenedObject | null = null;
  try {
    const result = await openObject(dir);
    opened = result.opened;
    if (!opened) {
      // A tombstone (or nothing): its metadata must still be readable.
      if (result.state.tombstone) await readMetadataFile(path.join(dir, result.state.tombstone));
      count(stats, 'tombstones_checked');
      return;
    }
    if (opened.metaMetadata === null && opened.state.meta) reason = 'unreadable .meta file';
  } catch (err) {
    if (!(err instanceof CorruptFileError)) throw err;
    reason = err.message;
  }
  if (opened && !reason) {
    reason = await checkBody(ctx, limiter, opened, hash);
    count(stats, 'bytes', opened.length);
  }
  if (ctx.signal.aborted && reason === null) return;
  count(stats, 'checked');
  if (!reason) return;
  const to = await quarantineHashDir(dev.dir, partition, hash);
  count(stats, 'quarantined');
  ctx.log.warn({ device: dev.device.device, partition, hash, reason, to }, 'object quarantined');
}

/** Reads a body through the rate limiter; the reason it is bad, or null. Closes the file. */
async function checkBody(ctx: WorkerContext, limiter: RateLimiter, opened: OpenedObject, hash: string): Promise<string | null> {
  const metadata = opened.dataMetadata;
  const name = metadata.name ?? '';
  const parts = /^\/([^/]+)\/([^/]+)\/(.+)$/s.exec(name);
  if (!parts || hashPathHex(ctx.salt, parts[1] ?? '', parts[2] ?? '', parts[3] ?? '') !== hash) {
    await opened.handle.close();
    return `the name ${JSON.stringify(name)} does not hash to its directory`;
  }
  const md5 = createHash('md5');
  let length = 0;
  if (opened.length === 0) await opened.handle.close();
  else {
    const stream = bodyStream(opened);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        md5.update(chunk);
        length += chunk.length;
        await limiter.take(chunk.length, ctx.signal);
        if (ctx.signal.aborted) {
          stream.destroy();
          return null;
        }
      }
    } finally {
      stream.destroy();
    }
  }
  const declared = metadata['content-length'];
  if (declared !== undefined && Number(declared) !== length) return `length ${length} differs from Content-Length ${declared}`;
  const etag = md5.digest('hex');
  if ((metadata.etag ?? '').toLowerCase() !== etag) return `MD5 ${etag} differs from ETag ${metadata.etag ?? '(none)'}`;
  return null;
}

/** SQLite error codes that mean the file itself is broken (not merely busy). */
const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_VTAB', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_INDEX']);

async function auditDb(ctx: WorkerContext, stats: PassStats, kind: DbKind, dev: LocalDevice, db: DbFile): Promise<void> {
  let reason: string | null = null;
  let handle: Database.Database | null = null;
  try {
    handle = new Database(db.file, { fileMustExist: true, timeout: 5000 });
    const rows = handle.pragma('quick_check') as { quick_check: string }[];
    const result = rows.map((r) => r.quick_check).join('; ');
    if (result !== 'ok') reason = result;
    else {
      const info = handle.prepare('SELECT account, container FROM info').get() as { account: string; container: string } | undefined;
      if (!info) reason = 'no info row';
      else if (hashPathHex(ctx.salt, info.account, ...(kind === 'container' ? [info.container] : [])) !== db.hash) reason = 'the db names another account or container than its directory';
    }
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (CORRUPT_CODES.has(code) || /no such table/.test((err as Error).message)) reason = (err as Error).message;
    else {
      count(stats, 'errors');
      ctx.log.warn({ err, device: dev.device.device, file: db.file }, `${kind} db audit failed`);
      return;
    }
  } finally {
    handle?.close();
  }
  count(stats, `${kind}_dbs_checked`);
  if (!reason) return;
  const to = await quarantineDb(dev.dir, kind, db);
  count(stats, `${kind}_dbs_quarantined`);
  ctx.log.warn({ device: dev.device.device, partition: db.partition, hash: db.hash, reason, to }, `${kind} db quarantined`);
}
