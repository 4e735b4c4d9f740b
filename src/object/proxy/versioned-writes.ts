import { Timestamp } from '../common.js';
import { getContainerInfo } from './info-cache.js';
import {
  closeBody,
  contentLength,
  drainBody,
  errorResponse,
  isSuccess,
  preAuthedRequest,
  readBody,
  splitSwiftPath,
  swiftUnquote,
  toReadable,
  type SwiftPath,
} from './large-object-util.js';
import type { Handler, Middleware, ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';

/**
 * Object versioning, Swift's legacy `versioned_writes` modes. A container
 * with `X-Versions-Location: <archive>` (stack mode) or `X-History-Location:
 * <archive>` (history mode) keeps each overwritten version in the archive
 * container as `<len(name) as 3 hex digits><name>/<timestamp>`. In stack
 * mode a DELETE brings the newest archived version back; in history mode a
 * DELETE archives the current version and leaves a delete marker. The
 * location is kept as container sysmeta; the archive container must exist
 * (412 otherwise), and the caller needs write access to the versioned
 * container (the archive writes are made on its behalf, as Swift does).
 */

/** Content-Type of the zero-byte delete markers of history mode. */
export const DELETE_MARKER_CONTENT_TYPE = 'application/x-deleted;swift_versions_deleted=1';
const CLIENT_VERSIONS_LOC = 'x-versions-location';
const CLIENT_HISTORY_LOC = 'x-history-location';
const SYSMETA_VERSIONS_LOC = 'x-container-sysmeta-versions-location';
const SYSMETA_VERSIONS_MODE = 'x-container-sysmeta-versions-mode';

/** Headers of an object that an archived (or restored) copy keeps. */
const KEPT_HEADERS = new Set(['content-type', 'content-length', 'etag', 'content-disposition', 'content-encoding', 'content-language', 'cache-control', 'expires', 'x-robots-tag', 'x-delete-at', 'x-static-large-object', 'x-object-manifest']);
const isKept = (name: string): boolean =>
  KEPT_HEADERS.has(name) || name.startsWith('x-object-meta-') || name.startsWith('x-object-sysmeta-') || name.startsWith('x-object-transient-sysmeta-');

/** An error response that stops the operation (Swift raises these). */
class Stop extends Error {
  constructor(readonly response: SwiftResponse) {
    super(`stopped with ${response.status}`);
  }
}

/** `<3 hex digits of the UTF-8 length><name>/`: where the versions of `name` are listed. */
export function versionsPrefix(objectName: string): string {
  return `${Buffer.byteLength(objectName, 'utf8').toString(16).padStart(3, '0')}${objectName}/`;
}

/** The archive name of the version of `objectName` written at `timestamp`. */
export function versionName(objectName: string, timestamp: string): string {
  return versionsPrefix(objectName) + Timestamp.parse(timestamp).internal;
}

async function checkResponse(resp: SwiftResponse): Promise<void> {
  if (isSuccess(resp.status)) return;
  await drainBody(resp);
  // A missing archive container or missing permissions: 412; anything else: 503.
  throw new Stop(errorResponse(resp.status >= 400 && resp.status < 500 ? 412 : 503));
}

function containerRequest(req: SwiftRequest, next: Handler): Promise<SwiftResponse> | SwiftResponse {
  const headers = { ...req.headers };
  if (headers[CLIENT_VERSIONS_LOC] !== undefined && headers[CLIENT_HISTORY_LOC] !== undefined) {
    if (!headers[CLIENT_HISTORY_LOC]) delete headers[CLIENT_HISTORY_LOC];
    else if (headers[CLIENT_VERSIONS_LOC]) {
      req.body?.resume();
      return errorResponse(400, `Only one of ${CLIENT_VERSIONS_LOC} or ${CLIENT_HISTORY_LOC} may be specified`, 'text/plain');
    } else delete headers[CLIENT_VERSIONS_LOC];
  }
  const location = headers[CLIENT_VERSIONS_LOC] ?? headers[CLIENT_HISTORY_LOC];
  if (location !== undefined) {
    const mode = headers[CLIENT_VERSIONS_LOC] !== undefined ? 'stack' : 'history';
    if (!location) {
      headers['x-remove-versions-location'] = 'x';
    } else {
      if (location.includes('/')) {
        req.body?.resume();
        return errorResponse(412, 'Container name cannot contain slashes');
      }
      headers[SYSMETA_VERSIONS_LOC] = location;
      headers[SYSMETA_VERSIONS_MODE] = mode;
      // Adding wins over removing in the same request.
      delete headers['x-remove-versions-location'];
      delete headers['x-remove-history-location'];
    }
    delete headers[CLIENT_VERSIONS_LOC];
    delete headers[CLIENT_HISTORY_LOC];
  }
  if (headers['x-remove-versions-location'] || headers['x-remove-history-location']) {
    headers[SYSMETA_VERSIONS_LOC] = '';
    headers[SYSMETA_VERSIONS_MODE] = '';
  }
  delete headers['x-remove-versions-location'];
  delete headers['x-remove-history-location'];
  return next({ ...req, headers }).then((resp) => {
    const stored = resp.headers[SYSMETA_VERSIONS_LOC];
    const out = { ...resp.headers };
    delete out[CLIENT_VERSIONS_LOC];
    delete out[CLIENT_HISTORY_LOC];
    if (stored) out[resp.headers[SYSMETA_VERSIONS_MODE] === 'history' ? CLIENT_HISTORY_LOC : CLIENT_VERSIONS_LOC] = stored;
    return { ...resp, headers: out };
  });
}

/** What one object request of a versioned container works with. */
interface Versioning {
  req: SwiftRequest;
  next: Handler;
  path: SwiftPath & { container: string; object: string };
  /** The archive container. */
  versions: string;
  writeAcl: string | null;
  maxFileSize: number;
}

/** The caller may write the versioned container (checked before anything is archived). */
async function authorizeWrite(v: Versioning): Promise<void> {
  if (v.req.env.authorizeOverride || !v.req.env.authorize) return;
  const denied = await v.req.env.authorize(v.req, v.writeAcl ? { write: v.writeAcl } : {});
  if (denied) throw new Stop(denied);
}

/** GETs an object on the caller's behalf (the newest replica); null when it does not exist. */
async function getObject(v: Versioning, objectPath: string): Promise<SwiftResponse | null> {
  const resp = await v.next(preAuthedRequest(v.req, 'GET', objectPath, { headers: { 'x-newest': 'true' }, source: 'VW' }));
  if (resp.status === 404) {
    await drainBody(resp);
    return null;
  }
  await checkResponse(resp);
  const length = contentLength(resp.headers);
  if (length === null || length > v.maxFileSize) {
    closeBody(resp);
    throw new Stop(errorResponse(413));
  }
  return resp;
}

/** PUTs the object `source` (a GET response) at `objectPath`, with its metadata, on the caller's behalf. */
async function putObject(v: Versioning, objectPath: string, source: SwiftResponse): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(source.headers)) if (isKept(name)) headers[name] = value;
  const sloSize = headers['x-object-sysmeta-slo-size'];
  if (sloSize && headers['content-type'] && !headers['content-type'].includes('swift_bytes=')) headers['content-type'] += `; swift_bytes=${sloSize}`;
  const body = toReadable(source.body);
  try {
    const resp = await v.next(preAuthedRequest(v.req, 'PUT', objectPath, { headers, body, source: 'VW' }));
    await checkResponse(resp);
    await drainBody(resp);
  } finally {
    if (!body.readableEnded) closeBody({ body });
  }
}

