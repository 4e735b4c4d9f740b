import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CONSTRAINTS, Timestamp } from '../common.js';

/**
 * What the three storage servers share: Swift's plain error bodies, path
 * parsing, the device check, timestamps and metadata checks.
 */

const REASONS: Record<number, [string, string]> = {
  202: ['Accepted', 'The request is accepted for processing.'],
  400: ['Bad Request', 'The server could not comply with the request since it is either malformed or otherwise incorrect.'],
  404: ['Not Found', 'The resource could not be found.'],
  405: ['Method Not Allowed', 'The method is not allowed for this resource.'],
  408: ['Request Timeout', 'The server has waited too long for the request to be sent by the client.'],
  409: ['Conflict', 'There was a conflict when trying to complete your request.'],
  411: ['Length Required', 'Content-Length header required.'],
  412: ['Precondition Failed', 'A precondition for this request was not met.'],
  413: ['Request Entity Too Large', 'The body of your request was too large for this server.'],
  416: ['Requested Range Not Satisfiable', 'The Range requested is not available.'],
  422: ['Unprocessable Entity', 'Unable to process the contained instructions'],
  499: ['Client Disconnect', 'The client was disconnected during request.'],
  500: ['Internal Error', 'The server has either erred or is incapable of performing the requested operation.'],
  501: ['Not Implemented', 'The requested method is not implemented by this server.'],
  503: ['Service Unavailable', 'The server is currently unavailable. Please try again at a later time.'],
  507: ['Insufficient Storage', 'There was not enough space to save the resource. Drive: %drive%'],
};

/** Swift's default body of an error status (`<html><h1>Not Found</h1><p>...</p></html>`), or '' for statuses without one. */
export function defaultBody(status: number, drive = 'unknown'): string {
  const reason = REASONS[status];
  if (!reason) return '';
  return `<html><h1>${reason[0]}</h1><p>${reason[1].replace('%drive%', drive)}</p></html>`;
}

/** A response of a storage server before it is written. */
export interface ServerResponse {
  status: number;
  headers: Record<string, string | number>;
  /** A Buffer or string is sent with its length; a stream is piped (its length must be in the headers). */
  body?: Buffer | string | Readable | null;
}

/** An error response: Swift's default html body unless `body` is given (then `text/plain`). */
export function errorResponse(status: number, body?: string, headers: Record<string, string | number> = {}): ServerResponse {
  if (body !== undefined) return { status, headers: { 'content-type': 'text/plain; charset=UTF-8', ...headers }, body };
  return { status, headers: { 'content-type': 'text/html; charset=UTF-8', ...headers }, body: defaultBody(status) };
}

/** Writes a `ServerResponse`; a HEAD keeps its Content-Length but sends no body. */
export function writeResponse(req: http.IncomingMessage, res: http.ServerResponse, out: ServerResponse): void {
  const headers = out.headers;
  const body = out.body ?? null;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    if (headers['content-length'] === undefined) headers['content-length'] = Buffer.byteLength(body);
  } else if (body === null && headers['content-length'] === undefined) {
    headers['content-length'] = 0;
  }
  if (headers['content-type'] === undefined && out.status !== 204 && out.status !== 304) headers['content-type'] = 'text/html; charset=UTF-8';
  res.writeHead(out.status, headers);
  if (req.method === 'HEAD' || body === null || out.status === 204 || out.status === 304) {
    if (body !== null && typeof body !== 'string' && !Buffer.isBuffer(body)) body.destroy();
    res.end();
    return;
  }
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    res.end(body);
    return;
  }
  body.on('error', () => res.destroy());
  res.on('close', () => {
    if (!body.destroyed) body.destroy();
  });
  body.pipe(res);
}

/** An `X-Timestamp` header or a 400 as Swift's `valid_timestamp`. */
export function requiredTimestamp(headers: http.IncomingHttpHeaders): Timestamp | ServerResponse {
  const value = headers['x-timestamp'];
  if (typeof value !== 'string' || value === '') return errorResponse(400, 'Missing X-Timestamp header');
  try {
    return Timestamp.parse(value);
  } catch {
    return errorResponse(400, `Invalid X-Timestamp header`);
  }
}

/** A storage path split into its names (percent-decoded); null when it is malformed. */
export interface StoragePath {
  device: string;
  partition: number;
  account?: string;
  container?: string;
  object?: string;
  /** Names after the partition, decoded (for REPLICATE: the suffixes or a hash). */
  rest: string[];
  query: string;
}

