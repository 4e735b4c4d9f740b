import type http from 'node:http';
import path from 'node:path';
import { CONSTRAINTS, hashPathHex, Timestamp, type HashPathSalt } from '../common.js';
import { BrokerCache } from './broker-cache.js';
import { AccountBroker, dbPath, MetadataError, type DbInfo, type DbMetadata } from './broker.js';
import { handleDbReplicate } from './db-replicate.js';
import { containerEntry, listingContentType, parseListParams, renderListing } from './listing.js';
import type { StorageHandler } from './object-server.js';
import { checkMetadata, errorResponse, header, insufficientStorage, readSmallBody, requiredTimestamp, type DeviceChecker, type ServerResponse, type StoragePath } from './server-util.js';

/**
 * Swift's account server: accounts (PUT, HEAD, GET listings of containers,
 * POST metadata, DELETE marking the account for the reaper) and their
 * container rows (PUT `/<device>/<partition>/<account>/<container>` from
 * container servers).
 */
export interface AccountServerOptions {
  devices: DeviceChecker;
  salt: HashPathSalt;
  maxOpenDbs?: number;
  /** How long an open db is trusted to still be the file at its path before one `stat` checks (ms; see broker-cache.ts). */
  dbCheckIntervalMs?: number;
}

/** The account server's handler and its db cache. */
export interface AccountServer {
  handle: StorageHandler;
  brokers: BrokerCache<AccountBroker>;
  close(): void;
}

function isAccountMeta(key: string): boolean {
  return key.startsWith('x-account-meta-') || key.startsWith('x-account-sysmeta-') || key === 'x-account-access-control';
}

