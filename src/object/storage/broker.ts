import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CONSTRAINTS } from '../common.js';
import { forgetDb } from './broker-cache.js';
import { listRows, type ListParams } from './listing.js';

export { BrokerCache, forgetDb } from './broker-cache.js';

/**
 * Account and container databases, as Swift's brokers: one SQLite file per
 * account or container at
 * `<device>/{accounts,containers}/<partition>/<suffix>/<hash>/<hash>.db`,
 * opened directly with better-sqlite3 (these are data files placed by the
 * ring, not a service database). WAL with `synchronous=NORMAL`: a commit
 * reaches the OS at once (it survives a crash of the process) and the disk
 * at the next checkpoint, which is what Swift's container `.pending` files
 * give too; the object data itself is fsynced before a PUT succeeds, and the
 * replicas plus the updater make listings whole again after a power loss.
 *
 * Rows are never updated in place: a newer row for a name replaces the old
 * one (DELETE + INSERT), so ROWIDs only grow and replication can ask for
 * "every row after ROWID n" (Swift's `get_items_since`/`merge_items`).
 * Deleted objects and containers stay as rows with `deleted = 1`.
 */

/** Metadata of an account or container: lower-case header name → [value, timestamp]; '' values are deletions kept for replication. */
export type DbMetadata = Record<string, [string, string]>;

/** A row of a container db (an object). Timestamps are internal-form strings. */
export interface ObjectRow {
  name: string;
  created_at: string;
  size: number;
  content_type: string;
  etag: string;
  deleted: number;
  storage_policy_index: number;
  ctype_timestamp: string;
  meta_timestamp: string;
  ROWID?: number;
}

/** A row of an account db (a container). */
export interface ContainerRow {
  name: string;
  put_timestamp: string;
  delete_timestamp: string;
  object_count: number;
  bytes_used: number;
  deleted: number;
  storage_policy_index: number;
  /** When the container server measured the counts (newest report wins). */
  stats_timestamp: string;
  ROWID?: number;
}

/** The stat row of a db (Swift's `get_info` / `get_replication_info`). */
export interface DbInfo {
  account: string;
  container: string;
  created_at: string;
  put_timestamp: string;
  delete_timestamp: string;
  status_changed_at: string;
  object_count: number;
  bytes_used: number;
  container_count: number;
  id: string;
  status: string;
  metadata: string;
  storage_policy_index: number;
}

/** What replication compares: the info and the highest ROWID. */
export interface ReplicationInfo extends DbInfo {
  max_row: number;
}

/** A sync point with another replica. */
export interface SyncPoint {
  remote_id: string;
  sync_point: number;
}

/** A 400 from metadata validation (Swift's broker raises HTTPBadRequest). */
export class MetadataError extends Error {}

const COMMON_SCHEMA = `
  CREATE TABLE info (
    account TEXT NOT NULL, container TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    put_timestamp TEXT NOT NULL DEFAULT '0', delete_timestamp TEXT NOT NULL DEFAULT '0',
    status_changed_at TEXT NOT NULL DEFAULT '0', object_count INTEGER NOT NULL DEFAULT 0,
    bytes_used INTEGER NOT NULL DEFAULT 0, container_count INTEGER NOT NULL DEFAULT 0,
    id TEXT NOT NULL, status TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}',
    storage_policy_index INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE incoming_sync (remote_id TEXT PRIMARY KEY, sync_point INTEGER NOT NULL, updated_at TEXT NOT NULL DEFAULT '0');
  CREATE TABLE outgoing_sync (remote_id TEXT PRIMARY KEY, sync_point INTEGER NOT NULL, updated_at TEXT NOT NULL DEFAULT '0');
`;

const CONTAINER_SCHEMA = `
  CREATE TABLE object (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created_at TEXT NOT NULL,
    size INTEGER NOT NULL, content_type TEXT NOT NULL, etag TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, storage_policy_index INTEGER NOT NULL DEFAULT 0,
    ctype_timestamp TEXT NOT NULL DEFAULT '', meta_timestamp TEXT NOT NULL DEFAULT ''
  );
  CREATE UNIQUE INDEX ix_object_name ON object (name);
  CREATE INDEX ix_object_deleted_name ON object (deleted, name);
  CREATE TRIGGER object_insert AFTER INSERT ON object BEGIN
    UPDATE info SET object_count = object_count + (1 - new.deleted), bytes_used = bytes_used + (1 - new.deleted) * new.size;
  END;
  CREATE TRIGGER object_delete AFTER DELETE ON object BEGIN
    UPDATE info SET object_count = object_count - (1 - old.deleted), bytes_used = bytes_used - (1 - old.deleted) * old.size;
  END;
`;

