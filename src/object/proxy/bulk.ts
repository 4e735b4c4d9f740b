import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CONSTRAINTS } from '../common.js';
import { ByteReader } from './byte-reader.js';
import { BULK_FORMATS, BulkAbort, bulkResponse, type BulkFailure, type BulkProgress, type BulkResult } from './bulk-response.js';
import { bestMatch, defaultErrorBody, discard, isSuccess, percentDecode, quote, statusLine, swiftError, utf8OrNull } from './feature-util.js';
import { subrequest, type Handler, type Middleware, type ProxyContext, type SwiftRequest } from './pipeline.js';
import { readTar, TarError, type TarEntry } from './tar-reader.js';

/**
 * Swift's `bulk` middleware: `POST|DELETE <account>?bulk-delete` deletes a
 * newline-separated list of URL-encoded `/container/object` and `/container`
 * paths (objects first), and `PUT <path>?extract-archive=tar|tar.gz` makes
 * one object per regular file of a streamed archive, creating containers as
 * needed. Each step is a subrequest through the rest of the pipeline with
 * the caller's token, so auth, quotas and ACLs apply to it as to any request.
 */

/** Limits and pacing of the bulk middleware (Swift's `[filter:bulk]` options). */
export interface BulkOptions {
  maxContainersPerExtraction: number;
  maxFailedExtractions: number;
  maxDeletesPerRequest: number;
  maxFailedDeletes: number;
  /** How often whitespace goes out while the work goes on (Swift's `yield_frequency`, 10 s). */
  heartbeatMs: number;
  /** Deletes in flight at once (Swift's `delete_concurrency`). */
  deleteConcurrency: number;
}

const DEFAULTS: BulkOptions = {
  maxContainersPerExtraction: 10000,
  maxFailedExtractions: 1000,
  maxDeletesPerRequest: 10000,
  maxFailedDeletes: 1000,
  heartbeatMs: 10000,
  deleteConcurrency: 2,
};

/** Longest `container/object` path a list line may hold. */
const MAX_PATH_LENGTH = CONSTRAINTS.max_object_name_length + CONSTRAINTS.max_container_name_length + 2;

const ARCHIVE_TYPES: Record<string, 'tar' | 'gz' | 'bz2'> = { tar: 'tar', 'tar.gz': 'gz', 'tar.bz2': 'bz2' };

/** Maps a pax record of a member to the object header it sets (xattrs `user.mime_type` and `user.meta.*`). */
export function paxKeyToHeader(key: string): string | null {
  if (key === 'SCHILY.xattr.user.mime_type' || key === 'LIBARCHIVE.xattr.user.mime_type') return 'content-type';
  for (const prefix of ['SCHILY.xattr.user.meta.', 'LIBARCHIVE.xattr.user.meta.']) {
    if (key.startsWith(prefix)) return `x-object-meta-${key.slice(prefix.length)}`.toLowerCase();
  }
  return null;
}

/** `/v1/AUTH_a[/rest]` as Swift's `split_path(path, 2, 3, True)`; null when it is not one. */
function splitAccountPath(path: string): { version: string; account: string; rest: string } | null {
  const parts = path.slice(1).split('/');
  const version = parts[0] ?? '';
  const account = parts[1] ?? '';
  if (!path.startsWith('/') || !version || !account) return null;
  return { version, account, rest: parts.slice(2).join('/') };
}

function hasBody(req: SwiftRequest): boolean {
  return req.headers['content-length'] !== undefined || (req.headers['transfer-encoding'] ?? '').toLowerCase() === 'chunked';
}

/** The caller's credentials, for each subrequest (bulk sits above auth: every step is authenticated on its own). */
function authHeaders(req: SwiftRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const token = req.headers['x-auth-token'] ?? req.headers['x-storage-token'];
  if (token !== undefined) out['x-auth-token'] = token;
  const service = req.headers['x-service-token'];
  if (service !== undefined) out['x-service-token'] = service;
  return out;
}

/**
 * Reads what is left of a request body in the background, so that the
 * connection can serve the next request: through `reader` while it works,
 * then whatever `body` still holds (after a decompression error).
 */
function finishReading(reader: ByteReader, body: Readable): void {
  const rest = (): void => {
    if (!body.readableEnded && !body.destroyed) body.resume();
  };
  reader.skip(Number.MAX_SAFE_INTEGER).then(rest, rest);
}