/** Creates the account server. */
export function createAccountServer(options: AccountServerOptions): AccountServer {
  const { devices, salt } = options;
  const brokers = new BrokerCache<AccountBroker>((file) => AccountBroker.open(file), options.maxOpenDbs ?? 128, options.dbCheckIntervalMs);

  function dbFile(devicePath: string, partition: number, account: string): string {
    return dbPath(devicePath, 'account', partition, hashPathHex(salt, account));
  }
  function tmpDir(devicePath: string): string {
    return path.join(devicePath, 'tmp');
  }
  function deletedResponse(status: number, broker: AccountBroker | null, body?: string): ServerResponse {
    const headers: Record<string, string> = {};
    if (broker && broker.isStatusDeleted()) headers['x-account-status'] = 'Deleted';
    if (status === 204) return { status, headers, body: null };
    return errorResponse(status, body, headers);
  }
  function statHeaders(broker: AccountBroker, info: DbInfo): Record<string, string | number> {
    const out: Record<string, string | number> = {
      'x-account-container-count': info.container_count,
      'x-account-object-count': info.object_count,
      'x-account-bytes-used': info.bytes_used,
      'x-timestamp': Timestamp.parse(info.created_at).normal,
      'x-put-timestamp': Timestamp.parse(info.put_timestamp).normal,
    };
    if (info.container_count > 0) {
      out['x-account-storage-policy-policy-0-container-count'] = info.container_count;
      out['x-account-storage-policy-policy-0-object-count'] = info.object_count;
      out['x-account-storage-policy-policy-0-bytes-used'] = info.bytes_used;
    }
    for (const [k, [v]] of Object.entries(broker.metadata)) if (v !== '') out[k] = v;
    return out;
  }
  function requestMetadata(req: http.IncomingMessage, ts: Timestamp): DbMetadata {
    const md: DbMetadata = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && isAccountMeta(k)) md[k] = [v, ts.internal];
    return md;
  }
  function updateMetadata(broker: AccountBroker, req: http.IncomingMessage, ts: Timestamp): ServerResponse | null {
    try {
      broker.updateMetadata(requestMetadata(req, ts), true);
      return null;
    } catch (err) {
      if (err instanceof MetadataError) return errorResponse(400, err.message);
      throw err;
    }
  }

  async function putContainer(req: http.IncomingMessage, target: StoragePath, devicePath: string): Promise<ServerResponse> {
    const account = target.account ?? '';
    const file = dbFile(devicePath, target.partition, account);
    let ts: Timestamp;
    try {
      ts = req.headers['x-timestamp'] ? Timestamp.parse(String(req.headers['x-timestamp'])) : Timestamp.now();
    } catch {
      return errorResponse(400, 'Invalid X-Timestamp header');
    }
    const putTs = header(req.headers, 'x-put-timestamp');
    const deleteTs = header(req.headers, 'x-delete-timestamp');
    const count = header(req.headers, 'x-object-count');
    const bytes = header(req.headers, 'x-bytes-used');
    if (putTs === undefined || deleteTs === undefined || count === undefined || bytes === undefined || !/^\d+$/.test(count) || !/^\d+$/.test(bytes)) {
      return errorResponse(400, 'Missing or bad X-Put-Timestamp, X-Delete-Timestamp, X-Object-Count or X-Bytes-Used');
    }
    let broker = brokers.get(file);
    if (!broker && account.startsWith('.')) {
      AccountBroker.create(file, tmpDir(devicePath), { account, timestamp: ts.internal });
      broker = brokers.get(file);
    }
    if (!broker) return errorResponse(404);
    const override = (header(req.headers, 'x-account-override-deleted') ?? '').toLowerCase() === 'yes';
    if (!override && broker.isDeleted()) return errorResponse(404);
    broker.putContainers([
      {
        name: target.container ?? '',
        put_timestamp: normalizeTs(putTs),
        delete_timestamp: normalizeTs(deleteTs),
        object_count: Number(count),
        bytes_used: Number(bytes),
        deleted: 0,
        storage_policy_index: Number(header(req.headers, 'x-backend-storage-policy-index') ?? 0) || 0,
        stats_timestamp: header(req.headers, 'x-backend-stats-timestamp') ?? '0',
      },
    ]);
    if (normalizeTs(deleteTs) > normalizeTs(putTs)) return { status: 204, headers: {}, body: null };
    return { status: 201, headers: {}, body: '' };
  }

  async function put(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || target.object !== undefined) return errorResponse(400, 'Invalid path');
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    if (target.container !== undefined) return putContainer(req, target, devicePath);
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const bad = checkMetadata(req.headers, 'account');
    if (bad) return bad;
    const file = dbFile(devicePath, target.partition, target.account);
    let created = AccountBroker.create(file, tmpDir(devicePath), { account: target.account, timestamp: ts.internal });
    const broker = brokers.get(file);
    if (!broker) return errorResponse(500);
    if (!created) {
      if (broker.isStatusDeleted()) return deletedResponse(403, broker, 'Recently deleted');
      created = broker.isDeleted();
      broker.updatePutTimestamp(ts.internal);
      if (broker.isDeleted()) return errorResponse(409);
    }
    const badMeta = updateMetadata(broker, req, ts);
    if (badMeta) return badMeta;
    return { status: created ? 201 : 202, headers: {}, body: '' };
  }

  async function headOrGet(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || target.container !== undefined) return errorResponse(400, 'Invalid path');
    const outType = listingContentType(target.query, header(req.headers, 'accept'));
    if (typeof outType !== 'string') return outType;
    const params = req.method === 'GET' ? parseListParams(target.query, CONSTRAINTS.account_listing_limit) : null;
    if (params && 'status' in params) return params;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const broker = brokers.get(dbFile(devicePath, target.partition, target.account));
    if (!broker) return errorResponse(404);
    const info = broker.info();
    if (broker.isDeleted(info)) return deletedResponse(404, broker);
    const headers = statHeaders(broker, info);
    headers['content-type'] = `${outType}; charset=utf-8`;
    if (!params) {
      headers['content-length'] = 0;
      return { status: 204, headers, body: null };
    }
    const rows = broker.listContainers(params);
    const entries = rows.map((r) => ('subdir' in r ? { subdir: r.subdir } : containerEntry(r)));
    const body = renderListing(entries, outType, 'account', target.account);
    if (!body) return { status: 204, headers, body: null };
    return { status: 200, headers, body };
  }

  async function post(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || target.container !== undefined) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const bad = checkMetadata(req.headers, 'account');
    if (bad) return bad;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const broker = brokers.get(dbFile(devicePath, target.partition, target.account));
    if (!broker) return errorResponse(404);
    if (broker.isDeleted()) return deletedResponse(404, broker);
    const badMeta = updateMetadata(broker, req, ts);
    if (badMeta) return badMeta;
    return { status: 204, headers: {}, body: null };
  }

  async function del(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    if (!target.account || target.container !== undefined) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const broker = brokers.get(dbFile(devicePath, target.partition, target.account));
    if (!broker) return errorResponse(404);
    if (broker.isDeleted()) return deletedResponse(404, broker);
    broker.deleteDb(ts.internal);
    return deletedResponse(204, broker);
  }

  async function replicate(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const hash = target.rest[0] ?? '';
    if (!/^[0-9a-f]{32}$/.test(hash)) return errorResponse(400, 'Invalid path');
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const body = await readSmallBody(req);
    const file = dbPath(devicePath, 'account', target.partition, hash);
    return handleDbReplicate(body, {
      broker: () => brokers.get(file),
      create: (o) => AccountBroker.create(file, tmpDir(devicePath), o),
      changed: () => undefined,
    });
  }

  /** The db a request names, or null. */
  function targetDbFile(method: string | undefined, target: StoragePath): string | null {
    const devicePath = devices.devicePath(target.device);
    if (method === 'REPLICATE') {
      const hash = target.rest[0] ?? '';
      return /^[0-9a-f]{32}$/.test(hash) ? dbPath(devicePath, 'account', target.partition, hash) : null;
    }
    return target.account ? dbFile(devicePath, target.partition, target.account) : null;
  }

  const dispatch: StorageHandler = async (req, target) => {
    switch (req.method) {
      case 'PUT':
        return put(req, target);
      case 'GET':
      case 'HEAD':
        return headOrGet(req, target);
      case 'POST':
        return post(req, target);
      case 'DELETE':
        return del(req, target);
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
  return { handle, brokers, close: () => brokers.closeAll() };
}

/** Timestamps of account rows in their internal form ('0' stays '0'). */
function normalizeTs(value: string): string {
  if (value === '0' || value === '') return '0';
  try {
    return Timestamp.parse(value).internal;
  } catch {
    return value;
  }
}
