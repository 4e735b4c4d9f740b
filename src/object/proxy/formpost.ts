import { Readable } from 'node:stream';
import { ByteReader } from './byte-reader.js';
import { bodyText, isApiVersion, isSuccess, statusLine } from './feature-util.js';
import { ALLOWED_DIGESTS, DEPRECATED_DIGESTS, formPostSignature, isAllowedDigest, parseSignature, sameSignature } from './hmac-signature.js';
import { MimeInvalid, parseContentDisposition, readMultipartForm } from './multipart-form.js';
import { subrequest, type Handler, type Middleware, type ProxyContext, type SwiftRequest, type SwiftResponse } from './pipeline.js';
import { accountInfo, containerInfo, tempUrlKeys } from './resource-info.js';

/**
 * Swift's `formpost`: a browser's `multipart/form-data` POST to
 * `/v1/<account>/<container>[/<prefix>]` whose `signature` field is an HMAC
 * (with a Temp-URL key) of the path, `redirect`, `max_file_size`,
 * `max_file_count` and `expires` stores each file of the form as
 * `<prefix><filename>`, then answers with a 303 to `redirect` (with
 * `status` and `message` in its query) or with a plain-text status.
 * Fields must come before the files: fields after a file are not seen.
 */

/** The largest field value kept; the rest of a longer one is dropped. */
export const MAX_VALUE_LENGTH = 4096;

class FormInvalid extends Error {}
class FormUnauthorized extends Error {}
/** A file was larger than `max_file_size`. */
class FileTooLarge extends Error {}

/** Python's `str.title()`: the first letter of every run of letters upper-case, the rest lower-case. */
export function titleCase(text: string): string {
  return text.replace(/\p{L}+/gu, (word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase());
}

/**
 * The part's bytes as the PUT reads them, failing once more than `max` have
 * been read (Swift's `_CappedFileLikeObject`): bytes are pulled only as the
 * PUT asks, so a PUT that answers without reading never trips the cap.
 */
function capped(body: Readable, max: number): { stream: Readable; exceeded: () => boolean } {
  let received = 0;
  let exceeded = false;
  async function* pull(): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      received += (chunk as Buffer).length;
      if (received > max) {
        exceeded = true;
        throw new FileTooLarge('max_file_size exceeded');
      }
      yield chunk as Buffer;
    }
  }
  const stream = Readable.from(pull(), { objectMode: false, highWaterMark: 64 * 1024 });
  // The PUT sees errors through its own listeners; this one keeps an error
  // after the PUT has stopped reading (it answered early) from going unheard.
  stream.on('error', () => undefined);
  return { stream, exceeded: () => exceeded };
}

/** Python's `int()` of a form value: optional sign and digits, spaces around. */
function parseInteger(value: string | undefined): number | null {
  if (value === undefined || value === '') return 0;
  return /^\s*[+-]?\d+\s*$/.test(value) ? Number.parseInt(value.trim(), 10) : null;
}

/** Keeps at most `max` bytes of a field and drains the rest. */
async function readField(body: Readable, max: number): Promise<Buffer> {
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < max) {
      const part = buf.subarray(0, max - size);
      kept.push(part);
      size += part.length;
    }
  }
  return Buffer.concat(kept, size);
}

/** The keys of the account and the container; none when the path does not name a container. */
async function formKeys(ctx: ProxyContext, req: SwiftRequest): Promise<string[]> {
  const parts = req.path.split('/');
  // ['', version, account, container, ...]
  if (parts.length < 4 || parts[0] !== '' || !isApiVersion(parts[1] ?? '') || !parts[2] || !parts[3]) return [];
  const account = parts[2];
  const container = parts[3];
  const [acc, cont] = await Promise.all([accountInfo(ctx, req, account), containerInfo(ctx, req, account, container)]);
  return [...(isSuccess(acc.status) ? tempUrlKeys(acc.meta) : []), ...(isSuccess(cont.status) ? tempUrlKeys(cont.meta) : [])];
}