function currentPath(v: Versioning): string {
  return `/${v.path.version}/${v.path.account}/${v.path.container}/${v.path.object}`;
}

function archivePath(v: Versioning, name: string): string {
  return `/${v.path.version}/${v.path.account}/${v.versions}/${name}`;
}

/** Archives the current version, if there is one (before a PUT, or a DELETE in history mode). */
async function archiveCurrent(v: Versioning): Promise<void> {
  await authorizeWrite(v);
  const current = await getObject(v, currentPath(v));
  if (!current) return;
  const timestamp = current.headers['x-timestamp'] ?? String(Date.parse(current.headers['last-modified'] ?? '') / 1000);
  await putObject(v, archivePath(v, versionName(v.path.object, timestamp)), current);
}

/** The archived versions of the object, newest first (pages of the archive's listing, on the caller's behalf). */
async function* listVersions(v: Versioning): AsyncGenerator<{ name: string; content_type: string }> {
  const prefix = versionsPrefix(v.path.object);
  let marker = '';
  for (;;) {
    const query = new URLSearchParams({ format: 'json', prefix, reverse: 'on' });
    if (marker) query.set('marker', marker);
    const resp = await v.next(preAuthedRequest(v.req, 'GET', `/${v.path.version}/${v.path.account}/${v.versions}`, { query: query.toString(), source: 'VW' }));
    if (!isSuccess(resp.status)) {
      await drainBody(resp);
      if (resp.status === 404) return;
      throw new Stop(errorResponse(resp.status < 500 ? 412 : 500));
    }
    if (resp.status === 204) return;
    const page = JSON.parse((await readBody(resp.body)).toString('utf8')) as { name: string; content_type: string }[];
    if (!Array.isArray(page) || page.length === 0) return;
    for (const item of page) yield item;
    marker = page[page.length - 1]?.name ?? '';
  }
}

/** Copies the archived version `name` over the current object; false when that version is gone. */
async function restore(v: Versioning, name: string): Promise<boolean> {
  const version = await getObject(v, archivePath(v, name));
  if (!version) return false;
  await putObject(v, currentPath(v), version);
  return true;
}

