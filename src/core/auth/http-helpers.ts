/** Small helpers of the service client: fetch failures, URLs for logs, response bodies. */
import type { TokenBody } from './context.js';

/** Whether fetch failed because nothing listened (the request surely never arrived). */
export function isConnectionRefused(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (!cause || typeof cause !== 'object') return false;
  if ((cause as { code?: unknown }).code === 'ECONNREFUSED') return true;
  const errors = (cause as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 && errors.every((e) => (e as { code?: unknown } | null)?.code === 'ECONNREFUSED');
}

/** The URL without its query, for logs and errors. */
export function redact(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? url : url.slice(0, at);
}

/** JSON when it parses, the text otherwise, null when empty. */
export function parseBody(headers: Headers, data: Buffer): unknown {
  if (data.length === 0) return null;
  const text = data.toString('utf8');
  const type = headers.get('content-type') ?? '';
  if (type.includes('json') || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** The `token` object of an identity answer, if it has the fields services rely on. */
export function tokenOf(body: unknown): TokenBody | null {
  const token = (body as { token?: unknown } | null)?.token as Record<string, unknown> | undefined;
  if (!token || typeof token !== 'object') return null;
  const user = token.user as { id?: unknown; domain?: { id?: unknown } } | undefined;
  if (typeof user?.id !== 'string' || typeof user.domain?.id !== 'string') return null;
  if (typeof token.expires_at !== 'string' || typeof token.issued_at !== 'string') return null;
  if (!Array.isArray(token.methods) || !Array.isArray(token.audit_ids)) return null;
  return token as TokenBody;
}