class CreateContainerError extends Error {
  constructor(readonly status: number) {
    super(`Create Container Failed: ${status}`);
  }
}

/** Makes sure the container exists: true when this call created it. */
async function ensureContainer(next: Handler, req: SwiftRequest, path: string): Promise<boolean> {
  const probe = await next(subrequest(req, 'HEAD', path, { headers: authHeaders(req), source: 'EA' }));
  discard(probe.body);
  if (isSuccess(probe.status)) return false;
  if (probe.status === 404) {
    const created = await next(subrequest(req, 'PUT', path, { headers: { ...authHeaders(req), 'content-length': '0' }, source: 'EA' }));
    discard(created.body);
    if (isSuccess(created.status)) return true;
    throw new CreateContainerError(created.status);
  }
  throw new CreateContainerError(probe.status);
}

/** The headers of the request that every extracted object gets (delete-at and user metadata). */
function inheritedHeaders(req: SwiftRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name === 'x-delete-at' || name === 'x-delete-after' || (name.startsWith('x-object-meta-') && name.length > 'x-object-meta-'.length)) out[name] = value;
  }
  return out;
}

/** One extract-archive request's state: the containers seen so far and what to report. */
class Extraction {
  private readonly accessed = new Set<string>();
  private containersCreated = 0;
  /** 400 unless a failure came from the servers (502). */
  failedStatus = 400;

  constructor(
    private readonly next: Handler,
    private readonly options: BulkOptions,
    private readonly maxFileSize: number,
    private readonly req: SwiftRequest,
    private readonly path: { version: string; account: string; base: string },
    private readonly result: BulkResult,
    private readonly failures: BulkFailure[],
  ) {}

  /** Makes the container of a file exist, or says why it could not (the PUT may still succeed by an ACL). */
  private async container(container: string): Promise<BulkFailure | null> {
    if (this.accessed.has(container)) return null;
    const containerPath = `/${this.path.version}/${this.path.account}/${container}`;
    try {
      if (await ensureContainer(this.next, this.req, containerPath)) {
        this.containersCreated++;
        if (this.containersCreated > this.options.maxContainersPerExtraction) {
          throw new BulkAbort(400, `More than ${this.options.maxContainersPerExtraction} containers to create from tar.`);
        }
      }
      return null;
    } catch (err) {
      if (!(err instanceof CreateContainerError)) throw err;
      if (err.status === 401) throw new BulkAbort(401, defaultErrorBody(401));
      return [quote(containerPath.slice(0, MAX_PATH_LENGTH)), statusLine(err.status)];
    }
  }

  /** Stores one member of the archive (regular files under a container; the rest is skipped). */
  async member(entry: TarEntry): Promise<void> {
    if (entry.type !== 'file') return;
    let objPath = entry.name;
    if (objPath.startsWith('./')) objPath = objPath.slice(2);
    objPath = objPath.replace(/^\/+/, '');
    if (this.path.base) objPath = `${this.path.base}/${objPath}`;
    if (!objPath.includes('/')) return; // a file at the top has no container
    const destination = `/${this.path.version}/${this.path.account}/${objPath}`;
    const container = objPath.slice(0, objPath.indexOf('/'));
    const shown = quote(objPath.slice(0, MAX_PATH_LENGTH));
    if (!entry.nameIsUtf8 || destination.includes('\0')) {
      this.failures.push([shown, statusLine(412)]);
      return;
    }
    if (entry.size > this.maxFileSize) {
      this.failures.push([shown, statusLine(413)]);
      return;
    }
    const containerFailure = await this.container(container);
    const headers: Record<string, string> = { ...authHeaders(this.req), 'content-length': String(entry.size), ...inheritedHeaders(this.req) };
    for (const [key, value] of Object.entries(entry.pax)) {
      const header = paxKeyToHeader(key);
      if (header) headers[header] = value;
    }
    const resp = await this.next(subrequest(this.req, 'PUT', destination, { headers, body: entry.body, source: 'EA' }));
    discard(resp.body);
    this.accessed.add(container);
    if (isSuccess(resp.status)) {
      this.result['Number Files Created'] = Number(this.result['Number Files Created']) + 1;
      return;
    }
    if (containerFailure) this.failures.push(containerFailure);
    if (resp.status === 401) {
      this.failures.push([shown, statusLine(401)]);
      throw new BulkAbort(401, defaultErrorBody(401));
    }
    if (resp.status >= 500) this.failedStatus = 502;
    this.failures.push([shown, statusLine(resp.status)]);
  }
}