/** Checks the form's signature and expiry, then stores one file through the rest of the pipeline. */
async function storeFile(next: Handler, req: SwiftRequest, attributes: Record<string, string>, body: Readable, keys: string[]): Promise<SwiftResponse> {
  if (keys.length === 0) throw new FormUnauthorized('invalid signature');
  const maxFileSize = parseInteger(attributes.max_file_size);
  if (maxFileSize === null) throw new FormInvalid('max_file_size not an integer');
  let path = req.path;
  if (!path.endsWith('/') && (path.match(/\//g) ?? []).length < 4) path += '/';
  path += attributes.filename || 'filename';
  const headers: Record<string, string> = { 'transfer-encoding': 'chunked' };
  if (attributes.x_delete_at !== undefined) {
    const at = parseInteger(attributes.x_delete_at);
    if (at === null || attributes.x_delete_at === '') throw new FormInvalid('x_delete_at not an integer: Unix timestamp required.');
    headers['x-delete-at'] = String(at);
  }
  if (attributes.x_delete_after !== undefined) {
    const after = parseInteger(attributes.x_delete_after);
    if (after === null || attributes.x_delete_after === '') throw new FormInvalid('x_delete_after not an integer: Number of seconds required.');
    headers['x-delete-after'] = String(after);
  }
  if (attributes['content-type'] !== undefined) headers['content-type'] = attributes['content-type'] || 'application/octet-stream';
  if (attributes['content-encoding'] !== undefined) headers['content-encoding'] = attributes['content-encoding'];
  const expires = parseInteger(attributes.expires);
  if (expires === null) throw new FormInvalid('expired not an integer');
  if (expires < Date.now() / 1000) throw new FormUnauthorized('form expired');

  const parsed = parseSignature(attributes.signature ?? '');
  if (!parsed || !isAllowedDigest(parsed.digest)) throw new FormUnauthorized('invalid signature');
  let valid = false;
  for (const key of keys) {
    const expected = formPostSignature(parsed.digest, key, req.path, attributes.redirect ?? '', attributes.max_file_size || '0', attributes.max_file_count || '0', attributes.expires || '0');
    if (sameSignature(expected, parsed.hex)) valid = true;
  }
  if (!valid) throw new FormUnauthorized('invalid signature');

  const file = capped(body, maxFileSize);
  const sub = subrequest(req, 'PUT', path, { headers, body: file.stream, source: 'FP' });
  // The signature stands in for a token (Swift's pre-authorized environment).
  sub.env = { ...sub.env, identity: null, authorize: () => null, authorizeOverride: true };
  const resp = await next(sub);
  if (file.exceeded()) {
    if (resp.body && typeof resp.body === 'object' && !Buffer.isBuffer(resp.body)) resp.body.resume();
    throw new FileTooLarge('max_file_size exceeded');
  }
  return resp;
}

/** Reads the form and stores its files: the response Swift's formpost gives. */
async function translateForm(next: Handler, ctx: ProxyContext, req: SwiftRequest, reader: ByteReader, boundary: string): Promise<SwiftResponse> {
  const keys = await formKeys(ctx, req);
  const attributes: Record<string, string> = {};
  let status = 0;
  let message = '';
  let subHeaders: Record<string, string> = {};
  let subBody = '';
  let fileCount = 0;
  for await (const part of readMultipartForm(reader, boundary)) {
    const [disposition, attrs] = parseContentDisposition(part.headers['content-disposition'] ?? '');
    if (disposition === 'form-data' && attrs.filename) {
      fileCount++;
      const maxFileCount = parseInteger(attributes.max_file_count);
      if (maxFileCount === null) throw new FormInvalid('max_file_count not an integer');
      if (fileCount > maxFileCount) {
        status = 400;
        message = 'max file count exceeded';
        break;
      }
      const fileAttributes: Record<string, string> = { ...attributes, filename: attrs.filename };
      const partType = part.headers['content-type'];
      if (attributes['content-type'] === undefined && partType !== undefined) fileAttributes['content-type'] = partType || 'application/octet-stream';
      const partEncoding = part.headers['content-encoding'];
      if (attributes['content-encoding'] === undefined && partEncoding !== undefined) fileAttributes['content-encoding'] = partEncoding;
      const resp = await storeFile(next, req, fileAttributes, part.body, keys);
      status = resp.status;
      subHeaders = resp.headers;
      subBody = await bodyText(resp.body);
      if (!isSuccess(status)) break;
    } else {
      const value = (await readField(part.body, MAX_VALUE_LENGTH)).toString('utf8');
      if (attrs.name !== undefined) attributes[attrs.name.toLowerCase()] = value.replace(/[\r\n-]+$/, '');
    }
  }
  if (!status) {
    status = 400;
    message = 'no files to process';
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(subHeaders)) if (name.startsWith('access-control')) headers[name] = value;

  const redirect = attributes.redirect;
  if (!redirect) {
    let body = statusLine(status);
    if (message) body += `\r\nFormPost: ${titleCase(message)}`;
    if (!isSuccess(status) && subBody) body = subBody;
    return { status, headers: { ...headers, 'content-type': 'text/plain' }, body };
  }
  const location = `${redirect}${redirect.includes('?') ? '&' : '?'}status=${encodeURIComponent(String(status))}&message=${encodeURIComponent(message)}`;
  const body = `<html><body><p><a href="${location}">Click to continue...</a></p></body></html>`;
  return { status: 303, headers: { ...headers, location, 'content-type': 'text/html; charset=UTF-8' }, body };
}

function plain400(text: string): SwiftResponse {
  return { status: 400, headers: { 'content-type': 'text/plain' }, body: text };
}

/** Swift's `formpost` middleware. */
export const formpost: Middleware = {
  name: 'formpost',
  wrap(next, ctx) {
    ctx.registerInfo('formpost', { allowed_digests: [...ALLOWED_DIGESTS], deprecated_digests: [...DEPRECATED_DIGESTS] });
    return async (req) => {
      if (req.method !== 'POST') return next(req);
      const [type, attrs] = parseContentDisposition(req.headers['content-type'] ?? '');
      if (type !== 'multipart/form-data' || attrs.boundary === undefined) return next(req);
      const reader = new ByteReader(req.body ?? Readable.from([]));
      try {
        return await translateForm(next, ctx, req, reader, attrs.boundary);
      } catch (err) {
        if (err instanceof MimeInvalid) return plain400('FormPost: invalid starting boundary');
        if (err instanceof FormInvalid || err instanceof FileTooLarge) return plain400(`FormPost: ${err.message}`);
        if (err instanceof FormUnauthorized) return { status: 401, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: `FormPost: ${titleCase(err.message)}` };
        throw err;
      } finally {
        // Whatever the form still holds is read and dropped, so the connection stays usable.
        void reader.skip(Number.MAX_SAFE_INTEGER).catch(() => 0);
      }
    };
  },
};
