import type http from 'node:http';
import path from 'node:path';
import { CONSTRAINTS, EXPIRER_ACCOUNT, hashPathHex, Timestamp, type HashPathSalt } from '../common.js';
import {
  CorruptFileError,
  DiskFileWriter,
  getHashes,
  invalidateSuffix,
  loadHashDir,
  mergeMetadata,
  objectDir,
  openObject,
  POST_HEADERS,
  quarantineHashDir,
  readMetadataFile,
  removeObsolete,
  writeMetadataOnlyFile,
  type ObjectMetadata,
  type OpenedObject,
} from './diskfile.js';
import { expirerContainer, expirerTaskObject } from './expirer-queue.js';
import { notFound, readResponse } from './object-read.js';
import { checkMetadata, errorResponse, header, insufficientStorage, isTrue, requiredTimestamp, type DeviceChecker, type ServerResponse, type StoragePath } from './server-util.js';
import { parseTargets, sendUpdates, type AsyncPendingRecord, type UpdateContext } from './updates.js';

/**
 * Swift's object server: PUT, GET, HEAD, POST, DELETE of
 * `/<device>/<partition>/<account>/<container>/<object>` and REPLICATE of
 * `/<device>/<partition>[/<suffix>-<suffix>...]`, with the container and
 * expirer-queue updates that follow a change.
 */
export interface ObjectServerOptions {
  devices: DeviceChecker;
  salt: HashPathSalt;
  updates: UpdateContext;
  /** Largest body accepted (bytes). */
  maxFileSize: number;
}

/** Handles one request; `sendContinue` answers `Expect: 100-continue` once the PUT's checks passed. */
export type StorageHandler = (req: http.IncomingMessage, target: StoragePath, sendContinue: () => void) => Promise<ServerResponse>;

const EMPTY_ETAG = 'd41d8cd98f00b204e9800998ecf8427e';

