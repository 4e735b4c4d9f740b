import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pythonJson, parseStoredManifest, SLO_LIMITS, type StoredSegment } from './slo-manifest.js';
import { acceptBestMatch, drainBody, isSuccess, readBody, statusLine, swiftQuote, trueValue, type SwiftPath } from './large-object-util.js';
import { subrequest, type Handler, type SwiftRequest, type SwiftResponse } from './pipeline.js';

/**
 * `DELETE ?multipart-manifest=delete`: deletes the segments of a static large
 * object (nested manifests with their segments first), then the manifest,
 * and reports as bulk delete does (200 with `Number Deleted`, `Number Not
 * Found`, `Errors`, `Response Status`, `Response Body` in the `Accept`ed
 * format; whitespace every 10 s while it works, to keep the connection open).
 */

/** The formats bulk-style responses come in. */
export const BULK_FORMATS = ['text/plain', 'application/json', 'application/xml', 'text/xml'];

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Swift's `get_heartbeat_response_body`: the final body of bulk, SLO and copy responses in one of the bulk formats. */
export function bulkResponseBody(format: string | null, data: Record<string, string | number>, errors: [string, string][], rootTag: string): string {
  if (format === 'application/json') return pythonJson({ ...data, Errors: errors });
  const keys = Object.keys(data).sort();
  if (format && format.endsWith('/xml')) {
    let out = `<${rootTag}>\n`;
    for (const key of keys) {
      const tag = key.replace(/ /g, '_').toLowerCase();
      out += `<${tag}>${xmlEscape(String(data[key]))}</${tag}>\n`;
    }
    out += '<errors>\n';
    for (const [name, status] of errors) out += `<object><name>${xmlEscape(name)}</name><status>${xmlEscape(status)}</status></object>\n`;
    return `${out}</errors>\n</${rootTag}>\n`;
  }
  let out = '';
  for (const key of keys) out += `${key}: ${String(data[key])}\n`;
  out += 'Errors:\n';
  for (const [name, status] of errors) out += `${name}, ${status}\n`;
  return out;
}

/** Why a manifest could not be read for deletion (Swift's `get_slo_segments` errors). */
class ManifestLoadError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface DeleteTally {
  deleted: number;
  notFound: number;
  errors: [string, string][];
  badGateway: boolean;
}

/** Reads the stored segments of the SLO `/container/object`, as the user (read access needed). */
async function loadSegments(req: SwiftRequest, next: Handler, version: string, account: string, name: string): Promise<StoredSegment[]> {
  const path = `/${version}/${account}/${name.replace(/^\/+/, '')}`;
  // Only the last byte of an object that is not a manifest is worth fetching.
  let resp = await next(subrequest(req, 'GET', path, { query: 'multipart-manifest=get', headers: { range: 'bytes=-1', 'x-backend-ignore-range-if-metadata-present': 'x-static-large-object' }, source: 'SLO' }));
  let body: Buffer | null = null;
  if (isSuccess(resp.status) && trueValue(resp.headers['x-static-large-object'])) {
    body = await readBody(resp.body, SLO_LIMITS.max_manifest_size * 2);
    if (resp.status === 206 || body.length === 1) {
      // The storage servers answered the range: fetch the manifest whole.
      resp = await next(subrequest(req, 'GET', path, { query: 'multipart-manifest=get', source: 'SLO' }));
      body = isSuccess(resp.status) ? await readBody(resp.body, SLO_LIMITS.max_manifest_size * 2) : null;
    }
  }
  if (isSuccess(resp.status)) {
    if (!trueValue(resp.headers['x-static-large-object']) || body === null) {
      await drainBody(resp);
      throw new ManifestLoadError(400, 'Not an SLO manifest');
    }
    try {
      return parseStoredManifest(body);
    } catch {
      throw new ManifestLoadError(500, 'Unable to load SLO manifest');
    }
  }
  await drainBody(resp);
  if (resp.status === 404) throw new ManifestLoadError(404, 'SLO manifest not found');
  if (resp.status === 401) throw new ManifestLoadError(401, '401 Unauthorized');
  throw new ManifestLoadError(500, 'Unable to load SLO manifest or segment.');
}

