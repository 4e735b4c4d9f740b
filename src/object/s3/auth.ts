import { contextFromToken, type RequestContext, type TokenBody } from '../../core/auth/context.js';
import type { ProxyContext, SwiftRequest } from '../proxy/pipeline.js';
import { S3Error, invalidArgument } from './errors.js';
import {
  canonicalRequest,
  parseQuery,
  sameSignature,
  signingKey,
  signV2,
  signV4,
  stringToSignV2,
  stringToSignV4,
  uriEncode,
  type SigV4Scope,
} from './signature.js';

/** How far a signed request's time may be from ours (Swift's `allowable_clock_skew`, 15 minutes). */
export const ALLOWED_SKEW_MS = 15 * 60 * 1000;
/** The longest a presigned SigV4 URL may live (a week). */
const MAX_EXPIRES = 604800;
/** Headers that must be signed when present (as S3 requires of SigV4 requests). */
const MUST_SIGN_PREFIXES = ['x-amz-copy', 'x-amz-acl', 'x-amz-grant', 'x-amz-meta'];
/** `x-amz-content-sha256` values that announce an `aws-chunked` body. */
export const STREAMING_PAYLOADS = new Set([
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
  'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER',
]);

/** What an S3 request says about who signed it and what was signed. */
export interface S3Signature {
  version: 2 | 4;
  /** Signed in the query (a presigned URL) rather than in `Authorization`. */
  presigned: boolean;
  access: string;
  signature: string;
  stringToSign: string;
  /**
   * Other strings the client may have signed instead (SigV2 of a bucket:
   * botocore signs `/bucket/` where the path is `/bucket`); tried in turn.
   */
  alternatives?: string[];
  /** SigV4: the request time (`YYYYMMDDTHHMMSSZ`) and the credential scope. */
  amzDate?: string;
  scope?: SigV4Scope;
  /** SigV4: the signed `x-amz-content-sha256` (`UNSIGNED-PAYLOAD` for presigned URLs without it). */
  payloadHash: string | null;
}

/** `YYYYMMDDTHHMMSSZ` → ms, or null. */
export function parseAmzDate(value: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isNaN(ms) ? null : ms;
}

function invalidDate(): S3Error {
  return new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
}

function checkSkew(at: number, now: number): void {
  if (Math.abs(now - at) > ALLOWED_SKEW_MS) throw new S3Error('RequestTimeTooSkewed');
}

/** The path as it was signed: the raw path when the adapter kept it, else the decoded path encoded again as S3 clients encode it. */
function signedPath(req: SwiftRequest): string {
  const raw = req.env.rawPath;
  return typeof raw === 'string' && raw.startsWith('/') ? raw : uriEncode(req.path, true);
}

/**
 * Reads the S3 authentication of a request: SigV4 in `Authorization`
 * (`AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`) or in
 * the query (`X-Amz-Credential`, ...), SigV2 in `Authorization` (`AWS
 * access:signature`) or in the query (`AWSAccessKeyId`, `Signature`,
 * `Expires`). Null when the request carries none of them (not S3: it goes on
 * as a Swift request). Checks the dates (15 minutes of skew, presigned
 * expiry), the scope (region, service `s3`) and that the headers S3 wants
 * signed are, and builds the string to sign; throws the S3 error otherwise.
 */
export function readS3Signature(req: SwiftRequest, region: string, now = Date.now()): S3Signature | null {
  const query = parseQuery(req.query);
  const param = (name: string): string | undefined => query.find(([k]) => k === name)?.[1];
  const authorization = req.headers.authorization ?? '';
  if (param('X-Amz-Credential') !== undefined) return queryV4(req, query, param, region, now);
  if (authorization.startsWith('AWS4-HMAC-SHA256 ')) return headerV4(req, query, authorization, region, now);
  if (param('AWSAccessKeyId') !== undefined) return queryV2(req, query, param, now);
  if (authorization.startsWith('AWS ')) return headerV2(req, query, authorization, now);
  return null;
}