/** Splits `/<device>/<partition>/<a>[/<c>[/<o...>]]`; the object name keeps its slashes. Null when a part is missing or not decodable. */
export function parseStoragePath(url: string): StoragePath | null {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  if (!rawPath.startsWith('/')) return null;
  const parts = rawPath.slice(1).split('/');
  if (parts.length < 2) return null;
  let decoded: string[];
  try {
    decoded = parts.slice(0, 4).map((p) => decodeURIComponent(p));
    if (parts.length > 4) decoded.push(decodeURIComponent(parts.slice(4).join('/')));
  } catch {
    return null;
  }
  const [device = '', partText = ''] = decoded;
  if (!device || device === '.' || device === '..' || device.includes('/') || !/^\d+$/.test(partText)) return null;
  const rest = decoded.slice(2);
  const out: StoragePath = { device, partition: Number(partText), rest, query };
  if (rest[0] !== undefined) out.account = rest[0];
  if (rest[1] !== undefined) out.container = rest[1];
  if (rest[2] !== undefined) out.object = rest[2];
  return out;
}

/**
 * Which device directories exist (Swift's `check_drive` with mount_check
 * off). Answers are kept a second, so a busy server does not stat the device
 * on every request.
 */
export class DeviceChecker {
  private readonly seen = new Map<string, number>();
  constructor(readonly devicesDir: string) {}

  devicePath(device: string): string {
    return path.join(this.devicesDir, device);
  }

  /** The device's directory when it exists, else null (answer 507). */
  async check(device: string): Promise<string | null> {
    const now = Date.now();
    const at = this.seen.get(device);
    const dir = this.devicePath(device);
    if (at !== undefined && now - at < 1000) return dir;
    try {
      const stat = await fs.promises.stat(dir);
      if (!stat.isDirectory()) return null;
    } catch {
      this.seen.delete(device);
      return null;
    }
    this.seen.set(device, now);
    return dir;
  }
}

/** The 507 of a device that is not there. */
export function insufficientStorage(device: string): ServerResponse {
  return { status: 507, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: defaultBody(507, device) };
}

/** True for Swift's true values (`true`, `1`, `yes`, `on`, `t`, `y`). */
export function isTrue(value: string | string[] | undefined): boolean {
  if (typeof value !== 'string') return false;
  return ['true', '1', 'yes', 'on', 't', 'y'].includes(value.trim().toLowerCase());
}

/** One header as a string (repeated headers joined). */
export function header(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Swift's `check_metadata` for the `x-<type>-meta-*` headers of a request: a
 * 400 naming the first problem, or null. (Values are the header strings as
 * received: one character per byte.)
 */
export function checkMetadata(headers: http.IncomingHttpHeaders, type: 'account' | 'container' | 'object'): ServerResponse | null {
  const prefix = `x-${type}-meta-`;
  let count = 0;
  let size = 0;
  for (const [name, raw] of Object.entries(headers)) {
    const value = Array.isArray(raw) ? raw.join(', ') : (raw ?? '');
    if (value.length > CONSTRAINTS.max_header_size) return errorResponse(400, `Header value too long: ${name.slice(0, CONSTRAINTS.max_meta_name_length)}`);
    if (!name.startsWith(prefix)) continue;
    const key = name.slice(prefix.length);
    if (!key) return errorResponse(400, 'Metadata name cannot be empty');
    count += 1;
    size += key.length + value.length;
    if (key.length > CONSTRAINTS.max_meta_name_length) return errorResponse(400, `Metadata name too long: ${prefix}${key}`);
    if (value.length > CONSTRAINTS.max_meta_value_length) return errorResponse(400, `Metadata value longer than ${CONSTRAINTS.max_meta_value_length}: ${prefix}${key}`);
    if (count > CONSTRAINTS.max_meta_count) return errorResponse(400, `Too many metadata items; max ${CONSTRAINTS.max_meta_count}`);
    if (size > CONSTRAINTS.max_meta_overall_size) return errorResponse(400, `Total metadata too large; max ${CONSTRAINTS.max_meta_overall_size}`);
  }
  return null;
}

/** Reads a small request body (JSON of REPLICATE and the like), refusing more than `limit` bytes. */
export async function readSmallBody(req: http.IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Swift's listing timestamp form: `2024-01-01T00:00:00.000000`. */
export function isoformat(ts: Timestamp): string {
  const ms = Math.floor(ts.ticks / 100);
  const micro = String((ts.ticks % 100000) * 10).padStart(6, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${micro}`;
}
