import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import type { SwiftResponse } from './pipeline.js';
import { httpError, REASONS } from './responses.js';

/**
 * Small pieces the bulk, tempurl, formpost, staticweb and quota middlewares
 * share: Swift's path split, its quoting, status lines and Accept matching.
 */

/** The parts of a Swift API path `/v1/<account>[/<container>[/<object>]]`. */
export interface SwiftPath {
  version: string;
  account: string;
  /** Absent for account paths; the empty string never appears (a trailing `/` after the account is ignored). */
  container?: string;
  /** Absent for container paths; may contain `/` and may be empty (`/v1/a/c/`). */
  object?: string;
}

/**
 * Splits a decoded Swift path as Swift's `split_path(path, 2, 4, True)`:
 * null for anything that is not `/<version>/<account>[...]`. An object path
 * with an empty object name (`/v1/a/c/`) gives `object: ''`.
 */
export function splitSwiftPath(path: string): SwiftPath | null {
  if (!path.startsWith('/')) return null;
  const parts = path.slice(1).split('/');
  const version = parts[0] ?? '';
  const account = parts[1] ?? '';
  if (!version || !account) return null;
  if (parts.length === 2) return { version, account };
  const container = parts[2] ?? '';
  if (parts.length === 3) return container ? { version, account, container } : { version, account };
  if (!container) return null;
  return { version, account, container, object: parts.slice(3).join('/') };
}

/** Whether `version` is one the Swift API answers to. */
export function isApiVersion(version: string): boolean {
  return version === 'v1' || version === 'v1.0';
}

/**
 * Percent-encodes as Python's `urllib.parse.quote(s, safe)`: UTF-8 bytes,
 * everything but letters, digits, `_.-~` and the `safe` characters.
 */
export function quote(text: string | Buffer, safe = '/'): string {
  let out = '';
  for (const byte of typeof text === 'string' ? Buffer.from(text, 'utf8') : text) {
    const char = String.fromCharCode(byte);
    if ((byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || '_.-~'.includes(char) || (byte < 0x80 && safe.includes(char))) {
      out += char;
    } else {
      out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/** The bytes `text` stands for once its `%xx` escapes are decoded (other characters as UTF-8). */
export function percentDecode(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (code < 0x80) {
      bytes.push(code);
    } else {
      const char = String.fromCodePoint(text.codePointAt(i) ?? code);
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length - 1;
    }
  }
  return Buffer.from(bytes);
}

/** UTF-8 text of `bytes` as Swift's `check_utf8` accepts it: null when not UTF-8 or holding a NUL. */
export function utf8OrNull(bytes: Buffer): string | null {
  try {
    const decoded = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return decoded.includes('\0') ? null : decoded;
  } catch {
    return null;
  }
}

/** `201 Created`: a status line as Swift writes one in response bodies. */
export function statusLine(status: number): string {
  return `${status} ${reason(status)}`;
}

/** The reason phrase alone (`Not Found`), Swift's where it has one. */
export function reason(status: number): string {
  return REASONS[status]?.[0] ?? STATUS_CODES[status] ?? 'Unknown';
}

/** Swift's default body for an error status (`<html><h1>Not Found</h1><p>...</p></html>`). */
export function defaultErrorBody(status: number): string {
  return `<html><h1>${reason(status)}</h1><p>${REASONS[status]?.[1] ?? ''}</p></html>`;
}

/** An error response as Swift's swob writes it: the given body, or the default one for the status; none for HEAD. */
export function swiftError(status: number, method: string, body?: string, headers: Record<string, string> = {}): SwiftResponse {
  if (method === 'HEAD') return { status, headers: { 'content-type': 'text/html; charset=UTF-8', ...headers }, body: null };
  return httpError(status, body ?? defaultErrorBody(status), headers);
}

/**
 * The best of `offers` for an `Accept` header (q-values, `type/*`, `*\/*`);
 * the first offer when there is no header; null when none is acceptable or
 * the header cannot be parsed.
 */
export function bestMatch(accept: string | undefined, offers: readonly string[]): string | null {
  if (accept === undefined || accept.trim() === '') return offers[0] ?? null;
  const ranges: { type: string; q: number }[] = [];
  for (const item of accept.split(',')) {
    const [typePart, ...params] = item.split(';');
    const type = (typePart ?? '').trim().toLowerCase();
    if (!type) continue;
    if (!/^[^/\s]+\/[^/\s]+$/.test(type)) return null;
    let q = 1;
    for (const param of params) {
      const [name, value] = param.split('=').map((s) => s.trim());
      if (name === 'q') {
        q = Number(value);
        if (!Number.isFinite(q) || q < 0 || q > 1) return null;
      }
    }
    ranges.push({ type, q });
  }
  let best: string | null = null;
  let bestQ = 0;
  for (const offer of offers) {
    const [major] = offer.split('/');
    let q = -1;
    let specificity = -1;
    for (const range of ranges) {
      const spec = range.type === offer ? 2 : range.type === `${major}/*` ? 1 : range.type === '*/*' ? 0 : -1;
      if (spec > specificity) {
        specificity = spec;
        q = range.q;
      }
    }
    if (q > bestQ) {
      best = offer;
      bestQ = q;
    }
  }
  return best;
}

/** Reads a whole (small) response body as text; bodies are bounded by the caller's knowledge. */
export async function bodyText(body: SwiftResponse['body']): Promise<string> {
  if (body === null) return '';
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

/** Discards a response body that nobody will read. */
export function discard(body: SwiftResponse['body']): void {
  if (body !== null && typeof body === 'object' && !Buffer.isBuffer(body)) (body as Readable).resume();
}

/** Reads a request body to its end, discarding it. */
export async function drain(body: Readable | null): Promise<void> {
  if (!body) return;
  for await (const chunk of body) void chunk;
}

/** Whether a status is 2xx. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** Swift's `config_true_value`. */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes', 'on', 't', 'y'].includes(value.trim().toLowerCase());
}