const ACCOUNT_SCHEMA = `
  CREATE TABLE container (
    ROWID INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, put_timestamp TEXT NOT NULL,
    delete_timestamp TEXT NOT NULL, object_count INTEGER NOT NULL, bytes_used INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, storage_policy_index INTEGER NOT NULL DEFAULT 0,
    stats_timestamp TEXT NOT NULL DEFAULT '0'
  );
  CREATE UNIQUE INDEX ix_container_name ON container (name);
  CREATE INDEX ix_container_deleted_name ON container (deleted, name);
  CREATE TRIGGER container_insert AFTER INSERT ON container BEGIN
    UPDATE info SET container_count = container_count + (1 - new.deleted),
      object_count = object_count + (1 - new.deleted) * new.object_count,
      bytes_used = bytes_used + (1 - new.deleted) * new.bytes_used;
  END;
  CREATE TRIGGER container_delete AFTER DELETE ON container BEGIN
    UPDATE info SET container_count = container_count - (1 - old.deleted),
      object_count = object_count - (1 - old.deleted) * old.object_count,
      bytes_used = bytes_used - (1 - old.deleted) * old.bytes_used;
  END;
`;

/** Where a db lives: `<device>/<kind>s/<partition>/<suffix>/<hash>/<hash>.db`. */
export function dbPath(devicePath: string, kind: 'account' | 'container', partition: number, hash: string): string {
  return path.join(devicePath, `${kind}s`, String(partition), hash.slice(-3), hash, `${hash}.db`);
}

/** What a new db starts with. */
export interface CreateOptions {
  account: string;
  container?: string;
  /** Its `created_at` and first `put_timestamp`. */
  timestamp: string;
  storagePolicyIndex?: number;
  /** Replication creates a db with the identity and timestamps of another replica. */
  putTimestamp?: string;
  deleteTimestamp?: string;
  metadata?: DbMetadata;
}

/** The part both brokers share: info, metadata, sync points, deletion. */
export abstract class DatabaseBroker {
  protected readonly statements = new Map<string, Database.Statement>();
  protected constructor(
    readonly db: Database.Database,
    readonly file: string,
  ) {}

  protected stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** The db's stat row. */
  info(): DbInfo {
    return this.stmt('SELECT * FROM info').get() as DbInfo;
  }

  /** The info plus the highest ROWID, for replication. */
  abstract replicationInfo(): ReplicationInfo;

  /** True when the db counts as deleted (Swift's `is_deleted`). */
  abstract isDeleted(info?: DbInfo): boolean;

  get metadata(): DbMetadata {
    return JSON.parse(this.info().metadata) as DbMetadata;
  }

  /** Merges metadata, newest timestamp per key winning; `validate` enforces Swift's count and size limits on the user metadata. Throws `MetadataError`. */
  updateMetadata(updates: DbMetadata, validate = false): void {
    if (Object.keys(updates).length === 0) return;
    this.db.transaction(() => {
      const current = this.metadata;
      let changed = false;
      for (const [key, [value, ts]] of Object.entries(updates)) {
        const old = current[key];
        if (!old || ts > old[1]) {
          current[key] = [value, ts];
          changed = true;
        }
      }
      if (!changed) return;
      if (validate) validateMetadata(current);
      this.stmt('UPDATE info SET metadata = ?').run(JSON.stringify(current));
    })();
  }

  /** Moves `put_timestamp` forward (never back). */
  updatePutTimestamp(ts: string): void {
    this.stmt('UPDATE info SET put_timestamp = ? WHERE put_timestamp < ?').run(ts, ts);
  }

  updateStatusChangedAt(ts: string): void {
    this.stmt('UPDATE info SET status_changed_at = ? WHERE status_changed_at < ?').run(ts, ts);
  }

  /** Marks the db deleted at `ts` (Swift's `delete_db`): the rows stay for replication. */
  deleteDb(ts: string): void {
    this.stmt("UPDATE info SET delete_timestamp = ?, status = 'DELETED', status_changed_at = ? WHERE delete_timestamp < ?").run(ts, ts, ts);
  }

  /** Takes the newest of each timestamp from another replica. */
  mergeTimestamps(createdAt: string, putTimestamp: string, deleteTimestamp: string): void {
    this.db.transaction(() => {
      const info = this.info();
      const wasDeleted = this.isDeleted(info);
      this.stmt('UPDATE info SET created_at = MIN(created_at, ?), put_timestamp = MAX(put_timestamp, ?), delete_timestamp = MAX(delete_timestamp, ?)').run(createdAt, putTimestamp, deleteTimestamp);
      if (this.isDeleted() !== wasDeleted) this.updateStatusChangedAt(putTimestamp > deleteTimestamp ? putTimestamp : deleteTimestamp);
    })();
  }