/** Creates the object server's request handler. */
export function createObjectServer(options: ObjectServerOptions): StorageHandler {
  const { devices, salt, updates } = options;

  function names(target: StoragePath): { account: string; container: string; object: string } | null {
    if (target.account === undefined || target.container === undefined || target.object === undefined) return null;
    if (!target.account || !target.container || !target.object) return null;
    return { account: target.account, container: target.container, object: target.object };
  }

  async function quarantine(devicePath: string, partition: number, hash: string): Promise<void> {
    const to = await quarantineHashDir(devicePath, partition, hash).catch(() => null);
    updates.log.warn({ hash, partition, to }, 'object quarantined');
  }

  /** Opens the object; quarantines an unreadable one (then: none). */
  async function open(devicePath: string, partition: number, hash: string): Promise<Awaited<ReturnType<typeof openObject>>> {
    const dir = objectDir(devicePath, partition, hash);
    try {
      return await openObject(dir);
    } catch (err) {
      if (!(err instanceof CorruptFileError)) throw err;
      await quarantine(devicePath, partition, hash);
      return openObject(dir);
    }
  }

  function isExpired(md: ObjectMetadata, req: http.IncomingMessage): boolean {
    const deleteAt = md['x-delete-at'];
    if (!deleteAt || isTrue(req.headers['x-backend-replication']) || isTrue(req.headers['x-backend-open-expired'])) return false;
    return Number(deleteAt) <= Date.now() / 1000;
  }

  function containerTargets(req: http.IncomingMessage): ReturnType<typeof parseTargets> {
    return parseTargets(header(req.headers, 'x-container-host'), header(req.headers, 'x-container-device'), header(req.headers, 'x-container-partition'));
  }

  function baseUpdateHeaders(req: http.IncomingMessage): Record<string, string> {
    return { 'x-trans-id': header(req.headers, 'x-trans-id') ?? '-', 'x-backend-storage-policy-index': header(req.headers, 'x-backend-storage-policy-index') ?? '0', 'user-agent': `object-server ${process.pid}` };
  }

  /** Container update header overrides (`x-object-sysmeta-container-update-override-*` wins over `x-backend-container-update-override-*`). */
  function applyOverrides(out: Record<string, string>, source: Record<string, string | string[] | undefined>): void {
    for (const prefix of ['x-backend-container-update-override-', 'x-object-sysmeta-container-update-override-']) {
      for (const [k, v] of Object.entries(source)) {
        if (k.startsWith(prefix) && typeof v === 'string') out[`x-${k.slice(prefix.length)}`] = v;
      }
    }
  }

  async function deleteAtUpdate(req: http.IncomingMessage, devicePath: string, op: 'PUT' | 'DELETE', deleteAt: number, a: string, c: string, o: string, timestamp: Timestamp, size: string): Promise<void> {
    if (isTrue(req.headers['x-backend-replication'])) return;
    const record: AsyncPendingRecord = {
      op,
      account: EXPIRER_ACCOUNT,
      container: expirerContainer(salt, deleteAt, a, c, o),
      obj: expirerTaskObject(deleteAt, a, c, o),
      headers: { 'x-timestamp': timestamp.internal, 'x-trans-id': header(req.headers, 'x-trans-id') ?? '-', 'x-backend-storage-policy-index': '0' },
      target: 'container',
    };
    if (op === 'PUT') {
      const hosts = header(req.headers, 'x-delete-at-host');
      if (hosts === undefined) return;
      const given = header(req.headers, 'x-delete-at-container');
      if (given) record.container = given;
      Object.assign(record.headers, { 'x-size': '0', 'x-content-type': `text/plain;swift_expirer_bytes=${size}`, 'x-etag': EMPTY_ETAG, 'x-content-type-timestamp': timestamp.internal });
      await sendUpdates(updates, devicePath, parseTargets(hosts, header(req.headers, 'x-delete-at-device'), header(req.headers, 'x-delete-at-partition')), record, timestamp.internal);
    } else {
      // The expirer deletes the queue row itself and says so (Swift's header, true when absent); a proxy asks only some replicas to clean.
      if (!isTrue(header(req.headers, 'x-backend-clean-expiring-object-queue') ?? 't')) return;
      // Swift queues the removal of an old entry for the updater (it does not know the old container's nodes).
      await sendUpdates(updates, devicePath, [], record, timestamp.internal);
    }
  }

  function parseDeleteAt(req: http.IncomingMessage, now: number | null): number | ServerResponse {
    const raw = header(req.headers, 'x-delete-at');
    if (raw === undefined || raw === '') return 0;
    if (!/^\d+$/.test(raw.trim())) return errorResponse(400, 'Non-integer X-Delete-At');
    const value = Number(raw.trim());
    if (now !== null && value < now) return errorResponse(400, 'X-Delete-At in past');
    return value;
  }

  async function put(req: http.IncomingMessage, target: StoragePath, sendContinue: () => void): Promise<ServerResponse> {
    const n = names(target);
    if (!n) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const replication = isTrue(req.headers['x-backend-replication']);
    const length = header(req.headers, 'content-length');
    const chunked = /chunked/i.test(header(req.headers, 'transfer-encoding') ?? '');
    if (length !== undefined && !/^\d+$/.test(length)) return errorResponse(400, 'Invalid Content-Length header value');
    const declared = length !== undefined && !chunked ? Number(length) : null;
    if (declared !== null && declared > options.maxFileSize) return errorResponse(413, 'Your request is too large.');
    if (declared === null && !chunked) return errorResponse(411, 'Missing Content-Length header.');
    if (n.object.length > CONSTRAINTS.max_object_name_length) return errorResponse(400, `Object name length of ${n.object.length} longer than ${CONSTRAINTS.max_object_name_length}`);
    if (req.headers['content-type'] === undefined) return errorResponse(400, 'No content type');
    const deleteAt = parseDeleteAt(req, replication ? null : ts.seconds);
    if (typeof deleteAt !== 'number') return deleteAt;
    const badMeta = checkMetadata(req.headers, 'object');
    if (badMeta) return badMeta;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);

    const hash = hashPathHex(salt, n.account, n.container, n.object);
    const dir = objectDir(devicePath, target.partition, hash);
    const state = await loadHashDir(dir);
    let origMetadata: ObjectMetadata = {};
    if (state.data) {
      try {
        origMetadata = await readMetadataFile(path.join(dir, state.data));
        if (state.meta) origMetadata = mergeMetadata(origMetadata, await readMetadataFile(path.join(dir, state.meta)).catch(() => null));
        if (isExpired(origMetadata, req)) origMetadata = {};
      } catch {
        origMetadata = {};
      }
    }
    const ifNoneMatch = header(req.headers, 'if-none-match');
    if (ifNoneMatch !== undefined && Object.keys(origMetadata).length > 0) {
      const tags = ifNoneMatch.split(',').map((t) => t.trim().replace(/^"(.*)"$/, '$1'));
      if (tags.includes('*') || tags.includes(origMetadata.etag ?? '')) return errorResponse(412);
    }
    if (state.timestamp !== null && state.timestamp >= ts.internal) return errorResponse(409, undefined, { 'x-backend-timestamp': state.timestamp });
    sendContinue();

    const writer = await DiskFileWriter.open(devicePath, declared);
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        await writer.write(chunk);
        if (writer.size > options.maxFileSize) {
          await writer.abort();
          return errorResponse(413, 'Your request is too large.');
        }
      }
    } catch {
      await writer.abort();
      return errorResponse(499);
    }
    if (!req.complete || (declared !== null && writer.size !== declared)) {
      await writer.abort();
      return errorResponse(499);
    }
    const etag = await writer.etag();
    const given = header(req.headers, 'etag');
    if (given && given.replace(/^"(.*)"$/, '$1').toLowerCase() !== etag) {
      await writer.abort();
      return errorResponse(422);
    }
    const metadata = requestMetadata(req, ts, String(writer.size), etag, `/${n.account}/${n.container}/${n.object}`);
    // The container updates overlap the fsync of the hash directory: the object is complete and readable by then.
    const { durable } = await writer.publish(dir, `${ts.internal}.data`, metadata, state.exists);
    invalidateSuffix(devicePath, target.partition, hash.slice(-3));
    const work: Promise<void>[] = [durable];
    if (state.exists) work.push(loadHashDir(dir).then(removeObsolete));
    if (!replication) {
      const origDeleteAt = Number(origMetadata['x-delete-at'] ?? 0);
      if (deleteAt) work.push(deleteAtUpdate(req, devicePath, 'PUT', deleteAt, n.account, n.container, n.object, ts, String(writer.size)));
      if (origDeleteAt && origDeleteAt !== deleteAt) work.push(deleteAtUpdate(req, devicePath, 'DELETE', origDeleteAt, n.account, n.container, n.object, ts, '0'));
      const updateHeaders: Record<string, string> = {
        ...baseUpdateHeaders(req),
        'x-size': metadata['content-length'] ?? '0',
        'x-content-type': metadata['content-type'] ?? '',
        'x-timestamp': ts.internal,
        'x-etag': etag,
      };
      applyOverrides(updateHeaders, req.headers);
      work.push(sendUpdates(updates, devicePath, containerTargets(req), { op: 'PUT', account: n.account, container: n.container, obj: n.object, headers: updateHeaders, target: 'container' }, ts.internal));
    }
    await Promise.all(work);
    return { status: 201, headers: { etag, 'content-type': 'text/html; charset=UTF-8' }, body: '' };
  }

  async function get(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const n = names(target);
    if (!n) return errorResponse(400, 'Invalid path');
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const hash = hashPathHex(salt, n.account, n.container, n.object);
    const { opened, state } = await open(devicePath, target.partition, hash);
    if (!opened) return notFound(req.headers, state.timestamp ? { 'x-backend-timestamp': state.timestamp } : {});
    if (isExpired(opened.metadata, req)) {
      await opened.handle.close();
      return notFound(req.headers, { 'x-backend-timestamp': opened.metadata['x-timestamp'] ?? '' });
    }
    return readResponse(req, opened, async () => {
      const p: Promise<unknown> = quarantine(devicePath, target.partition, hash)
        .catch(() => undefined)
        .finally(() => updates.background.delete(p));
      updates.background.add(p);
      await p;
    });
  }

  async function post(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const n = names(target);
    if (!n) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const replication = isTrue(req.headers['x-backend-replication']);
    const newDeleteAt = parseDeleteAt(req, replication ? null : ts.seconds);
    if (typeof newDeleteAt !== 'number') return newDeleteAt;
    const badMeta = checkMetadata(req.headers, 'object');
    if (badMeta) return badMeta;
    const reqCtype = header(req.headers, 'content-type');
    let reqCtypeTs = '0';
    if (reqCtype) {
      try {
        reqCtypeTs = Timestamp.parse(header(req.headers, 'content-type-timestamp') ?? ts.internal).internal;
      } catch {
        return errorResponse(400, 'Invalid Content-Type-Timestamp');
      }
    }
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const hash = hashPathHex(salt, n.account, n.container, n.object);
    const { opened } = await open(devicePath, target.partition, hash);
    if (!opened) return errorResponse(404);
    await opened.handle.close();
    if (isExpired(opened.metadata, req)) return errorResponse(404);
    const dataTs = opened.dataMetadata['x-timestamp'] ?? '';
    const origTs = opened.metadata['x-timestamp'] ?? '';
    const origCtypeTs = opened.metaMetadata?.['content-type-timestamp'] && opened.metaMetadata['content-type'] !== undefined && opened.metaMetadata['content-type-timestamp'] > dataTs ? opened.metaMetadata['content-type-timestamp'] : dataTs;
    if (origTs >= ts.internal && origCtypeTs >= reqCtypeTs) return errorResponse(409, undefined, { 'x-backend-timestamp': origTs });

    let metadata: ObjectMetadata;
    const work: Promise<void>[] = [];
    if (ts.internal > origTs) {
      metadata = { 'x-timestamp': ts.internal, name: `/${n.account}/${n.container}/${n.object}` };
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v !== 'string') continue;
        if (k.startsWith('x-object-meta-') || k.startsWith('x-object-transient-sysmeta-') || POST_HEADERS.has(k)) metadata[k] = v;
      }
      copyReplicationHeaders(req, metadata);
      const origDeleteAt = Number(opened.metadata['x-delete-at'] ?? 0);
      if (newDeleteAt) work.push(deleteAtUpdate(req, devicePath, 'PUT', newDeleteAt, n.account, n.container, n.object, ts, opened.dataMetadata['content-length'] ?? '0'));
      if (origDeleteAt && origDeleteAt !== newDeleteAt) work.push(deleteAtUpdate(req, devicePath, 'DELETE', origDeleteAt, n.account, n.container, n.object, ts, '0'));
    } else {
      metadata = { ...(opened.metaMetadata ?? { 'x-timestamp': origTs, name: `/${n.account}/${n.container}/${n.object}` }) };
    }
    let ctype: string;
    let ctypeTs: string;
    const ctypeChanged = reqCtypeTs > origCtypeTs && reqCtype !== undefined;
    if (ctypeChanged && reqCtype !== undefined) {
      ctype = reqCtype;
      ctypeTs = reqCtypeTs;
      metadata['content-type'] = ctype;
      metadata['content-type-timestamp'] = ctypeTs;
    } else {
      ctype = opened.metadata['content-type'] ?? '';
      ctypeTs = origCtypeTs;
      if (origCtypeTs !== dataTs) {
        metadata['content-type'] = ctype;
        metadata['content-type-timestamp'] = ctypeTs;
      } else {
        delete metadata['content-type'];
        delete metadata['content-type-timestamp'];
      }
    }
    const dir = objectDir(devicePath, target.partition, hash);
    await writeMetadataOnlyFile(devicePath, dir, `${metadata['x-timestamp']}.meta`, metadata, true);
    await removeObsolete(await loadHashDir(dir));
    invalidateSuffix(devicePath, target.partition, hash.slice(-3));

    if (ctypeChanged && !replication) {
      const updateHeaders: Record<string, string> = {
        ...baseUpdateHeaders(req),
        'x-size': opened.dataMetadata['content-length'] ?? '0',
        'x-content-type': withSwiftBytes(ctype, opened.dataMetadata['content-type']),
        'x-timestamp': dataTs,
        'x-content-type-timestamp': ctypeTs,
        'x-meta-timestamp': metadata['x-timestamp'] ?? ts.internal,
        'x-etag': opened.dataMetadata.etag ?? '',
      };
      applyOverrides(updateHeaders, opened.dataMetadata);
      work.push(sendUpdates(updates, devicePath, containerTargets(req), { op: 'PUT', account: n.account, container: n.container, obj: n.object, headers: updateHeaders, target: 'container' }, metadata['x-timestamp'] ?? ts.internal));
    }
    await Promise.all(work);
    const headers: Record<string, string> = { 'x-backend-content-type': ctype };
    for (const [k, v] of Object.entries(opened.metadata)) if (k.startsWith('x-object-sysmeta-')) headers[k] = v;
    return { status: 202, headers: { ...headers, 'content-type': 'text/html; charset=UTF-8' }, body: '<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>' };
  }

  async function del(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const n = names(target);
    if (!n) return errorResponse(400, 'Invalid path');
    const ts = requiredTimestamp(req.headers);
    if (!(ts instanceof Timestamp)) return ts;
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const hash = hashPathHex(salt, n.account, n.container, n.object);
    const dir = objectDir(devicePath, target.partition, hash);
    const { opened, state } = await open(devicePath, target.partition, hash);
    let origTs = '';
    let origMetadata: ObjectMetadata = {};
    let status: number;
    if (opened) {
      await opened.handle.close();
      origTs = fileTimestamp(opened);
      origMetadata = opened.metadata;
      if (isExpired(opened.metadata, req)) status = 404;
      else status = origTs < ts.internal ? 204 : 409;
    } else {
      origTs = state.timestamp ?? '';
      status = 404;
    }
    const responseTs = origTs > ts.internal ? origTs : ts.internal;
    const origDeleteAt = Number(origMetadata['x-delete-at'] ?? 0);
    const ifDeleteAt = header(req.headers, 'x-if-delete-at');
    if (ifDeleteAt !== undefined) {
      if (!/^\d+(\.\d+)?$/.test(ifDeleteAt.trim())) return errorResponse(400, 'Bad X-If-Delete-At header value');
      if (!origTs) return errorResponse(404);
      if (origTs >= ts.internal) return errorResponse(409);
      if (origDeleteAt !== Math.floor(Number(ifDeleteAt))) return errorResponse(412, 'X-If-Delete-At and X-Delete-At do not match');
      status = 204;
    }
    const work: Promise<void>[] = [];
    if (origDeleteAt) work.push(deleteAtUpdate(req, devicePath, 'DELETE', origDeleteAt, n.account, n.container, n.object, ts, '0'));
    if (!origTs || origTs < ts.internal) {
      await writeMetadataOnlyFile(devicePath, dir, `${ts.internal}.ts`, { 'x-timestamp': ts.internal, name: `/${n.account}/${n.container}/${n.object}` }, state.exists);
      await removeObsolete(await loadHashDir(dir));
      invalidateSuffix(devicePath, target.partition, hash.slice(-3));
      if (!isTrue(req.headers['x-backend-replication'])) {
        work.push(sendUpdates(updates, devicePath, containerTargets(req), { op: 'DELETE', account: n.account, container: n.container, obj: n.object, headers: { ...baseUpdateHeaders(req), 'x-timestamp': ts.internal }, target: 'container' }, ts.internal));
      }
    }
    await Promise.all(work);
    return errorResponse(status, status === 204 ? '' : undefined, { 'x-backend-timestamp': responseTs, 'x-backend-content-type': origMetadata['content-type'] ?? '' });
  }

  async function replicate(req: http.IncomingMessage, target: StoragePath): Promise<ServerResponse> {
    const devicePath = await devices.check(target.device);
    if (!devicePath) return insufficientStorage(target.device);
    const suffixes = (target.rest[0] ?? '').split('-').filter((s) => /^[0-9a-f]{3}$/.test(s));
    const hashes = await getHashes(devicePath, target.partition, suffixes);
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(hashes) };
  }

  return async (req, target, sendContinue) => {
    switch (req.method) {
      case 'PUT':
        return put(req, target, sendContinue);
      case 'GET':
      case 'HEAD':
        return get(req, target);
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
}

/** The timestamp of an opened object's data file. */
function fileTimestamp(opened: OpenedObject): string {
  const name = opened.state.data ?? '';
  return name.slice(0, name.lastIndexOf('.'));
}

/** Keeps SLO's `swift_bytes` parameter of the data file's content type on a new content type (Swift does so for container updates). */
function withSwiftBytes(ctype: string, dataCtype: string | undefined): string {
  const match = /;\s*swift_bytes=(\d+)/.exec(dataCtype ?? '');
  if (!match || /swift_bytes=/.test(ctype)) return ctype;
  return `${ctype};swift_bytes=${match[1]}`;
}

function copyReplicationHeaders(req: http.IncomingMessage, metadata: ObjectMetadata): void {
  const list = header(req.headers, 'x-backend-replication-headers');
  if (!list) return;
  for (const name of list.split(/\s+/)) {
    const key = name.toLowerCase();
    const value = req.headers[key];
    if (key && typeof value === 'string') metadata[key] = value;
  }
}

/** The metadata a PUT stores: Swift's reserved keys, user and system metadata, and the allowed headers. */
function requestMetadata(req: http.IncomingMessage, ts: Timestamp, size: string, etag: string, name: string): ObjectMetadata {
  const md: ObjectMetadata = { name, 'x-timestamp': ts.internal, 'content-type': header(req.headers, 'content-type') ?? 'application/octet-stream', 'content-length': size, etag };
  for (const [k, v] of Object.entries(req.headers)) {
    if (typeof v !== 'string') continue;
    if (k.startsWith('x-object-meta-') || k.startsWith('x-object-sysmeta-') || k.startsWith('x-object-transient-sysmeta-') || POST_HEADERS.has(k)) md[k] = v;
  }
  copyReplicationHeaders(req, md);
  md['content-length'] = size;
  md.etag = etag;
  md['x-timestamp'] = ts.internal;
  md.name = name;
  return md;
}
