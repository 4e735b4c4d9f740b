import type http from 'node:http';
import path from 'node:path';
import { CONSTRAINTS, hashPathHex, Timestamp, type HashPathSalt } from '../common.js';
import { BrokerCache } from './broker-cache.js';
import { ContainerBroker, dbPath, MetadataError, type DbInfo, type DbMetadata, type ObjectRow } from './broker.js';
import { handleDbReplicate } from './db-replicate.js';
import { listingContentType, objectEntry, parseListParams, renderListing } from './listing.js';
import type { StorageHandler } from './object-server.js';
import { checkMetadata, errorResponse, header, insufficientStorage, isTrue, readSmallBody, requiredTimestamp, type DeviceChecker, type ServerResponse, type StoragePath } from './server-util.js';
import { parseTargets, writeAsyncPending, type AsyncPendingRecord, type UpdateContext, type UpdateTarget } from './updates.js';

/**
 * Swift's container server: containers (PUT, HEAD, GET listings, POST,
 * DELETE) and their object rows (PUT/DELETE of
 * `/<device>/<partition>/<account>/<container>/<object>` from object
 * servers), with account updates. Object rows that arrive together are
 * committed in one transaction per container (group commit) before any of
 * them is answered.
 */
export interface ContainerServerOptions {
  devices: DeviceChecker;
  salt: HashPathSalt;
  updates: UpdateContext;
  /**
   * Where a container's account row lives, for the account updates that
   * follow object changes: the account servers to tell (empty: none known).
   */
  accountTargets?: (account: string, device: string, partition: number) => UpdateTarget[];
  /** Delay before object changes are reported to the account (they are batched per container). */
  reportDelayMs?: number;
  /** Open dbs kept. */
  maxOpenDbs?: number;
  /** How long an open db is trusted to still be the file at its path before one `stat` checks (ms; see broker-cache.ts). */
  dbCheckIntervalMs?: number;
}

/** The container server's handler and what its owner needs. */
export interface ContainerServer {
  handle: StorageHandler;
  brokers: BrokerCache<ContainerBroker>;
  /** Sends pending account reports now and waits for them. */
  flushReports(): Promise<void>;
  close(): void;
}

/** Headers a container keeps as metadata besides `x-container-meta-*` and sysmeta (Swift's `save_headers`, plus versioning's). */
const SAVE_HEADERS = new Set(['x-container-read', 'x-container-write', 'x-container-sync-key', 'x-container-sync-to', 'x-versions-location', 'x-history-location']);

function isSavedHeader(key: string): boolean {
  return SAVE_HEADERS.has(key) || key.startsWith('x-container-meta-') || key.startsWith('x-container-sysmeta-');
}

interface PendingBatch {
  broker: ContainerBroker;
  rows: ObjectRow[];
  waiters: { resolve: () => void; reject: (err: Error) => void }[];
}

interface DirtyContainer {
  account: string;
  container: string;
  device: string;
  devicePath: string;
  partition: number;
  file: string;
}