interface CredentialParts {
  access: string;
  date: string;
  region: string;
  service: string;
  terminal: string;
}

function parseCredential(text: string): CredentialParts {
  const parts = text.split('/');
  if (parts.length !== 5 || !parts[0]) throw new S3Error('AccessDenied');
  const [access = '', date = '', regionName = '', service = '', terminal = ''] = parts;
  return { access, date, region: regionName, service, terminal };
}

/** Checks a credential's scope against the request date and our region; returns the scope to sign with. */
function checkScope(cred: CredentialParts, amzDate: string, region: string, presigned: boolean): SigV4Scope {
  const error = (message: string, details: Record<string, string> = {}): S3Error =>
    new S3Error(presigned ? 'AuthorizationQueryParametersError' : 'AuthorizationHeaderMalformed', message, details);
  const day = amzDate.slice(0, 8);
  if (cred.date !== day) throw error(`Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${day}".`);
  if (cred.region !== region && !(region.toLowerCase() !== region && cred.region === region.toLowerCase())) {
    throw error(
      presigned
        ? `Error parsing the X-Amz-Credential parameter; the region '${cred.region}' is wrong; expecting '${region}'`
        : `The authorization header is malformed; the region '${cred.region}' is wrong; expecting '${region}'`,
      { Region: region },
    );
  }
  if (cred.service !== 's3') throw error(`${presigned ? 'Error parsing the X-Amz-Credential parameter' : 'The authorization header is malformed'}; incorrect service "${cred.service}". This endpoint belongs to "s3".`);
  if (cred.terminal !== 'aws4_request') {
    throw error(`${presigned ? 'Error parsing the X-Amz-Credential parameter' : 'The authorization header is malformed'}; incorrect terminal "${cred.terminal}". This endpoint uses "aws4_request".`);
  }
  return { date: cred.date, region: cred.region, service: cred.service };
}

function checkSignedHeaders(req: SwiftRequest, signed: string[]): void {
  for (const name of Object.keys(req.headers)) {
    if (!signed.includes(name) && MUST_SIGN_PREFIXES.some((p) => name.startsWith(p))) {
      throw new S3Error('AccessDenied', 'There were headers present in the request which were not signed', { HeadersNotSigned: name });
    }
  }
}

function v4StringToSign(req: SwiftRequest, query: [string, string][], signed: string[], payloadHash: string, amzDate: string, scope: SigV4Scope): string {
  const canonical = canonicalRequest({ method: req.method, uri: signedPath(req), query, headers: req.headers, signedHeaders: signed, payloadHash });
  // A signed header the request lacks cannot have been signed: S3 answers SignatureDoesNotMatch at once.
  if (canonical === null) throw new S3Error('SignatureDoesNotMatch');
  return stringToSignV4(amzDate, scope, canonical);
}

function checkPayloadHash(value: string | undefined, required: boolean): string | null {
  if (value === undefined || value === '') {
    if (required) throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    return null;
  }
  if (value === 'UNSIGNED-PAYLOAD' || STREAMING_PAYLOADS.has(value) || /^[0-9a-fA-F]{64}$/.test(value)) return value;
  throw invalidArgument(
    'x-amz-content-sha256',
    value,
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.',
  );
}

