import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The pure parts of AWS request signing as S3 uses it: Signature Version 4
 * (canonical request, string to sign, signing key, chunk and trailer
 * signatures of `aws-chunked` bodies) and the legacy S3 Signature Version 2
 * string to sign. No I/O; `auth.ts` decides what to sign from a request.
 */

/** The SHA-256 of an empty payload, hex. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The credential scope of a SigV4 signature: `<date>/<region>/<service>/aws4_request`. */
export interface SigV4Scope {
  /** `YYYYMMDD`. */
  date: string;
  region: string;
  service: string;
}

/** The scope as it appears in the string to sign and in `Credential=`. */
export function scopeString(scope: SigV4Scope): string {
  return `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
}

/** The SHA-256 of some bytes, hex. */
export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string | Buffer, alg = 'sha256'): Buffer {
  return createHmac(alg, key).update(data).digest();
}

/**
 * AWS's URI encoding: every byte of the UTF-8 form except the unreserved
 * `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex); `/` kept when asked
 * (paths). Spaces are `%20`, never `+`.
 */
export function uriEncode(value: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Splits an undecoded query string into decoded pairs, in order. `+` is a
 * space (form encoding, as Swift reads queries); a parameter without `=` has
 * the value ''. Malformed percent escapes are kept as they are.
 */
export function parseQuery(query: string): [string, string][] {
  const pairs: [string, string][] = [];
  if (!query) return pairs;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([decodeComponent(key), decodeComponent(value)]);
  }
  return pairs;
}

function decodeComponent(text: string): string {
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/** SigV4's canonical query string: pairs encoded, sorted by key then value, the signature itself left out. */
export function canonicalQueryString(pairs: [string, string][], omit: readonly string[] = ['X-Amz-Signature']): string {
  return pairs
    .filter(([k]) => !omit.includes(k))
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** A header value as SigV4 canonicalizes it: trimmed, inner runs of spaces made one. */
export function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** What a SigV4 canonical request is made of. */
export interface CanonicalRequestParts {
  method: string;
  /** The canonical URI: the path, URI-encoded once (S3 does not normalize or double-encode). */
  uri: string;
  query: [string, string][];
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** Lower-case names, in the order the client gave (they are sorted here). */
  signedHeaders: string[];
  /** `x-amz-content-sha256` (a hex SHA-256, `UNSIGNED-PAYLOAD` or a `STREAMING-*` value). */
  payloadHash: string;
}

/**
 * The canonical request, or null when a signed header is missing from the
 * request (the signature then cannot match).
 */
export function canonicalRequest(parts: CanonicalRequestParts): string | null {
  const names = [...new Set(parts.signedHeaders)].sort();
  const lines: string[] = [];
  for (const name of names) {
    const value = parts.headers[name];
    if (value === undefined) return null;
    lines.push(`${name}:${canonicalHeaderValue(value)}\n`);
  }
  return [parts.method, parts.uri, canonicalQueryString(parts.query), lines.join(''), names.join(';'), parts.payloadHash].join('\n');
}

/** The SigV4 string to sign of a canonical request. */
export function stringToSignV4(amzDate: string, scope: SigV4Scope, canonical: string): string {
  return ['AWS4-HMAC-SHA256', amzDate, scopeString(scope), sha256Hex(canonical)].join('\n');
}

/** The SigV4 signing key of a secret for a scope (the HMAC chain over date, region, service, `aws4_request`). */
export function signingKey(secret: string, scope: SigV4Scope): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, scope.date), scope.region), scope.service), 'aws4_request');
}

/** A SigV4 signature (hex) of a string with a signing key. */
export function signV4(key: Buffer, stringToSign: string): string {
  return hmac(key, stringToSign).toString('hex');
}

/** The string to sign of one `aws-chunked` chunk (`AWS4-HMAC-SHA256-PAYLOAD`), chained to the previous signature. */
export function chunkStringToSign(amzDate: string, scope: SigV4Scope, previousSignature: string, chunkSha256: string): string {
  return ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scopeString(scope), previousSignature, EMPTY_SHA256, chunkSha256].join('\n');
}

/**
 * The string to sign of the trailers of an `aws-chunked` body
 * (`AWS4-HMAC-SHA256-TRAILER`): the hash of the trailers as `name:value\n`
 * lines, sorted, `x-amz-trailer-signature` left out.
 */
export function trailerStringToSign(amzDate: string, scope: SigV4Scope, previousSignature: string, trailers: Record<string, string>): string {
  const lines = Object.keys(trailers)
    .filter((k) => k !== 'x-amz-trailer-signature')
    .sort()
    .map((k) => `${k}:${trailers[k] ?? ''}\n`)
    .join('');
  return ['AWS4-HMAC-SHA256-TRAILER', amzDate, scopeString(scope), previousSignature, sha256Hex(lines || '\n')].join('\n');
}

/** The S3 sub-resources that belong to a SigV2 canonical resource. */
const V2_SUBRESOURCES = new Set([
  'acl', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy', 'publicAccessBlock', 'requestPayment', 'torrent',
  'uploads', 'uploadId', 'versionId', 'versioning', 'versions', 'website', 'response-cache-control', 'response-content-disposition',
  'response-content-encoding', 'response-content-language', 'response-content-type', 'response-expires', 'cors', 'tagging', 'restore', 'object-lock',
]);

/** What an S3 SigV2 string to sign is made of. */
export interface StringToSignV2Parts {
  method: string;
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** The `Date` line: the Date header (empty when `x-amz-date` is sent), or `Expires` for a presigned URL. */
  date: string;
  /** The path as sent (encoded), with the bucket when it came in the host. */
  path: string;
  query: [string, string][];
}

/** The S3 SigV2 string to sign (`AWS <access>:<signature>` or `Signature=` in the query). */
export function stringToSignV2(parts: StringToSignV2Parts): string {
  const strip = (v: string | undefined): string => (v ?? '').replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, '');
  const amz = Object.keys(parts.headers)
    .filter((k) => k.startsWith('x-amz-'))
    .sort()
    .map((k) => `${k}:${strip(parts.headers[k])}`);
  const sub = parts.query
    .filter(([k]) => V2_SUBRESOURCES.has(k))
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([k, v]) => (v ? `${k}=${v}` : k));
  const resource = sub.length > 0 ? `${parts.path}?${sub.join('&')}` : parts.path;
  return [parts.method, strip(parts.headers['content-md5']), strip(parts.headers['content-type']), parts.date, ...amz, resource].join('\n');
}

/** A SigV2 signature: base64 of HMAC-SHA1 with the secret. */
export function signV2(secret: string, stringToSign: string): string {
  return hmac(secret, stringToSign, 'sha1').toString('base64');
}

/** Constant-time comparison of two signatures. */
export function sameSignature(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
