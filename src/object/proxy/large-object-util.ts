import { Readable } from 'node:stream';
import { subrequest, type SwiftRequest, type SwiftResponse } from './pipeline.js';

/**
 * Small helpers shared by the copy, slo, dlo and versioned_writes
 * middlewares: Swift paths, bodies of subresponses, Swift's status lines and
 * error bodies, its URL quoting, and `Accept` negotiation.
 */

/** `/v1/<account>[/<container>[/<object>]]` taken apart (names percent-decoded, as in `SwiftRequest.path`). */
export interface SwiftPath {
  version: string;
  account: string;
  /** Absent for an account path. */
  container?: string;
  /** Absent for an account or container path; may contain `/`. */
  object?: string;
}

/**
 * Splits an API path as Swift's `split_path(path, 2, 4, rest_with_last=True)`
 * does for the proxy: null when it is not `/v1/<account>...` or a name is empty
 * (a trailing slash after the container, `/v1/a/c/`, is a container path).
 */
export function splitSwiftPath(path: string): SwiftPath | null {
  if (!path.startsWith('/')) return null;
  const parts = path.slice(1).split('/');
  const version = parts[0];
  if (version !== 'v1' && version !== 'v1.0') return null;
  const account = parts[1];
  if (!account) return null;
  if (parts.length === 2) return { version, account };
  const container = parts[2];
  if (!container) return parts.length === 3 ? { version, account } : null;
  if (parts.length === 3) return { version, account, container };
  const object = parts.slice(3).join('/');
  if (!object) return { version, account, container };
  return { version, account, container, object };
}