function headerV4(req: SwiftRequest, query: [string, string][], authorization: string, region: string, now: number): S3Signature {
  const field = (name: string): string => authorization.split(`${name}=`)[1]?.split(',')[0]?.trim() ?? '';
  const cred = parseCredential(field('Credential'));
  const signature = field('Signature');
  if (!signature) throw new S3Error('AccessDenied');
  const signedText = field('SignedHeaders');
  if (!signedText) throw new S3Error('AuthorizationHeaderMalformed');
  const amzDate = req.headers['x-amz-date'] ?? '';
  let at = amzDate ? parseAmzDate(amzDate) : null;
  if (!amzDate) {
    const date = req.headers.date;
    at = date ? Date.parse(date) : null;
  }
  if (at === null || Number.isNaN(at) || at < 0) throw invalidDate();
  checkSkew(at, now);
  const requestDate = amzDate || new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const scope = checkScope(cred, requestDate, region, false);
  const payloadHash = checkPayloadHash(req.headers['x-amz-content-sha256'], true) ?? 'UNSIGNED-PAYLOAD';
  const signed = signedText.split(';');
  checkSignedHeaders(req, signed);
  return {
    version: 4,
    presigned: false,
    access: cred.access,
    signature,
    stringToSign: v4StringToSign(req, query, signed, payloadHash, requestDate, scope),
    amzDate: requestDate,
    scope,
    payloadHash,
  };
}

