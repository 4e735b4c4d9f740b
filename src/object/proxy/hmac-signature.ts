import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signatures of temporary URLs and form posts (Swift's `digest.py`):
 * HMAC-SHA1/256/512 over a few newline-joined fields, with the account's or
 * container's `Temp-URL-Key`, written in hex or as `<digest>:<base64>`.
 */

/** Digests a signature may use (Swift's `SUPPORTED_DIGESTS`; SHA-1 is deprecated but still allowed by default). */
export const ALLOWED_DIGESTS = ['sha1', 'sha256', 'sha512'] as const;
/** Allowed but on their way out, as `/info` reports them. */
export const DEPRECATED_DIGESTS = ['sha1'] as const;

/** A digest name signatures may use. */
export type Digest = (typeof ALLOWED_DIGESTS)[number];

const HEX_LENGTHS: Record<number, Digest> = { 40: 'sha1', 64: 'sha256', 128: 'sha512' };

/**
 * Splits a client's signature into its digest and hex form: plain hex (the
 * digest known by its length) or `<digest>:<base64>` (standard or URL-safe
 * alphabet). Returns null when it is neither.
 */
export function parseSignature(value: string): { digest: string; hex: string } | null {
  const colon = value.indexOf(':');
  if (colon >= 0) {
    const digest = value.slice(0, colon);
    let encoded = value.slice(colon + 1);
    if (/[-_]/.test(encoded) && !/[+/]/.test(encoded)) encoded = encoded.replace(/-/g, '+').replace(/_/g, '/');
    encoded = encoded.replace(/=+$/, '');
    // Strict base64: only the alphabet, and no impossible length.
    if (!/^[A-Za-z0-9+/]*$/.test(encoded) || encoded.length % 4 === 1) return null;
    return { digest, hex: Buffer.from(encoded, 'base64').toString('hex') };
  }
  if (!/^[0-9a-fA-F]*$/.test(value) || value.length % 2 !== 0) return null;
  const digest = HEX_LENGTHS[value.length];
  return digest ? { digest, hex: value.toLowerCase() } : null;
}

/** Whether `digest` is one the cluster accepts. */
export function isAllowedDigest(digest: string): digest is Digest {
  return (ALLOWED_DIGESTS as readonly string[]).includes(digest);
}

/** The hex HMAC of `message` under `key`. */
export function hmacHex(digest: Digest, key: string, message: string): string {
  return createHmac(digest, Buffer.from(key, 'utf8')).update(Buffer.from(message, 'utf8')).digest('hex');
}

/**
 * A temporary URL's signature: HMAC of `[ip=<range>\n]<method>\n<expires>\n<path>`
 * where `path` is `/v1/<account>/<container>/<object>` or
 * `prefix:/v1/<account>/<container>/<prefix>`.
 */
export function tempUrlSignature(digest: Digest, key: string, method: string, expires: number | string, path: string, ipRange?: string | null): string {
  const fields = [method, String(expires), path];
  if (ipRange) fields.unshift(`ip=${ipRange}`);
  return hmacHex(digest, key, fields.join('\n'));
}

/** A form post's signature: HMAC of `<path>\n<redirect>\n<max_file_size>\n<max_file_count>\n<expires>`. */
export function formPostSignature(digest: Digest, key: string, path: string, redirect: string, maxFileSize: string, maxFileCount: string, expires: string): string {
  return hmacHex(digest, key, [path, redirect, maxFileSize, maxFileCount, expires].join('\n'));
}

/** Compares two hex strings in time that does not depend on where they differ. */
export function sameSignature(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}