/** Swift's reason phrases (`swob.RESPONSE_REASONS`): the title and the explanation its default error bodies carry. */
const REASONS: Record<number, [string, string]> = {
  200: ['OK', ''],
  201: ['Created', ''],
  202: ['Accepted', 'The request is accepted for processing.'],
  204: ['No Content', ''],
  206: ['Partial Content', ''],
  304: ['Not Modified', ''],
  400: ['Bad Request', 'The server could not comply with the request since it is either malformed or otherwise incorrect.'],
  401: ['Unauthorized', 'This server could not verify that you are authorized to access the document you requested.'],
  403: ['Forbidden', 'Access was denied to this resource.'],
  404: ['Not Found', 'The resource could not be found.'],
  405: ['Method Not Allowed', 'The method is not allowed for this resource.'],
  406: ['Not Acceptable', 'The resource is not available in a format acceptable to your browser.'],
  408: ['Request Timeout', 'The server has waited too long for the request to be sent by the client.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  411: ['Length Required', 'Content-Length header required.'],
  412: ['Precondition Failed', 'A precondition for this request was not met.'],
  413: ['Request Entity Too Large', 'The body of your request was too large for this server.'],
  416: ['Requested Range Not Satisfiable', 'The Range requested is not available.'],
  422: ['Unprocessable Entity', 'Unable to process the contained instructions'],
  499: ['Client Disconnect', 'The client was disconnected during request.'],
  500: ['Internal Error', 'The server has either erred or is incapable of performing the requested operation.'],
  502: ['Bad Gateway', 'Bad gateway.'],
  503: ['Service Unavailable', 'The server is currently unavailable. Please try again at a later time.'],
  504: ['Gateway Timeout', 'A timeout has occurred speaking to a backend server.'],
  507: ['Insufficient Storage', 'There was not enough space to save the resource.'],
};

/** `404 Not Found`: Swift's status line, as bulk and SLO bodies report it. */
export function statusLine(status: number): string {
  const reason = REASONS[status]?.[0];
  return reason ? `${status} ${reason}` : String(status);
}

/**
 * A Swift error response: the given body (as `text/html; charset=UTF-8`
 * unless `contentType` says otherwise), or Swift's default
 * `<html><h1>Title</h1><p>Explanation</p></html>` body.
 */
export function errorResponse(status: number, body?: string, contentType = 'text/html; charset=UTF-8', headers: Record<string, string> = {}): SwiftResponse {
  let text = body;
  if (text === undefined) {
    const reason = REASONS[status];
    text = reason && reason[1] ? `<html><h1>${reason[0]}</h1><p>${reason[1]}</p></html>` : '';
  }
  const buffer = Buffer.from(text, 'utf8');
  return { status, headers: { 'content-type': contentType, 'content-length': String(buffer.length), ...headers }, body: buffer };
}

/** True for 2xx. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** The bytes of a subresponse's body as chunks, whatever form it has. */
export async function* bodyChunks(body: SwiftResponse['body']): AsyncGenerator<Buffer> {
  if (body === null) return;
  if (typeof body === 'string') {
    if (body.length) yield Buffer.from(body, 'utf8');
    return;
  }
  if (Buffer.isBuffer(body)) {
    if (body.length) yield body;
    return;
  }
  for await (const chunk of body) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
}

/** Thrown by `readBody` when a body is longer than allowed. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`body longer than ${limit} bytes`);
  }
}

/**
 * Reads a (small) body whole: manifests, listings, error bodies. Rejects with
 * `BodyTooLarge` past `limit` bytes, having destroyed the stream.
 */
export async function readBody(body: SwiftResponse['body'] | SwiftRequest['body'], limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  const iterator = bodyChunks(body);
  try {
    for await (const chunk of iterator) {
      length += chunk.length;
      if (length > limit) throw new BodyTooLarge(limit);
      chunks.push(chunk);
    }
  } catch (error) {
    if (body instanceof Readable) body.destroy();
    throw error;
  }
  return Buffer.concat(chunks, length);
}

/** Lets go of a subresponse whose body is not needed (destroying a stream closes its backend connection). */
export function closeBody(resp: SwiftResponse | { body: SwiftResponse['body'] }): void {
  if (resp.body instanceof Readable) {
    resp.body.on('error', () => undefined);
    resp.body.destroy();
  }
}

/** Reads and drops a short body (an error's), so that a kept-alive backend connection can be reused; long ones are destroyed. */
export async function drainBody(resp: SwiftResponse): Promise<void> {
  try {
    await readBody(resp.body, 64 * 1024);
  } catch {
    closeBody(resp);
  }
}

/** A body as a stream (what a PUT subrequest needs). */
export function toReadable(body: SwiftResponse['body']): Readable {
  if (body instanceof Readable) return body;
  if (body === null) return Readable.from([]);
  return Readable.from([typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

/** A Content-Length header as a number, or null when absent or not a number. */
export function contentLength(headers: Record<string, string>): number | null {
  const value = headers['content-length'];
  if (value === undefined || !/^\d+$/.test(value.trim())) return null;
  return Number(value);
}

/** Swift's `config_true_value`: true, 1, yes, on, t, y (any case). */
export function trueValue(value: string | undefined | null): boolean {
  return value !== undefined && value !== null && ['true', '1', 'yes', 'on', 't', 'y'].includes(value.trim().toLowerCase());
}

/** An ETag without its quotes (`swob.normalize_etag`). */
export function normalizeEtag(tag: string | undefined | null): string | null {
  if (tag === undefined || tag === null) return null;
  if (tag.length > 1 && tag.startsWith('"') && tag.endsWith('"')) return tag.slice(1, -1);
  return tag;
}

const UNRESERVED = /[A-Za-z0-9_.\-~]/;

/** Python's `urllib.parse.quote(text, safe)` (Swift's `quote`): UTF-8, `%XX` for everything but letters, digits, `_.-~` and `safe`. */
export function swiftQuote(text: string, safe = '/'): string {
  let out = '';
  for (const char of text) {
    if (UNRESERVED.test(char) || safe.includes(char)) {
      out += char;
      continue;
    }
    for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Python's `unquote`: decodes `%XX` sequences (as UTF-8), leaving malformed ones as they are. */
export function swiftUnquote(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    const bytes: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const hex = text.slice(i + 1, i + 3);
      if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(text[i] ?? '', 'utf8'));
      }
    }
    return Buffer.from(bytes).toString('utf8');
  }
}

/**
 * The best of `offers` for an `Accept` header, as swob's `accept.best_match`:
 * media ranges by quality (exact before wildcards), each tried against the
 * offers in order; the first offer when there is no header; null when nothing
 * offered matches or the header is malformed.
 */
export function acceptBestMatch(accept: string | undefined, offers: string[]): string | null {
  if (!accept || !accept.trim()) return offers[0] ?? null;
  const ranges: { type: string; subtype: string; q: number; exact: boolean }[] = [];
  for (const part of accept.split(',')) {
    const [mediaRange = '', ...params] = part.split(';');
    const match = /^\s*([^\s()<>@,;:"/[\]?={}]+)\/([^\s()<>@,;:"/[\]?={}]+)\s*$/.exec(mediaRange);
    if (!match) return null;
    let q = 1;
    for (const param of params) {
      if (!param.trim()) continue;
      const [key = '', value = ''] = param.split('=').map((s) => s.trim());
      if (key === 'q') q = Number(value);
    }
    if (!Number.isFinite(q)) return null;
    const type = (match[1] ?? '').toLowerCase();
    const subtype = (match[2] ?? '').toLowerCase();
    ranges.push({ type, subtype, q, exact: type !== '*' && subtype !== '*' });
  }
  ranges.sort((a, b) => b.q - a.q || Number(b.exact) - Number(a.exact));
  for (const range of ranges) {
    for (const offer of offers) {
      const [type, subtype] = offer.split('/');
      if ((range.type === '*' || range.type === type) && (range.subtype === '*' || range.subtype === subtype)) return offer;
    }
  }
  return null;
}

/**
 * A subrequest that skips authorization (Swift's `make_pre_authed_request`):
 * for what a middleware does on the user's behalf once it has checked the
 * user may (versioned writes' archive copies, container info).
 */
export function preAuthedRequest(req: SwiftRequest, method: string, path: string, options: { query?: string; headers?: Record<string, string>; body?: Readable | null; source?: string } = {}): SwiftRequest {
  const sub = subrequest(req, method, path, options);
  sub.env = { ...sub.env, authorizeOverride: true, authorize: () => null };
  return sub;
}

/** Headers with the given names (lower-case) removed. */
export function withoutHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) if (!names.includes(key)) out[key] = value;
  return out;
}

/** A Content-Type without Swift's internal `;swift_bytes=N` parameter (`clean_content_type`). */
export function cleanContentType(value: string): string {
  const index = value.lastIndexOf(';');
  if (index >= 0 && value.slice(index + 1).trimStart().startsWith('swift_bytes=')) return value.slice(0, index);
  return value;
}

/** The media type of a Content-Type, without parameters (swob's `content_type`). */
export function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]?.trim() ?? '';
}