function queryV4(req: SwiftRequest, query: [string, string][], param: (n: string) => string | undefined, region: string, now: number): S3Signature {
  const algorithm = param('X-Amz-Algorithm');
  if (algorithm !== 'AWS4-HMAC-SHA256') throw invalidArgument('X-Amz-Algorithm', algorithm ?? '');
  const amzDate = param('X-Amz-Date') ?? '';
  const at = parseAmzDate(amzDate);
  if (at === null) throw invalidDate();
  const expiresText = param('X-Amz-Expires');
  if (expiresText === undefined) throw new S3Error('AccessDenied');
  if (!/^\d+$/.test(expiresText)) throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number');
  const expires = Number(expiresText);
  if (expires > MAX_EXPIRES) {
    throw new S3Error('AuthorizationQueryParametersError', 'X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds');
  }
  if (at + expires * 1000 < now) throw new S3Error('AccessDenied', 'Request has expired', { Expires: new Date(at + expires * 1000).toISOString(), ServerTime: new Date(now).toISOString() });
  if (at - now > ALLOWED_SKEW_MS) throw new S3Error('AccessDenied', 'Request is not valid yet');
  const cred = parseCredential(param('X-Amz-Credential') ?? '');
  const signature = param('X-Amz-Signature');
  if (!signature) throw new S3Error('AccessDenied');
  const signedText = param('X-Amz-SignedHeaders');
  if (!signedText) throw new S3Error('AuthorizationQueryParametersError', 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  const scope = checkScope(cred, amzDate, region, true);
  const payloadHash = checkPayloadHash(req.headers['x-amz-content-sha256'], false) ?? 'UNSIGNED-PAYLOAD';
  const signed = signedText.split(';');
  checkSignedHeaders(req, signed);
  return {
    version: 4,
    presigned: true,
    access: cred.access,
    signature,
    stringToSign: v4StringToSign(req, query, signed, payloadHash, amzDate, scope),
    amzDate,
    scope,
    payloadHash,
  };
}

function headerV2(req: SwiftRequest, query: [string, string][], authorization: string, now: number): S3Signature {
  const rest = authorization.slice(4);
  const colon = rest.lastIndexOf(':');
  if (colon <= 0) throw new S3Error('AccessDenied');
  const amzDate = req.headers['x-amz-date'];
  const date = req.headers.date;
  if (!amzDate && !date) throw invalidDate();
  const at = Date.parse(amzDate ?? date ?? '');
  if (Number.isNaN(at) || at < 0) throw invalidDate();
  checkSkew(at, now);
  const parts = { method: req.method, headers: req.headers, date: amzDate ? '' : (date ?? ''), query };
  const path = signedPath(req);
  return { version: 2, presigned: false, access: rest.slice(0, colon), signature: rest.slice(colon + 1), stringToSign: stringToSignV2({ ...parts, path }), alternatives: v2Alternatives(parts, path), payloadHash: null };
}

function queryV2(req: SwiftRequest, query: [string, string][], param: (n: string) => string | undefined, now: number): S3Signature {
  const access = param('AWSAccessKeyId') ?? '';
  const signature = param('Signature') ?? '';
  const expires = param('Expires') ?? '';
  if (!access || !signature || !expires) throw new S3Error('AccessDenied');
  const at = Number(expires);
  if (!Number.isFinite(at)) throw new S3Error('AccessDenied');
  if (at * 1000 < now) throw new S3Error('AccessDenied', 'Request has expired');
  if (at >= 2 ** 31) throw new S3Error('AccessDenied', `Invalid date (should be seconds since epoch): ${expires}`);
  const parts = { method: req.method, headers: req.headers, date: expires, query };
  const path = signedPath(req);
  return { version: 2, presigned: true, access, signature, stringToSign: stringToSignV2({ ...parts, path }), alternatives: v2Alternatives(parts, path), payloadHash: null };
}

/** A bucket path is signed by some clients with a trailing slash (and by others without). */
function v2Alternatives(parts: Omit<Parameters<typeof stringToSignV2>[0], 'path'>, path: string): string[] {
  if (/^\/[^/]+$/.test(path)) return [stringToSignV2({ ...parts, path: `${path}/` })];
  if (/^\/[^/]+\/$/.test(path)) return [stringToSignV2({ ...parts, path: path.slice(0, -1) })];
  return [];
}

/** Whether a signature is right for a secret (checked here when the secret is known, sparing identity a call). */
export function signatureMatches(sig: S3Signature, secret: string): boolean {
  if (sig.version === 2) return [sig.stringToSign, ...(sig.alternatives ?? [])].some((sts) => sameSignature(signV2(secret, sts), sig.signature));
  if (!sig.scope) return false;
  return sameSignature(signV4(signingKey(secret, sig.scope), sig.stringToSign), sig.signature);
}

/** Who an S3 request comes from, and (when identity let us read it) the secret, for chunk signatures. */
export interface S3Principal {
  identity: RequestContext;
  secret: string | null;
}

interface CacheEntry {
  secret: string;
  token: TokenBody;
  subjectToken: string;
  /** Not used from this time on (ms). */
  until: number;
}

/** Tuning of {@link S3Authenticator}. */
export interface S3AuthenticatorOptions {
  /** How long a checked credential is remembered (Swift's `secret_cache_duration`, default 60 s; 0 disables). */
  cacheTtlMs?: number;
  /** How many access keys are remembered (default 10000). */
  cacheSize?: number;
  /** Time limit of one call to identity (default 10 s). */
  timeoutMs?: number;
  now?: () => number;
}

/**
 * Turns a signed S3 request into an identity, as Swift's s3token does: asks
 * identity's `POST /v3/s3tokens` (with the proxy's service token) whether the
 * signature is right, then reads the credential's secret (`OS-EC2` API, the
 * service user being an admin) and remembers both briefly, so the next
 * requests of that access key are checked here without a call (a signature
 * that does not match the remembered secret is asked about again). Refusals
 * are never cached.
 */
export class S3Authenticator {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttl: number;
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly ctx: ProxyContext,
    options: S3AuthenticatorOptions = {},
  ) {
    this.ttl = Math.max(0, options.cacheTtlMs ?? 60_000);
    this.size = Math.max(1, options.cacheSize ?? 10_000);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The principal of a signed request. Throws S3Error: InvalidAccessKeyId
   * (unknown key), SignatureDoesNotMatch (wrong signature, disabled user or
   * project, no role), ServiceUnavailable (identity unreachable).
   */
  async authenticate(sig: S3Signature, requestId: string): Promise<S3Principal> {
    const at = this.now();
    const hit = this.cache.get(sig.access);
    if (hit && hit.until > at && signatureMatches(sig, hit.secret)) {
      return { identity: contextFromToken(requestId, hit.subjectToken, hit.token), secret: hit.secret };
    }
    const { token, subjectToken } = await this.askIdentity(sig, requestId);
    const secret = await this.readSecret(token.user.id, sig.access, requestId);
    if (secret !== null && this.ttl > 0) {
      const expires = Date.parse(token.expires_at);
      const until = Math.min(at + this.ttl, Number.isFinite(expires) ? expires : at);
      this.cache.delete(sig.access);
      if (until > at) this.cache.set(sig.access, { secret, token, subjectToken, until });
      while (this.cache.size > this.size) {
        const oldest = this.cache.keys().next();
        if (oldest.done) break;
        this.cache.delete(oldest.value);
      }
    }
    return { identity: contextFromToken(requestId, subjectToken, token), secret };
  }

  private async identityCall(method: string, path: string, requestId: string, body?: unknown): Promise<Response> {
    try {
      const base = await this.ctx.client.endpoint('identity');
      const serviceToken = await this.ctx.client.token();
      return await fetch(`${base}/${path}`, {
        method,
        headers: {
          Accept: 'application/json',
          'X-Auth-Token': serviceToken,
          'X-OpenStack-Request-ID': requestId,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      this.ctx.log.warn({ err, request_id: requestId }, 'S3: identity could not be reached to check a signature');
      throw new S3Error('ServiceUnavailable', 'The authentication service could not be reached. Please try again.');
    }
  }

  private async askIdentity(sig: S3Signature, requestId: string): Promise<{ token: TokenBody; subjectToken: string }> {
    const candidates = [sig.stringToSign, ...(sig.alternatives ?? [])];
    for (let i = 0; ; i++) {
      try {
        return await this.askIdentityOnce(sig, candidates[i] ?? sig.stringToSign, requestId);
      } catch (err) {
        if (!(err instanceof S3Error && err.code === 'SignatureDoesNotMatch') || i + 1 >= candidates.length) throw err;
      }
    }
  }

  private async askIdentityOnce(sig: S3Signature, stringToSign: string, requestId: string): Promise<{ token: TokenBody; subjectToken: string }> {
    const body = { credentials: { access: sig.access, token: Buffer.from(stringToSign, 'utf8').toString('base64url'), signature: sig.signature } };
    const res = await this.identityCall('POST', 's3tokens', requestId, body);
    const text = await res.text();
    if (res.status === 200) {
      let token: TokenBody | undefined;
      try {
        token = (JSON.parse(text) as { token?: TokenBody }).token;
      } catch {
        token = undefined;
      }
      if (!token?.project || !token.user) {
        this.ctx.log.error({ request_id: requestId }, 'S3: identity answered s3tokens without a project-scoped token');
        throw new S3Error('InternalError');
      }
      return { token, subjectToken: res.headers.get('x-subject-token') ?? '' };
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      if (res.status === 403) this.ctx.log.error({ request_id: requestId }, 'S3: identity refused the proxy service user the s3tokens check (it needs the admin or service role)');
      if (res.status === 404 || /access key not found/i.test(text)) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: sig.access });
      throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: sig.access, StringToSign: sig.stringToSign, SignatureProvided: sig.signature });
    }
    this.ctx.log.warn({ status: res.status, request_id: requestId }, 'S3: unexpected answer of identity to s3tokens');
    throw new S3Error('ServiceUnavailable', 'The authentication service could not check the request. Please try again.');
  }

  /** The credential's secret, or null when identity would not tell (then chunk signatures cannot be checked). */
  private async readSecret(userId: string, access: string, requestId: string): Promise<string | null> {
    try {
      const res = await this.identityCall('GET', `users/${encodeURIComponent(userId)}/credentials/OS-EC2/${encodeURIComponent(access)}`, requestId);
      if (res.status !== 200) {
        await res.body?.cancel();
        return null;
      }
      const body = (await res.json()) as { credential?: { secret?: unknown } };
      return typeof body.credential?.secret === 'string' ? body.credential.secret : null;
    } catch {
      return null;
    }
  }
}