  /** The sync point with a remote db id (-1 when none). */
  getSync(remoteId: string, incoming = true): number {
    const row = this.stmt(`SELECT sync_point FROM ${incoming ? 'incoming' : 'outgoing'}_sync WHERE remote_id = ?`).get(remoteId) as { sync_point: number } | undefined;
    return row ? row.sync_point : -1;
  }

  /** Every sync point. */
  getSyncs(incoming = true): SyncPoint[] {
    return this.stmt(`SELECT remote_id, sync_point FROM ${incoming ? 'incoming' : 'outgoing'}_sync`).all() as SyncPoint[];
  }

  /** Merges sync points (the highest wins). */
  mergeSyncs(syncs: SyncPoint[], incoming = true): void {
    const table = incoming ? 'incoming_sync' : 'outgoing_sync';
    const upsert = this.stmt(`INSERT INTO ${table} (remote_id, sync_point, updated_at) VALUES (?, ?, ?) ON CONFLICT(remote_id) DO UPDATE SET sync_point = MAX(sync_point, excluded.sync_point), updated_at = excluded.updated_at`);
    const now = String(Date.now() / 1000);
    this.db.transaction(() => {
      for (const s of syncs) upsert.run(s.remote_id, s.sync_point, now);
    })();
  }

  /** Rows with ROWID above `start`, in ROWID order (deleted ones included). */
  abstract getItemsSince(start: number, count: number): (ObjectRow | ContainerRow)[];

  /** Merges rows of another replica; `source` (its db id) records how far this db has seen it. */
  abstract mergeItems(items: (ObjectRow | ContainerRow)[], source?: string): void;

  protected recordIncoming(source: string | undefined, items: { ROWID?: number }[]): void {
    if (!source) return;
    let max = -1;
    for (const item of items) if (item.ROWID !== undefined && item.ROWID > max) max = item.ROWID;
    if (max >= 0) this.mergeSyncs([{ remote_id: source, sync_point: max }], true);
  }

  /** Gives the db a new replication id (after it was copied whole from another replica). */
  newId(): void {
    this.stmt('UPDATE info SET id = ?').run(randomUUID());
  }

  close(): void {
    this.statements.clear();
    if (this.db.open) this.db.close();
  }
}

/** Swift's `validate_metadata`: at most 90 user metadata items and 4096 bytes of names and values. */
export function validateMetadata(metadata: DbMetadata): void {
  let count = 0;
  let size = 0;
  for (const [key, [value]] of Object.entries(metadata)) {
    if (!value) continue;
    const prefix = key.startsWith('x-account-meta-') ? 'x-account-meta-' : key.startsWith('x-container-meta-') ? 'x-container-meta-' : null;
    if (!prefix) continue;
    count += 1;
    size += key.length - prefix.length + value.length;
  }
  if (count > CONSTRAINTS.max_meta_count) throw new MetadataError(`Too many metadata items; max ${CONSTRAINTS.max_meta_count}`);
  if (size > CONSTRAINTS.max_meta_overall_size) throw new MetadataError(`Total metadata too large; max ${CONSTRAINTS.max_meta_overall_size}`);
}