async function deleteOne(req: SwiftRequest, next: Handler, version: string, account: string, name: string, tally: DeleteTally): Promise<void> {
  const path = `/${version}/${account}/${name.replace(/^\/+/, '')}`;
  const resp = await next(subrequest(req, 'DELETE', path, { source: 'SLO' }));
  await drainBody(resp);
  if (isSuccess(resp.status)) tally.deleted += 1;
  else if (resp.status === 404) tally.notFound += 1;
  else {
    if (resp.status >= 500) tally.badGateway = true;
    tally.errors.push([swiftQuote(name), statusLine(resp.status)]);
  }
}

/** Deletes the segments of manifest `name` (nested manifests depth first, a few at a time), then the manifest itself. */
async function deleteManifest(req: SwiftRequest, next: Handler, version: string, account: string, name: string, tally: DeleteTally, budget: { segments: number }): Promise<void> {
  let segments: StoredSegment[];
  try {
    segments = await loadSegments(req, next, version, account, name);
  } catch (error) {
    if (!(error instanceof ManifestLoadError)) throw error;
    if (error.code === 404) tally.notFound += 1;
    else tally.errors.push([swiftQuote(name), error.message]);
    return;
  }
  budget.segments -= segments.length;
  if (budget.segments < 0) throw new ManifestLoadError(400, 'Too many buffered slo segments to delete.');
  const leaves: string[] = [];
  for (const segment of segments) {
    if ('data' in segment) continue;
    if (segment.sub_slo) await deleteManifest(req, next, version, account, segment.name, tally, budget);
    else leaves.push(segment.name);
  }
  const concurrency = 4;
  for (let i = 0; i < leaves.length; i += concurrency) {
    await Promise.all(leaves.slice(i, i + concurrency).map((leaf) => deleteOne(req, next, version, account, leaf, tally)));
  }
  await deleteOne(req, next, version, account, name, tally);
}

/**
 * Handles `DELETE ?multipart-manifest=delete` of `path` (an object path): the
 * response is 200 at once, its body the outcome.
 */
export function handleMultipartDelete(req: SwiftRequest, path: SwiftPath & { container: string; object: string }, next: Handler): SwiftResponse {
  const format = acceptBestMatch(req.headers['accept'], BULK_FORMATS);
  req.body?.resume();
  const tally: DeleteTally = { deleted: 0, notFound: 0, errors: [], badGateway: false };
  const result: Record<string, string | number> = { 'Response Status': '200 OK', 'Response Body': '', 'Number Deleted': 0, 'Number Not Found': 0 };
  const work = (async () => {
    try {
      if (!format) {
        result['Response Status'] = statusLine(406);
        return;
      }
      await deleteManifest(req, next, path.version, path.account, `/${path.container}/${path.object}`, tally, { segments: SLO_LIMITS.max_manifest_segments * 10 });
      if (tally.errors.length) result['Response Status'] = statusLine(tally.badGateway ? 502 : 400);
      else if (!tally.deleted && !tally.notFound) {
        result['Response Status'] = statusLine(400);
        result['Response Body'] = 'Invalid bulk delete.';
      }
    } catch (error) {
      if (error instanceof ManifestLoadError) {
        result['Response Status'] = statusLine(error.code);
        result['Response Body'] = error.message;
      } else {
        result['Response Status'] = statusLine(500);
      }
    }
    result['Number Deleted'] = tally.deleted;
    result['Number Not Found'] = tally.notFound;
  })();
  async function* body(): AsyncGenerator<Buffer> {
    let separator = '';
    for (;;) {
      const ticker = new AbortController();
      const done = await Promise.race([work.then(() => true), sleep(SLO_LIMITS.yield_frequency * 1000, false, { signal: ticker.signal }).catch(() => false)]);
      ticker.abort();
      if (done) break;
      yield Buffer.from(format?.endsWith('/xml') && !separator ? '<?xml version="1.0" encoding="UTF-8"?>\n' : ' ');
      separator = '\r\n\r\n';
    }
    yield Buffer.from(separator + bulkResponseBody(format, result, tally.errors, 'delete'), 'utf8');
  }
  return { status: 200, headers: { 'content-type': format ?? 'text/html; charset=UTF-8' }, body: Readable.from(body()) };
}
