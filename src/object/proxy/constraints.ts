import mime from 'mime-types';
import { CONSTRAINTS } from '../common.js';
import type { SwiftRequest, SwiftResponse } from './pipeline.js';
import { fail, httpError, plainError } from './responses.js';

/**
 * Swift's request checks (`constraints.py`, `request_helpers.py`): paths,
 * names, metadata, object creation and expiry headers, listing parameters.
 * Each gives Swift's status and message.
 */

/** The parts of a Swift API path. */
export interface SwiftPath {
  version: string;
  account: string | null;
  container: string | null;
  object: string | null;
}

/**
 * Splits `/v1/a/c/o/with/slashes` as Swift's `split_path(path, 1, 4, True)`:
 * the object keeps its slashes; an empty segment before the last one is
 * invalid (null is returned: Swift answers 404).
 */
export function splitSwiftPath(path: string): SwiftPath | null {
  if (!path.startsWith('/')) return null;
  // Python's path.split('/', 4): at most five parts, the last keeps its slashes.
  const segs: string[] = [];
  let rest = path.slice(1);
  while (segs.length < 3) {
    const slash = rest.indexOf('/');
    if (slash < 0) break;
    segs.push(rest.slice(0, slash));
    rest = rest.slice(slash + 1);
  }
  segs.push(rest);
  if (segs[0] === '') return null;
  // Every segment but the last must be non-empty.
  for (let i = 0; i < segs.length - 1; i++) if (segs[i] === '') return null;
  return { version: segs[0] ?? '', account: segs[1] ?? null, container: segs[2] ?? null, object: segs[3] ?? null };
}

/** Whether `v1` or `v1.0`. */
export function validApiVersion(version: string): boolean {
  return version === 'v1' || version === 'v1.0';
}

/** Swift's `check_utf8` on a decoded string: non-empty, no NUL, no lone surrogates. */
export function checkUtf8(text: string): boolean {
  if (!text) return false;
  if (text.includes('\0')) return false;
  return !/[\ud800-\udfff]/.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''));
}

/**
 * Header names and values arrive as latin-1 strings of their bytes (as
 * Swift's WSGI strings): their length is their size in bytes, and text in
 * them is UTF-8 when the bytes decode as such.
 */
const bytes = (text: string): number => text.length;

/** Whether a header value (latin-1 string of its bytes) is valid UTF-8 text without NUL. */
export function headerIsUtf8(text: string): boolean {
  if (!text || text.includes('\0')) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(text, 'latin1'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Swift's `check_metadata`: every header value at most `max_header_size`;
 * for `x-<type>-meta-*`: a non-empty name of at most 128 bytes, values at
 * most 256 bytes, at most 90 items and 4096 bytes in all. Null when fine.
 */
export function checkMetadata(headers: Record<string, string>, type: 'account' | 'container' | 'object'): SwiftResponse | null {
  const prefix = `x-${type}-meta-`;
  let count = 0;
  let size = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (bytes(value) > CONSTRAINTS.max_header_size) return plainError(400, `Header value too long: ${name.slice(0, CONSTRAINTS.max_meta_name_length)}`);
    if (!name.startsWith(prefix)) continue;
    const key = name.slice(prefix.length);
    if (!key) return plainError(400, 'Metadata name cannot be empty');
    if (type !== 'object' && (!headerIsUtf8(key) || (value && !headerIsUtf8(value)))) return plainError(400, 'Metadata must be valid UTF-8');
    count++;
    size += bytes(key) + bytes(value);
    if (bytes(key) > CONSTRAINTS.max_meta_name_length) return plainError(400, `Metadata name too long: ${prefix}${key}`);
    if (bytes(value) > CONSTRAINTS.max_meta_value_length) return plainError(400, `Metadata value longer than ${CONSTRAINTS.max_meta_value_length}: ${prefix}${key}`);
    if (count > CONSTRAINTS.max_meta_count) return plainError(400, `Too many metadata items; max ${CONSTRAINTS.max_meta_count}`);
    if (size > CONSTRAINTS.max_meta_overall_size) return plainError(400, `Total metadata too large; max ${CONSTRAINTS.max_meta_overall_size}`);
  }
  return null;
}

/** The body length a request announces: its Content-Length, or null when chunked; throws 400 on a bad value, 501 on an unknown Transfer-Encoding. */
export function messageLength(headers: Record<string, string>): number | null {
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    const codings = te.split(',').map((t) => t.trim().toLowerCase());
    if (codings.some((c) => c !== 'chunked' && c !== 'identity')) fail(501, `Invalid Transfer-Encoding header value: '${te}'`, { plain: true });
    if (codings.at(-1) === 'chunked') return null;
  }
  const cl = headers['content-length'];
  if (cl === undefined) return null;
  if (!/^\d+$/.test(cl.trim())) fail(400, `Invalid Content-Length header value: '${cl}'`, { plain: true });
  return Number(cl.trim());
}

/** Whether the request body is chunked. */
export function isChunked(headers: Record<string, string>): boolean {
  return (headers['transfer-encoding'] ?? '').split(',').at(-1)?.trim().toLowerCase() === 'chunked';
}

/**
 * Swift's `check_object_creation` for a PUT: size (413), length or chunked
 * (411), name length, Content-Type present and valid, expiry headers,
 * metadata. Null when fine.
 */