/** DELETE in history mode: archive, write a delete marker, then delete. */
async function deleteHistory(v: Versioning): Promise<SwiftResponse> {
  await archiveCurrent(v);
  const marker = archivePath(v, versionName(v.path.object, Timestamp.now().internal));
  const resp = await v.next(preAuthedRequest(v.req, 'PUT', marker, { headers: { 'content-type': DELETE_MARKER_CONTENT_TYPE, 'content-length': '0' }, body: toReadable(null), source: 'VW' }));
  await checkResponse(resp);
  await drainBody(resp);
  return v.next(v.req);
}

/** DELETE in stack mode: the newest archived version replaces the current one and leaves the archive. */
async function deleteStack(v: Versioning): Promise<SwiftResponse> {
  const versions = listVersions(v);
  let target: SwiftRequest = v.req;
  let authorized = false;
  try {
    for await (const previous of versions) {
      if (!authorized) {
        await authorizeWrite(v);
        authorized = true;
      }
      if (previous.content_type === DELETE_MARKER_CONTENT_TYPE) {
        const head = await v.next(preAuthedRequest(v.req, 'HEAD', currentPath(v), { headers: { 'x-newest': 'true' }, source: 'VW' }));
        await drainBody(head);
        if (head.status !== 404) {
          // The current object was written after the delete marker: delete it, back to the marker.
          await checkResponse(head);
          break;
        }
        for await (const older of versions) {
          if (older.content_type === DELETE_MARKER_CONTENT_TYPE) break;
          if (!(await restore(v, older.name))) continue;
          const del = await v.next(preAuthedRequest(v.req, 'DELETE', archivePath(v, older.name), { source: 'VW' }));
          await drainBody(del);
          if (del.status !== 404) await checkResponse(del);
          break;
        }
        target = preAuthedRequest(v.req, 'DELETE', archivePath(v, previous.name), { source: 'VW' });
      } else {
        if (!(await restore(v, previous.name))) continue;
        target = preAuthedRequest(v.req, 'DELETE', archivePath(v, previous.name), { source: 'VW' });
      }
      break;
    }
  } finally {
    await versions.return(undefined);
  }
  if (target !== v.req) {
    const headers = { ...target.headers };
    delete headers['x-if-delete-at'];
    target.headers = headers;
  }
  return v.next(target);
}

/** What versioning needs to know of a container (from the proxy's container info). */
export interface VersioningInfo {
  sysmeta: Record<string, string>;
  /** A legacy `X-Versions-Location` kept as plain metadata. */
  versions: string | null;
  writeAcl: string | null;
}

/** Where the middleware reads container info (the proxy's cached `getContainerInfo`; tests give their own). */
export type VersioningInfoSource = (ctx: ProxyContext, req: SwiftRequest, account: string, container: string) => Promise<VersioningInfo>;

async function objectRequest(ctx: ProxyContext, infoSource: VersioningInfoSource, req: SwiftRequest, path: SwiftPath & { container: string; object: string }, next: Handler): Promise<SwiftResponse> {
  const info = await infoSource(ctx, req, path.account, path.container);
  let location = info.sysmeta['versions-location'] || info.versions || '';
  const mode = info.sysmeta['versions-mode'] || 'stack';
  location = swiftUnquote(location).split('/')[0] ?? '';
  if (!location) return next(req);
  const v: Versioning = { req, next, path, versions: location, writeAcl: info.writeAcl, maxFileSize: ctx.config.max_file_size };
  try {
    if (req.method === 'PUT') {
      await archiveCurrent(v);
      return await next(req);
    }
    return await (mode === 'history' ? deleteHistory(v) : deleteStack(v));
  } catch (error) {
    if (error instanceof Stop) {
      req.body?.resume();
      return error.response;
    }
    throw error;
  }
}

/** The `versioned_writes` middleware reading container info from `infoSource`. */
export function createVersionedWrites(infoSource: VersioningInfoSource): Middleware {
  return {
    name: 'versioned_writes',
    wrap(next: Handler, ctx: ProxyContext): Handler {
      ctx.registerInfo('versioned_writes', { allowed_flags: [CLIENT_VERSIONS_LOC, CLIENT_HISTORY_LOC] });
      return async (req) => {
        const path = splitSwiftPath(req.path);
        if (!path || path.container === undefined) return next(req);
        if (path.object === undefined) return containerRequest(req, next);
        if (req.method === 'PUT' || req.method === 'DELETE') return objectRequest(ctx, infoSource, req, path as SwiftPath & { container: string; object: string }, next);
        return next(req);
      };
    },
  };
}

/** The `versioned_writes` middleware (`/info`: `versioned_writes` with its `allowed_flags`). */
export const versionedWrites: Middleware = createVersionedWrites(getContainerInfo);