function openDb(file: string): Database.Database {
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/**
 * Creates a db in `<device>/tmp`, then renames it into place, so a
 * half-initialised db is never seen. Synchronous on purpose: creations are
 * rare, and two creations of the same db in this process cannot interleave.
 * Returns false when the db already existed.
 */
function createDb(file: string, tmpDir: string, schema: string, options: CreateOptions): boolean {
  if (fs.existsSync(file)) return false;
  fs.mkdirSync(tmpDir, { recursive: true });
  const temp = path.join(tmpDir, `${randomUUID()}.db`);
  const db = new Database(temp);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(COMMON_SCHEMA + schema);
    db.prepare(
      `INSERT INTO info (account, container, created_at, put_timestamp, delete_timestamp, status_changed_at, id, metadata, storage_policy_index)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(options.account, options.container ?? '', options.timestamp, options.putTimestamp ?? options.timestamp, options.deleteTimestamp ?? '0', options.timestamp, randomUUID(), JSON.stringify(options.metadata ?? {}), options.storagePolicyIndex ?? 0);
    db.close();
    const fd = fs.openSync(temp, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    if (fs.existsSync(file)) {
      fs.rmSync(temp, { force: true });
      return false;
    }
    const dir = path.dirname(file);
    fs.mkdirSync(dir, { recursive: true });
    fs.renameSync(temp, file);
    // A handle some server of this process still holds on a db that used to be here is stale now.
    forgetDb(file);
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
    return true;
  } catch (err) {
    if (db.open) db.close();
    fs.rmSync(temp, { force: true });
    fs.rmSync(`${temp}-wal`, { force: true });
    fs.rmSync(`${temp}-shm`, { force: true });
    throw err;
  }
}

const OBJECT_COLUMNS = 'ROWID, name, created_at, size, content_type, etag, deleted, storage_policy_index, ctype_timestamp, meta_timestamp';

/** A container's db: its objects. */
export class ContainerBroker extends DatabaseBroker {
  static open(file: string): ContainerBroker {
    return new ContainerBroker(openDb(file), file);
  }

  /** Creates the db unless it exists; true when created. */
  static create(file: string, tmpDir: string, options: CreateOptions): boolean {
    return createDb(file, tmpDir, CONTAINER_SCHEMA, options);
  }

  isDeleted(info: DbInfo = this.info()): boolean {
    return info.object_count === 0 && info.delete_timestamp > info.put_timestamp;
  }

  replicationInfo(): ReplicationInfo {
    const row = this.stmt('SELECT MAX(ROWID) AS max_row FROM object').get() as { max_row: number | null };
    return { ...this.info(), max_row: row.max_row ?? -1 };
  }

  /** True when no object is listed. */
  empty(): boolean {
    return this.info().object_count === 0;
  }

  /**
   * Merges object rows in one transaction (the group commit of many
   * concurrent object updates): per name the newest data timestamp wins; a
   * newer content type (POST) or metadata timestamp is merged into it.
   */
  putObjects(rows: ObjectRow[], source?: string): void {
    const select = this.stmt(`SELECT ${OBJECT_COLUMNS} FROM object WHERE name = ?`);
    const remove = this.stmt('DELETE FROM object WHERE ROWID = ?');
    const insert = this.stmt('INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index, ctype_timestamp, meta_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const incoming of rows) {
        const existing = select.get(incoming.name) as ObjectRow | undefined;
        const merged = existing ? mergeObjectRow(existing, incoming) : incoming;
        if (!merged) continue;
        if (existing?.ROWID !== undefined) remove.run(existing.ROWID);
        insert.run(merged.name, merged.created_at, merged.size, merged.content_type, merged.etag, merged.deleted, merged.storage_policy_index, merged.ctype_timestamp || merged.created_at, merged.meta_timestamp || merged.created_at);
      }
      this.recordIncoming(source, rows);
    })();
  }

  getItemsSince(start: number, count: number): ObjectRow[] {
    return this.stmt(`SELECT ${OBJECT_COLUMNS} FROM object WHERE ROWID > ? ORDER BY ROWID LIMIT ?`).all(start, count) as ObjectRow[];
  }

  mergeItems(items: (ObjectRow | ContainerRow)[], source?: string): void {
    this.putObjects(items as ObjectRow[], source);
  }

  /** A listing page: rows `[name, created_at, size, content_type, etag]`, or `[subdir]` entries (Swift's `list_objects_iter`). */
  listObjects(params: ListParams): (ObjectRow | { subdir: string })[] {
    return listRows<ObjectRow>((sql, args) => this.stmt(sql).all(...args) as ObjectRow[], 'object', 'name, created_at, size, content_type, etag', params);
  }
}

/**
 * The merge of two rows of one object name, or null when the existing row
 * stays as it is. Data (size, ETag, deletion) comes from the newer
 * `created_at`; the content type from the newer content-type timestamp.
 */
export function mergeObjectRow(existing: ObjectRow, incoming: ObjectRow): ObjectRow | null {
  const inCtypeTs = incoming.ctype_timestamp || incoming.created_at;
  const inMetaTs = incoming.meta_timestamp || incoming.created_at;
  const exCtypeTs = existing.ctype_timestamp || existing.created_at;
  const exMetaTs = existing.meta_timestamp || existing.created_at;
  let merged: ObjectRow;
  if (incoming.created_at > existing.created_at) {
    merged = { ...incoming, ctype_timestamp: inCtypeTs, meta_timestamp: inMetaTs };
    if (!merged.deleted && !existing.deleted && exCtypeTs > inCtypeTs) {
      merged.content_type = existing.content_type;
      merged.ctype_timestamp = exCtypeTs;
    }
    if (exMetaTs > merged.meta_timestamp) merged.meta_timestamp = exMetaTs;
    return merged;
  }
  if (incoming.created_at === existing.created_at && !existing.deleted && !incoming.deleted && (inCtypeTs > exCtypeTs || inMetaTs > exMetaTs)) {
    merged = { ...existing };
    if (inCtypeTs > exCtypeTs) {
      merged.content_type = incoming.content_type;
      merged.ctype_timestamp = inCtypeTs;
    }
    if (inMetaTs > exMetaTs) merged.meta_timestamp = inMetaTs;
    return merged;
  }
  return null;
}

const CONTAINER_COLUMNS = 'ROWID, name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index, stats_timestamp';

/** An account's db: its containers. */
export class AccountBroker extends DatabaseBroker {
  static open(file: string): AccountBroker {
    return new AccountBroker(openDb(file), file);
  }

  static create(file: string, tmpDir: string, options: CreateOptions): boolean {
    return createDb(file, tmpDir, ACCOUNT_SCHEMA, options);
  }

  isDeleted(info: DbInfo = this.info()): boolean {
    return info.status === 'DELETED' || (info.container_count === 0 && info.delete_timestamp > info.put_timestamp);
  }

  /** True when an account DELETE marked it (Swift's `is_status_deleted`). */
  isStatusDeleted(info: DbInfo = this.info()): boolean {
    return info.status === 'DELETED' || info.delete_timestamp > info.put_timestamp;
  }

  replicationInfo(): ReplicationInfo {
    const row = this.stmt('SELECT MAX(ROWID) AS max_row FROM container').get() as { max_row: number | null };
    return { ...this.info(), max_row: row.max_row ?? -1 };
  }

  /** Brings the account back to life (a PUT after a delete that the reaper has not finished is refused by the server). */
  revive(ts: string): void {
    this.stmt("UPDATE info SET status = '', status_changed_at = ? WHERE status = 'DELETED'").run(ts);
  }

  /**
   * Merges container rows as Swift's account broker: the newest put and
   * delete timestamps win; the counts come from the newest report; a
   * container whose delete is newer than its put and that holds nothing is
   * deleted.
   */
  putContainers(rows: ContainerRow[], source?: string): void {
    const select = this.stmt(`SELECT ${CONTAINER_COLUMNS} FROM container WHERE name = ?`);
    const remove = this.stmt('DELETE FROM container WHERE ROWID = ?');
    const insert = this.stmt('INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index, stats_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const incoming of rows) {
        const existing = select.get(incoming.name) as ContainerRow | undefined;
        const record: ContainerRow = { ...incoming, stats_timestamp: incoming.stats_timestamp || '0' };
        if (existing) {
          if (existing.put_timestamp > record.put_timestamp) record.put_timestamp = existing.put_timestamp;
          if (existing.delete_timestamp > record.delete_timestamp) record.delete_timestamp = existing.delete_timestamp;
          if (existing.stats_timestamp > record.stats_timestamp) {
            record.object_count = existing.object_count;
            record.bytes_used = existing.bytes_used;
            record.stats_timestamp = existing.stats_timestamp;
          }
          if (
            existing.put_timestamp === record.put_timestamp &&
            existing.delete_timestamp === record.delete_timestamp &&
            existing.object_count === record.object_count &&
            existing.bytes_used === record.bytes_used &&
            existing.stats_timestamp === record.stats_timestamp
          ) {
            continue;
          }
        }
        record.deleted = record.delete_timestamp > record.put_timestamp && record.object_count === 0 ? 1 : 0;
        if (existing?.ROWID !== undefined) remove.run(existing.ROWID);
        insert.run(record.name, record.put_timestamp, record.delete_timestamp, record.object_count, record.bytes_used, record.deleted, record.storage_policy_index, record.stats_timestamp);
      }
      this.recordIncoming(source, rows);
    })();
  }

  getItemsSince(start: number, count: number): ContainerRow[] {
    return this.stmt(`SELECT ${CONTAINER_COLUMNS} FROM container WHERE ROWID > ? ORDER BY ROWID LIMIT ?`).all(start, count) as ContainerRow[];
  }

  mergeItems(items: (ObjectRow | ContainerRow)[], source?: string): void {
    this.putContainers(items as ContainerRow[], source);
  }

  /** A listing page of containers, or `{subdir}` entries. */
  listContainers(params: ListParams): (ContainerRow | { subdir: string })[] {
    return listRows<ContainerRow>((sql, args) => this.stmt(sql).all(...args) as ContainerRow[], 'container', 'name, object_count, bytes_used, put_timestamp, storage_policy_index', params);
  }
}