async function extractArchive(next: Handler, options: BulkOptions, maxFileSize: number, req: SwiftRequest, compression: 'tar' | 'gz', format: string | null, result: BulkResult, failures: BulkFailure[], progress: BulkProgress): Promise<void> {
  if (!format) throw new BulkAbort(406, defaultErrorBody(406));
  if (!hasBody(req) || !req.body) throw new BulkAbort(411, defaultErrorBody(411));
  const parts = splitAccountPath(req.path);
  if (!parts) throw new BulkAbort(404, defaultErrorBody(404));
  const body = req.body;
  let source: Readable = body;
  if (compression === 'gz') {
    const gunzip = createGunzip();
    // Not pipeline(): a bad archive must not destroy the request (and with it the connection the report goes out on).
    gunzip.once('error', () => body.unpipe(gunzip));
    source = body.pipe(gunzip);
  }
  const reader = new ByteReader(source);
  const extraction = new Extraction(next, options, maxFileSize, req, { version: parts.version, account: parts.account, base: parts.rest.replace(/\/+$/, '') }, result, failures);
  try {
    for await (const entry of readTar(reader)) {
      if (failures.length >= options.maxFailedExtractions || progress.gone) break;
      await extraction.member(entry);
    }
  } catch (err) {
    if (err instanceof TarError || (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('Z_'))) {
      throw new BulkAbort(400, `Invalid Tar File: ${err.message}`);
    }
    throw err;
  } finally {
    finishReading(reader, body);
  }
  if (failures.length > 0) result['Response Status'] = statusLine(extraction.failedStatus);
  else if (!result['Number Files Created']) {
    result['Response Status'] = statusLine(400);
    result['Response Body'] = 'Invalid Tar File: No Valid Files';
  }
}

/** The names of a bulk-delete body: one URL-encoded path per line (decoded; null where not UTF-8). */
async function readDeleteList(req: SwiftRequest, options: BulkOptions): Promise<{ raw: string; name: string | null }[]> {
  if (!hasBody(req)) throw new BulkAbort(411, defaultErrorBody(411));
  const names: { raw: string; name: string | null }[] = [];
  if (!req.body) return names;
  const reader = new ByteReader(req.body);
  let line = Buffer.alloc(0);
  const add = (bytes: Buffer): void => {
    const raw = bytes.toString('latin1').replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '');
    names.push({ raw, name: utf8OrNull(percentDecode(raw)) });
  };
  try {
    for (;;) {
      const newline = line.indexOf(0x0a);
      if (newline >= 0) {
        add(line.subarray(0, newline));
        line = line.subarray(newline + 1);
      } else {
        const data = await reader.readUpTo(MAX_PATH_LENGTH);
        if (data.length === 0) {
          if (line.toString('latin1').trim()) add(line);
          break;
        }
        line = Buffer.concat([line, data]);
      }
      if (names.length > options.maxDeletesPerRequest) throw new BulkAbort(413, `Maximum Bulk Deletes: ${options.maxDeletesPerRequest} per request`);
      if (line.length > MAX_PATH_LENGTH * 2) throw new BulkAbort(400, 'Invalid File Name');
    }
  } finally {
    finishReading(reader, req.body);
  }
  return names;
}