export function checkObjectCreation(req: SwiftRequest, objectName: string, maxFileSize: number): SwiftResponse | null {
  const length = messageLength(req.headers);
  if (length !== null && length > maxFileSize) return plainError(413, 'Your request is too large.');
  if (req.headers['content-length'] === undefined && !isChunked(req.headers)) return plainError(411, 'Missing Content-Length header.');
  const nameLength = Buffer.byteLength(objectName);
  if (nameLength > CONSTRAINTS.max_object_name_length) {
    return plainError(400, `Object name length of ${nameLength} longer than ${CONSTRAINTS.max_object_name_length}`);
  }
  const contentType = req.headers['content-type'];
  if (contentType === undefined) return plainError(400, 'No content type');
  if (!headerIsUtf8(contentType)) return plainError(400, 'Invalid Content-Type');
  return checkMetadata(req.headers, 'object');
}

/**
 * Swift's `check_content_type`: a client may not send `swift_*` Content-Type
 * parameters (Swift keeps its own there, e.g. `swift_bytes`). Checked at the
 * gatekeeper, on what the client sent, so that middlewares below may set them.
 */
export function checkClientContentType(contentType: string | undefined): SwiftResponse | null {
  if (!contentType?.includes(';')) return null;
  const swiftParam = contentType
    .split(';')
    .slice(1)
    .some((p) => p.trimStart().startsWith('swift_'));
  return swiftParam ? httpError(400, 'Invalid Content-Type, swift_* is not a valid parameter name.') : null;
}

/** `%010d` of a clamped delete-at time, as Swift's `normalize_delete_at_timestamp`. */
export function normalizeDeleteAt(seconds: number): string {
  return String(Math.floor(Math.min(Math.max(0, seconds), 9999999999))).padStart(10, '0');
}

/**
 * Swift's `check_delete_headers`: turns `X-Delete-After` into `X-Delete-At`
 * (relative to `now`, in seconds) and checks both are integers in the future
 * (400 `Non-integer X-Delete-After`, `X-Delete-After in past`, ...).
 * Rewrites `headers` in place.
 */
export function checkDeleteHeaders(headers: Record<string, string>, now: number): void {
  const after = headers['x-delete-after'];
  if (after !== undefined) {
    if (!/^\s*[+-]?\d+\s*$/.test(after)) fail(400, 'Non-integer X-Delete-After', { plain: true });
    const at = normalizeDeleteAt(now + Number(after));
    if (Number(at) <= now) fail(400, 'X-Delete-After in past', { plain: true });
    headers['x-delete-at'] = at;
    delete headers['x-delete-after'];
  }
  const at = headers['x-delete-at'];
  if (at !== undefined) {
    if (!/^\s*[+-]?\d+\s*$/.test(at)) fail(400, 'Non-integer X-Delete-At', { plain: true });
    const value = Number(normalizeDeleteAt(Number(at)));
    if (value <= now && !/^(t|true|yes|on|1)$/i.test(headers['x-backend-replication'] ?? '')) fail(400, 'X-Delete-At in past', { plain: true });
    headers['x-delete-at'] = normalizeDeleteAt(value);
  }
}


/** A query parameter, percent-decoded as UTF-8 (400 `"<name>" parameter not valid UTF-8`); undefined when absent. */
export function getParam(query: string, name: string): string | undefined {
  if (!query) return undefined;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const key = decodeQueryPart(eq < 0 ? pair : pair.slice(0, eq));
    if (key !== name) continue;
    const raw = eq < 0 ? '' : pair.slice(eq + 1);
    const value = decodeQueryPart(raw);
    if (value === null) fail(400, `"${name}" parameter not valid UTF-8`, { plain: true });
    return value;
  }
  return undefined;
}

/** Percent-decodes one `application/x-www-form-urlencoded` part strictly as UTF-8 (`+` is a space); null when not UTF-8. */
export function decodeQueryPart(part: string): string | null {
  const text = part.replaceAll('+', ' ');
  if (!text.includes('%')) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && i + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(text[i] ?? '', 'utf8')) bytes.push(b);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

/** Replaces (or adds) query parameters, keeping the others in order. */
export function setParams(query: string, params: Record<string, string | null>): string {
  const kept = query
    ? query.split('&').filter((pair) => {
        if (!pair) return false;
        const eq = pair.indexOf('=');
        const key = decodeQueryPart(eq < 0 ? pair : pair.slice(0, eq));
        return key === null || !(key in params);
      })
    : [];
  for (const [key, value] of Object.entries(params)) {
    if (value !== null) kept.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  return kept.join('&');
}

/** Swift's listing checks: parameters valid UTF-8, `limit` at most 10000 (412 `Maximum limit is 10000`), a one-character `delimiter` (412 `Bad delimiter`). */
export function validateListingParams(query: string, max: number): void {
  for (const name of ['marker', 'end_marker', 'prefix', 'delimiter', 'path', 'format', 'reverse', 'states', 'includes']) getParam(query, name);
  const limit = getParam(query, 'limit');
  if (limit && /^\d+$/.test(limit) && Number(limit) > max) fail(412, `Maximum limit is ${max}`);
  const delimiter = getParam(query, 'delimiter');
  if (delimiter && ([...delimiter].length > 1 || (delimiter.codePointAt(0) ?? 0) > 254)) fail(412, 'Bad delimiter');
}

/** Content type by the object name's extension (Python's `mimetypes.guess_type` role); `application/octet-stream` when unknown. */
export function guessContentType(objectName: string): string {
  const base = objectName.split('/').at(-1) ?? '';
  const type = base.includes('.') ? mime.lookup(base) : false;
  return type || 'application/octet-stream';
}

/** Swift's `config_true_value`. */
export function trueValue(value: string | undefined): boolean {
  return value !== undefined && /^(true|1|yes|on|t|y)$/i.test(value.trim());
}