/** Creates the container server. */
export function createContainerServer(options: ContainerServerOptions): ContainerServer {
  const { devices, salt, updates } = options;
  const brokers = new BrokerCache<ContainerBroker>((file) => ContainerBroker.open(file), options.maxOpenDbs ?? 256, options.dbCheckIntervalMs);
  const reportDelayMs = options.reportDelayMs ?? 100;

  // ---- group commit of object rows ----
  const pending = new Map<string, PendingBatch>();
  let flushScheduled = false;
  function flush(): void {
    flushScheduled = false;
    const batches = [...pending.values()];
    pending.clear();
    for (const batch of batches) {
      try {
        // The handle may have been evicted from the cache since the rows were queued.
        const broker = batch.broker.db.open ? batch.broker : brokers.get(batch.broker.file);
        if (!broker) throw new Error(`container db ${batch.broker.file} is gone`);
        broker.putObjects(batch.rows);
        for (const w of batch.waiters) w.resolve();
      } catch (err) {
        for (const w of batch.waiters) w.reject(err as Error);
      }
    }
  }
  function enqueue(broker: ContainerBroker, row: ObjectRow): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = pending.get(broker.file);
      if (!batch) pending.set(broker.file, (batch = { broker, rows: [], waiters: [] }));
      batch.rows.push(row);
      batch.waiters.push({ resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
  }

  // ---- account reports after object changes (batched per container) ----
  const dirty = new Map<string, DirtyContainer>();
  const inFlight = new Map<string, Promise<void>>();
  let reportTimer: NodeJS.Timeout | null = null;
  function markDirty(d: DirtyContainer): void {
    if (!options.accountTargets) return;
    dirty.set(d.file, d);
    if (!reportTimer) reportTimer = setTimeout(() => void sendReports(), reportDelayMs);
  }
  async function sendReports(): Promise<void> {
    reportTimer = null;
    const work: Promise<void>[] = [];
    for (const [file, d] of dirty) {
      if (inFlight.has(file)) continue;
      dirty.delete(file);
      const p = reportOne(d).finally(() => {
        inFlight.delete(file);
        if (dirty.size && !reportTimer) reportTimer = setTimeout(() => void sendReports(), reportDelayMs);
      });
      inFlight.set(file, p);
      work.push(p);
    }
    const all = Promise.all(work);
    const tracked: Promise<unknown> = all.finally(() => updates.background.delete(tracked));
    updates.background.add(tracked);
    await all;
  }
  async function reportOne(d: DirtyContainer): Promise<void> {
    const broker = brokers.get(d.file);
    if (!broker || !options.accountTargets) return;
    const targets = options.accountTargets(d.account, d.device, d.partition);
    await reportToAccount(d, broker.info(), targets, Timestamp.now().internal);
  }
  /** Sends the container's row to the account servers; true when none answered 404 for all. */
  async function reportToAccount(d: Pick<DirtyContainer, 'account' | 'container' | 'devicePath'>, info: DbInfo, targets: UpdateTarget[], statsTs: string, extra: Record<string, string> = {}): Promise<{ all404: boolean }> {
    const record: AsyncPendingRecord = {
      op: 'PUT',
      account: d.account,
      container: d.container,
      headers: {
        'x-put-timestamp': info.put_timestamp,
        'x-delete-timestamp': info.delete_timestamp,
        'x-object-count': String(info.object_count),
        'x-bytes-used': String(info.bytes_used),
        'x-backend-storage-policy-index': String(info.storage_policy_index),
        'x-backend-stats-timestamp': statsTs,
        'user-agent': `container-server ${process.pid}`,
        ...extra,
      },
      target: 'account',
    };
    let notFound = 0;
    let failed = false;
    await Promise.all(
      targets.map(async (t) => {
        try {
          const res = await updates.client.request(
            { id: -1, region: 0, zone: 0, ip: t.ip, port: t.port, device: t.device, weight: 0, meta: '' },
            { method: 'PUT', device: t.device, partition: t.partition, account: d.account, container: d.container, headers: record.headers, body: null },
            { connectTimeoutMs: updates.connTimeoutMs, timeoutMs: updates.nodeTimeoutMs },
          );
          res.body.resume();
          if (res.status === 404) notFound += 1;
          else if (res.status < 200 || res.status >= 300) failed = true;
        } catch {
          failed = true;
        }
      }),
    );
    if (failed) {
      updates.log.warn({ account: d.account, container: d.container }, 'account update failed (saved for the updater)');
      await writeAsyncPending(salt, d.devicePath, record, statsTs).catch((err: Error) => updates.log.error({ err }, 'cannot write async_pending'));
    }
    return { all404: targets.length > 0 && notFound === targets.length };
  }

  // ---- helpers ----
  function dbFile(devicePath: string, partition: number, account: string, container: string): string {
    return dbPath(devicePath, 'container', partition, hashPathHex(salt, account, container));
  }
  function tmpDir(devicePath: string): string {
    return path.join(devicePath, 'tmp');
  }
  function respHeaders(info: DbInfo | null, deleted: boolean): Record<string, string | number> {
    const internal = (value: string | undefined): string => Timestamp.parse(value ?? '0').internal;
    const out: Record<string, string | number> = {
      'x-backend-timestamp': internal(info?.created_at),
      'x-backend-put-timestamp': internal(info?.put_timestamp),
      'x-backend-delete-timestamp': internal(info?.delete_timestamp),
      'x-backend-status-changed-at': internal(info?.status_changed_at),
      'x-backend-storage-policy-index': info?.storage_policy_index ?? 0,
    };
    if (info && !deleted) {
      out['x-container-object-count'] = info.object_count;
      out['x-container-bytes-used'] = info.bytes_used;
      out['x-timestamp'] = Timestamp.parse(info.created_at).normal;
      out['x-put-timestamp'] = Timestamp.parse(info.put_timestamp).normal;
      out['x-backend-sharding-state'] = 'unsharded';
    }
    return out;
  }
  function metadataHeaders(out: Record<string, string | number>, metadata: DbMetadata): void {
    for (const [k, [v]] of Object.entries(metadata)) if (v !== '' && isSavedHeader(k)) out[k] = v;
  }
  function requestMetadata(req: http.IncomingMessage, ts: Timestamp): DbMetadata {
    const md: DbMetadata = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && isSavedHeader(k)) md[k] = [v, ts.internal];
    return md;
  }
  function autocreate(account: string, req: http.IncomingMessage): boolean {
    const given = header(req.headers, 'x-backend-auto-create');
    if (given !== undefined) return isTrue(given);
    return account.startsWith('.');
  }

  async function objectRow(req: http.IncomingMessage, target: StoragePath, devicePath: string, ts: Timestamp, deleted: boolean): Promise<ServerResponse> {
    const account = target.account ?? '';
    const container = target.container ?? '';
    const file = dbFile(devicePath, target.partition, account, container);
    let broker = brokers.get(file);
    if (!broker && autocreate(account, req)) {
      ContainerBroker.create(file, tmpDir(devicePath), { account, container, timestamp: ts.normal, storagePolicyIndex: Number(header(req.headers, 'x-backend-storage-policy-index') ?? 0) || 0 });
      broker = brokers.get(file);
    }
    if (!broker) return errorResponse(404);
    let row: ObjectRow;
    if (deleted) {
      row = { name: target.object ?? '', created_at: ts.internal, size: 0, content_type: '', etag: '', deleted: 1, storage_policy_index: 0, ctype_timestamp: ts.internal, meta_timestamp: ts.internal };
    } else {
      const size = header(req.headers, 'x-size');
      const ctype = header(req.headers, 'x-content-type');
      const etag = header(req.headers, 'x-etag');
      if (size === undefined || !/^\d+$/.test(size) || ctype === undefined || etag === undefined) return errorResponse(400, 'Missing X-Size, X-Content-Type or X-Etag header');
      let ctypeTs = ts.internal;
      let metaTs = ts.internal;
      try {
        const c = header(req.headers, 'x-content-type-timestamp');
        if (c) ctypeTs = Timestamp.parse(c).internal;
        const m = header(req.headers, 'x-meta-timestamp');
        if (m) metaTs = Timestamp.parse(m).internal;
      } catch {
        return errorResponse(400, 'Invalid timestamp header');
      }
      row = { name: target.object ?? '', created_at: ts.internal, size: Number(size), content_type: ctype, etag, deleted: 0, storage_policy_index: Number(header(req.headers, 'x-backend-storage-policy-index') ?? 0) || 0, ctype_timestamp: ctypeTs, meta_timestamp: metaTs };
    }
    await enqueue(broker, row);
    markDirty({ account, container, device: target.device, devicePath, partition: target.partition, file });
    return deleted ? { status: 204, headers: {}, body: null } : { status: 201, headers: {}, body: '' };
  }

  async function put(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || !target.container) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    if (target.object !== undefined) return objectRow(req, target, devicePath, ts, false);
    const bad = checkMetadata(req.headers, 'container');
    if (bad) return bad;
    const file = dbFile(devicePath, target.partition, target.account, target.container);
    const policy = Number(header(req.headers, 'x-backend-storage-policy-index') ?? header(req.headers, 'x-backend-storage-policy-default') ?? 0) || 0;
    let created = ContainerBroker.create(file, tmpDir(devicePath), { account: target.account, container: target.container, timestamp: ts.internal, storagePolicyIndex: policy });
    const broker = brokers.get(file);
    if (!broker) return errorResponse(500);
    if (!created) {
      const recreated = broker.isDeleted();
      broker.updatePutTimestamp(ts.internal);
      if (broker.isDeleted()) return errorResponse(409);
      if (recreated) broker.updateStatusChangedAt(ts.internal);
      created = recreated;
    }
    try {
      broker.updateMetadata(requestMetadata(req, ts), true);
    } catch (err) {
      if (err instanceof MetadataError) return errorResponse(400, err.message);
      throw err;
    }
    const info = broker.info();
    const status = await accountUpdate(req, target, devicePath, info);
    if (status) return status;
    return { status: created ? 201 : 202, headers: { 'x-backend-storage-policy-index': info.storage_policy_index }, body: '' };
  }

  async function accountUpdate(req: http.IncomingMessage, target: StoragePath, devicePath: string, info: DbInfo): Promise<ServerResponse | null> {
    const hosts = header(req.headers, 'x-account-host');
    const devs = header(req.headers, 'x-account-device');
    if (hosts !== undefined && devs !== undefined && hosts.split(',').length !== devs.split(',').length) return errorResponse(400);
    const targets = parseTargets(hosts, devs, header(req.headers, 'x-account-partition'));
    if (targets.length === 0) return null;
    const extra: Record<string, string> = { 'x-trans-id': header(req.headers, 'x-trans-id') ?? '-' };
    if ((header(req.headers, 'x-account-override-deleted') ?? '').toLowerCase() === 'yes') extra['x-account-override-deleted'] = 'yes';
    const { all404 } = await reportToAccount({ account: target.account ?? '', container: target.container ?? '', devicePath }, info, targets, Timestamp.now().internal, extra);
    return all404 ? errorResponse(404) : null;
  }

  async function del(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || !target.container) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    if (target.object !== undefined) return objectRow(req, target, devicePath, ts, true);
    const broker = brokers.get(dbFile(devicePath, target.partition, target.account, target.container));
    if (!broker) return errorResponse(404);
    // Rows of this container still waiting for their group commit count too.
    if (pending.has(broker.file)) flush();
    if (!broker.empty()) return errorResponse(409);
    const before = broker.info();
    const existed = before.put_timestamp !== '0' && !broker.isDeleted(before);
    broker.deleteDb(ts.internal);
    if (!broker.isDeleted()) return errorResponse(409);
    const status = await accountUpdate(req, target, devicePath, broker.info());
    if (status) return status;
    return existed ? { status: 204, headers: {}, body: null } : errorResponse(404);
  }

  async function headOrGet(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || !target.container || target.object !== undefined) return errorResponse(400, 'Invalid path');
    const outType = listingContentType(target.query, header(req.headers, 'accept'));
    if (typeof outType !== 'string') return outType;
    const params = req.method === 'GET' ? parseListParams(target.query, CONSTRAINTS.container_listing_limit) : null;
    if (params && 'status' in params) return params;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const file = dbFile(devicePath, target.partition, target.account, target.container);
    if (pending.has(file)) flush();
    const broker = brokers.get(file);
    const info = broker ? broker.info() : null;
    const deleted = !info || !broker || broker.isDeleted(info);
    const headers = respHeaders(info, deleted);
    if (deleted || !broker || !info) return errorResponse(404, undefined, headers);
    metadataHeaders(headers, broker.metadata);
    headers['last-modified'] = Timestamp.parse(info.put_timestamp).httpDate;
    if (!params) {
      headers['content-type'] = `${outType}; charset=utf-8`;
      headers['content-length'] = 0;
      return { status: 204, headers, body: null };
    }
    headers['x-backend-record-type'] = 'object';
    headers['x-backend-record-storage-policy-index'] = info.storage_policy_index;
    const rows = broker.listObjects(params);
    const entries = rows.map((r) => ('subdir' in r ? { subdir: r.subdir } : objectEntry(r)));
    const body = renderListing(entries, outType, 'container', target.container);
    headers['content-type'] = `${outType}; charset=utf-8`;
    if (!body) return { status: 204, headers, body: null };
    return { status: 200, headers, body };
  }

  async function post(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || !target.container || target.object !== undefined) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const bad = checkMetadata(req.headers, 'container');
    if (bad) return bad;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const broker = brokers.get(dbFile(devicePath, target.partition, target.account, target.container));
    if (!broker || broker.isDeleted()) return errorResponse(404);
    if (!isTrue(req.headers['x-backend-no-timestamp-update'])) broker.updatePutTimestamp(ts.internal);
    try {
      broker.updateMetadata(requestMetadata(req, ts), true);
    } catch (err) {
      if (err instanceof MetadataError) return errorResponse(400, err.message);
      throw err;
    }
    return { status: 204, headers: {}, body: null };
  }

  async function replicate(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const hash = target.rest[0] ?? '';
    if (!/^[0-9a-f]{32}$/.test(hash)) return errorResponse(400, 'Invalid path');
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const body = await readSmallBody(req);
    const file = dbPath(devicePath, 'container', target.partition, hash);
    return handleDbReplicate(body, {
      broker: () => brokers.get(file),
      create: (o) => ContainerBroker.create(file, tmpDir(devicePath), o),
      changed: (broker) => {
        const info = broker.info();
        markDirty({ account: info.account, container: info.container, device: target.device, devicePath, partition: target.partition, file });
      },
    });
  }

  /** The db a request names, or null. */
  function targetDbFile(method: string | undefined, target: StoragePath): string | null {
    const devicePath = devices.devicePath(target.device);
    if (method === 'REPLICATE') {
      const hash = target.rest[0] ?? '';
      return /^[0-9a-f]{32}$/.test(hash) ? dbPath(devicePath, 'container', target.partition, hash) : null;
    }
    return target.account && target.container ? dbFile(devicePath, target.partition, target.account, target.container) : null;
  }

  const dispatch: StorageHandler = async (req, target) => {
    switch (req.method) {
      case 'PUT':
        return put(req, target);
      case 'DELETE':
        return del(req, target);
      case 'GET':
      case 'HEAD':
        return headOrGet(req, target);
      case 'POST':
        return post(req, target);
      case 'REPLICATE':
        return replicate(req, target);
      default:
        return errorResponse(405);
    }
  };

  // A request that fails with an error drops the handle of its db, so the next one opens the file that is there now.
  const handle: StorageHandler = async (req, target, sendContinue) => {
    try {
      return await dispatch(req, target, sendContinue);
    } catch (err) {
      const file = targetDbFile(req.method, target);
      if (file) brokers.evict(file);
      throw err;
    }
  };

  return {
    handle,
    brokers,
    async flushReports() {
      if (reportTimer) {
        clearTimeout(reportTimer);
        reportTimer = null;
      }
      await Promise.all([...inFlight.values()]);
      await sendReports();
    },
    close() {
      if (reportTimer) clearTimeout(reportTimer);
      reportTimer = null;
      if (pending.size) flush();
      brokers.closeAll();
    },
  };
}