async function bulkDelete(next: Handler, options: BulkOptions, req: SwiftRequest, format: string | null, result: BulkResult, failures: BulkFailure[], progress: BulkProgress): Promise<void> {
  if (!format) throw new BulkAbort(406, defaultErrorBody(406));
  const parts = splitAccountPath(req.path);
  if (!parts) throw new BulkAbort(404, defaultErrorBody(404));
  const incoming = req.headers['content-type'];
  if (incoming && !incoming.startsWith('text/plain')) throw new BulkAbort(406, defaultErrorBody(406));
  const names = await readDeleteList(req, options);
  let failedStatus = 400;

  const isObject = (name: string): boolean => name.replace(/^\/+|\/+$/g, '').includes('/');
  const work: { shown: string; path: string }[][] = [[], []];
  for (const { raw, name } of names) {
    if (name === '') continue;
    if (name === null) {
      if (raw) failures.push([quote(percentDecode(raw)), statusLine(412)]);
      continue;
    }
    (work[isObject(name) ? 0 : 1] as { shown: string; path: string }[]).push({
      shown: quote(name),
      path: `/${parts.version}/${parts.account}/${name.replace(/^\/+/, '')}`,
    });
  }

  const deleteOne = async (item: { shown: string; path: string }): Promise<void> => {
    const resp = await next(subrequest(req, 'DELETE', item.path, { headers: authHeaders(req), source: 'BD' }));
    discard(resp.body);
    if (isSuccess(resp.status)) result['Number Deleted'] = Number(result['Number Deleted']) + 1;
    else if (resp.status === 404) result['Number Not Found'] = Number(result['Number Not Found']) + 1;
    else {
      if (resp.status >= 500) failedStatus = 502;
      failures.push([item.shown, statusLine(resp.status)]);
    }
  };

  // Objects first, then containers (which are then likely empty).
  for (const group of work) {
    let index = 0;
    let tooManyFailures = false;
    const worker = async (): Promise<void> => {
      while (index < group.length && !progress.gone && !tooManyFailures) {
        const item = group[index++] as { shown: string; path: string };
        await deleteOne(item);
        if (failures.length >= options.maxFailedDeletes) tooManyFailures = true;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.deleteConcurrency) }, worker));
    if (tooManyFailures) throw new BulkAbort(400, 'Max delete failures exceeded');
  }
  if (failures.length > 0) result['Response Status'] = statusLine(failedStatus);
  else if (!result['Number Deleted'] && !result['Number Not Found']) {
    result['Response Status'] = statusLine(400);
    result['Response Body'] = 'Invalid bulk delete.';
  }
}

/** The bulk middleware with the given limits (tests shorten the heartbeat). */
export function createBulk(overrides: Partial<BulkOptions> = {}): Middleware {
  const options: BulkOptions = { ...DEFAULTS, ...overrides };
  return {
    name: 'bulk',
    wrap(next: Handler, ctx: ProxyContext): Handler {
      ctx.registerInfo('bulk_upload', { max_containers_per_extraction: options.maxContainersPerExtraction, max_failed_extractions: options.maxFailedExtractions });
      ctx.registerInfo('bulk_delete', { max_deletes_per_request: options.maxDeletesPerRequest, max_failed_deletes: options.maxFailedDeletes });
      const onError = (what: string, req: SwiftRequest) => (err: unknown) => ctx.log.error({ err, requestId: req.env.requestId }, `Error in ${what}.`);
      return async (req) => {
        const params = new URLSearchParams(req.query);
        const extractType = params.get('extract-archive');
        const deleting = params.has('bulk-delete') && (req.method === 'POST' || req.method === 'DELETE');
        if (extractType !== null && req.method === 'PUT' && !deleting) {
          const compression = ARCHIVE_TYPES[extractType.toLowerCase().replace(/^\.+|\.+$/g, '')];
          if (compression === undefined) return swiftError(400, req.method, 'Unsupported archive format');
          if (compression === 'bz2') return swiftError(400, req.method, 'Unsupported archive format: tar.bz2 is not supported here; use tar or tar.gz');
          const format = bestMatch(req.headers.accept, BULK_FORMATS);
          return bulkResponse(
            format,
            'extract',
            { 'Response Status': statusLine(201), 'Response Body': '', 'Number Files Created': 0 },
            options.heartbeatMs,
            (result, failures, progress) => extractArchive(next, options, ctx.config.max_file_size, req, compression, format, result, failures, progress),
            onError('extract archive', req),
          );
        }
        if (deleting) {
          const format = bestMatch(req.headers.accept, BULK_FORMATS);
          return bulkResponse(
            format,
            'delete',
            { 'Response Status': statusLine(200), 'Response Body': '', 'Number Deleted': 0, 'Number Not Found': 0 },
            options.heartbeatMs,
            (result, failures, progress) => bulkDelete(next, options, req, format, result, failures, progress),
            onError('bulk delete', req),
          );
        }
        return next(req);
      };
    },
  };
}

/** Swift's `bulk` middleware with Swift's default limits. */
export const bulk: Middleware = createBulk();
