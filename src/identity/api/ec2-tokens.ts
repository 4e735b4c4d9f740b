import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BadRequest, Unauthorized } from '../../core/errors.js';
import { bool, parseJson } from '../common.js';
import { authorize, type Identity } from '../identity.js';
import { ec2CredentialId } from './credentials.js';

/** How long a signed request stays good after its timestamp (Keystone's `[credential] auth_ttl`, 15 minutes). */
const AUTH_TTL_MS = 15 * 60 * 1000;
/** The AWS services whose SigV4 scope identity accepts for S3 tokens (as Keystone). */
const V4_SERVICES = new Set(['s3', 'iam', 'sts']);

/** The `credentials` object of an S3 or EC2 token request (Keystone accepts `credential` and `ec2Credentials` too). */
export interface Ec2TokenCredentials {
  access?: unknown;
  /** S3: the base64 (URL-safe or standard) of the string to sign. */
  token?: unknown;
  signature?: unknown;
  host?: unknown;
  verb?: unknown;
  path?: unknown;
  params?: unknown;
  headers?: unknown;
  body_hash?: unknown;
}

interface StoredEc2 {
  userId: string;
  projectId: string;
  secret: string;
  appCredId: string | null;
}

/**
 * `POST /v3/s3tokens` and `POST /v3/ec2tokens`: a service that received an
 * S3 or EC2 request signed with an EC2 credential's secret asks identity to
 * check the signature; identity answers with a token body (user, project,
 * roles, catalog) scoped to the credential's project, or 401. As in current
 * Keystone, only a service user or an admin may ask (`identity:s3tokens_validate`,
 * `identity:ec2tokens_validate`), so a presigned URL cannot be turned into a
 * token by its holder. Nothing is stored; the token issued carries the method
 * `ec2credential`. ec2tokens checks EC2 query signatures version 2 and 4 (0 and 1 are refused).
 */
export function registerEc2Tokens(app: FastifyInstance, identity: Identity): void {
  app.post('/v3/s3tokens', async (req, reply) => {
    authorize(identity, req, 'identity:s3tokens_validate');
    const creds = credentialsOf(req.body);
    const stored = await loadCredential(identity, creds);
    checkS3Signature(stored.secret, creds);
    return issue(identity, reply, stored, creds);
  });

  app.post('/v3/ec2tokens', async (req, reply) => {
    authorize(identity, req, 'identity:ec2tokens_validate');
    const creds = credentialsOf(req.body);
    const stored = await loadCredential(identity, creds);
    checkEc2Signature(stored.secret, creds);
    return issue(identity, reply, stored, creds);
  });

  for (const path of ['/v3/s3tokens', '/v3/ec2tokens']) {
    app.get(path, async (_req, reply) => {
      reply.code(405).header('Allow', 'POST');
      return { error: { code: 405, title: 'Method Not Allowed', message: 'The method is not allowed for the requested URL.' } };
    });
  }
}

function credentialsOf(body: unknown): Ec2TokenCredentials {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length === 0) {
    throw new BadRequest('request must include a request body');
  }
  const b = body as Record<string, unknown>;
  const creds = [b.credentials, b.credential, b.ec2Credentials].find((c) => typeof c === 'object' && c !== null && !Array.isArray(c) && Object.keys(c).length > 0);
  const found = (creds ?? {}) as Ec2TokenCredentials;
  if (typeof found.access !== 'string' || found.access === '') throw new Unauthorized('EC2 Signature not supplied');
  return found;
}

async function loadCredential(identity: Identity, creds: Ec2TokenCredentials): Promise<StoredEc2> {
  const row = await identity.db.selectFrom('credential').selectAll().where('id', '=', ec2CredentialId(String(creds.access))).executeTakeFirst();
  // 401 rather than 404: the answer must not tell whether an access key exists.
  if (!row || row.type.toLowerCase() !== 'ec2' || !row.project_id) throw new Unauthorized('EC2 access key not found.');
  const blob = parseJson(row.blob);
  if (typeof blob.secret !== 'string') throw new Unauthorized('EC2 access key not found.');
  return { userId: row.user_id, projectId: row.project_id, secret: blob.secret, appCredId: typeof blob.app_cred_id === 'string' ? blob.app_cred_id : null };
}

/** Makes the token of the credential's user on its project; 401 when the user, project or roles forbid it. */
async function issue(identity: Identity, reply: FastifyReply, stored: StoredEc2, creds: Ec2TokenCredentials): Promise<unknown> {
  checkTimestamp(creds);
  const user = await identity.db.selectFrom('user').selectAll().where('id', '=', stored.userId).executeTakeFirst();
  if (!user || !bool(user.enabled)) throw new Unauthorized('The request you have made requires authentication.');
  let applicationCredential: { id: string; expiresAt: number | null } | undefined;
  if (stored.appCredId) {
    const appCred = await identity.db.selectFrom('application_credential').select(['id', 'project_id', 'expires_at']).where('id', '=', stored.appCredId).executeTakeFirst();
    if (!appCred) throw new Unauthorized('The application credential of this EC2 credential is gone.');
    if (appCred.project_id !== stored.projectId) throw new Unauthorized('EC2 credential project does not match the application credential project.');
    applicationCredential = { id: appCred.id, expiresAt: appCred.expires_at ? Date.parse(appCred.expires_at) : null };
  }
  const { token, body } = await identity.tokens.issue({
    user,
    methods: ['ec2credential'],
    scope: { type: 'project', id: stored.projectId },
    ...(applicationCredential ? { applicationCredential } : {}),
  });
  body.catalog = await identity.tokens.catalog(stored.projectId);
  reply.code(200).header('X-Subject-Token', token);
  return { token: body };
}

/** Refuses a signed request whose own timestamp (`X-Amz-Date`, `Timestamp`) is older than the TTL. */
function checkTimestamp(creds: Ec2TokenCredentials): void {
  const params = record(creds.params);
  const headers = record(creds.headers);
  const value = params.Timestamp ?? headerValue(headers, 'x-amz-date') ?? params['X-Amz-Date'];
  if (value === undefined || value === '') return;
  const at = parseAwsTime(String(value));
  if (at === null) throw new Unauthorized(`Credential timestamp is invalid: ${String(value)}`);
  if (Date.now() > at + AUTH_TTL_MS) throw new Unauthorized('Credential is expired');
}

/** `20130524T000000Z` (ISO 8601 basic) or an ISO 8601 extended time; no zone means UTC. */
export function parseAwsTime(value: string): number | null {
  const basic = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (basic) return Date.UTC(Number(basic[1]), Number(basic[2]) - 1, Number(basic[3]), Number(basic[4]), Number(basic[5]), Number(basic[6]));
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return null;
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? null : ms;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function headerValue(headers: Record<string, unknown>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name && typeof v === 'string') return v;
  return undefined;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const hmac = (key: string | Buffer, data: string | Buffer, alg = 'sha256'): Buffer => createHmac(alg, key).update(data).digest();

/** The SigV4 signing key of a secret for a scope's date, region and service. */
function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

/**
 * The S3 check: `token` is the base64 of the string to sign. A SigV4 string
 * (`AWS4-HMAC-SHA256\n<date>\n<scope>\n<hash>`) is signed with the key derived
 * from its own scope; anything else is an S3 SigV2 string, HMAC-SHA1 in base64.
 */
export function checkS3Signature(secret: string, creds: Ec2TokenCredentials): void {
  if (typeof creds.token !== 'string' || typeof creds.signature !== 'string') throw new Unauthorized('Credential signature mismatch');
  const stringToSign = Buffer.from(creds.token.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  let expected: string;
  if (stringToSign.subarray(0, 4).toString('latin1') === 'AWS4') {
    const parts = stringToSign.toString('utf8').split('\n');
    const scope = (parts[2] ?? '').split('/');
    if (parts.length !== 4 || parts[0] !== 'AWS4-HMAC-SHA256' || scope.length !== 4 || scope[3] !== 'aws4_request' || !V4_SERVICES.has(scope[2] ?? '')) {
      throw new Unauthorized('Invalid EC2 signature.');
    }
    expected = hmac(signingKey(secret, scope[0] ?? '', scope[1] ?? '', scope[2] ?? ''), stringToSign).toString('hex');
  } else {
    expected = hmac(secret, stringToSign, 'sha1').toString('base64');
  }
  if (!sameText(creds.signature, expected)) throw new Unauthorized('Credential signature mismatch');
}

/** RFC 3986 encoding of the EC2 query signatures (`-_.~` kept). */
function awsQuote(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(params: Record<string, unknown>): string {
  return Object.keys(params)
    .filter((k) => k !== 'Signature')
    .sort()
    .map((k) => `${awsQuote(k)}=${awsQuote(String(params[k]))}`)
    .join('&');
}

/**
 * The EC2 check (keystoneclient's `Ec2Signer`): query signature version 2
 * (`SignatureMethod` HmacSHA256 or HmacSHA1 over verb, host, path and the
 * sorted query), or version 4 from the `Authorization` header or the
 * `X-Amz-*` query parameters with `body_hash`. A host with a port is tried
 * without it too, as some clients sign without the port.
 */
export function checkEc2Signature(secret: string, creds: Ec2TokenCredentials): void {
  if (typeof creds.signature !== 'string' || creds.signature === '') throw new Unauthorized('EC2 signature not supplied.');
  const host = typeof creds.host === 'string' ? creds.host : '';
  const hosts = host.includes(':') && !host.endsWith(']') ? [host, host.replace(/:\d+$/, '')] : [host];
  for (const h of hosts) {
    if (sameText(creds.signature, ec2Signature(secret, { ...creds, host: h }))) return;
  }
  throw new Unauthorized('Invalid EC2 signature.');
}

function ec2Signature(secret: string, creds: Ec2TokenCredentials): string {
  const params = record(creds.params);
  const headers = record(creds.headers);
  const verb = String(creds.verb ?? '').toUpperCase();
  const path = String(creds.path ?? '/');
  const host = String(creds.host ?? '');
  const version = params.SignatureVersion === undefined ? undefined : String(params.SignatureVersion);
  if (version === '2') {
    const alg = params.SignatureMethod === 'HmacSHA1' ? 'sha1' : 'sha256';
    return hmac(secret, `${verb}\n${host}\n${path}\n${canonicalQuery(params)}`, alg).toString('base64');
  }
  const authorization = headerValue(headers, 'authorization');
  const isV4 = authorization?.startsWith('AWS4-HMAC-SHA256') || params['X-Amz-Algorithm'] === 'AWS4-HMAC-SHA256';
  if (version !== undefined || !isV4) throw new Unauthorized('Invalid EC2 signature.');
  const authParam = (name: string): string => {
    if (authorization !== undefined) return authorization.split(`${name}=`)[1]?.split(',')[0]?.trim() ?? '';
    const v = params[`X-Amz-${name}`];
    return typeof v === 'string' ? v : '';
  };
  const signedHeaders = authParam('SignedHeaders');
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers)) lower.set(k.toLowerCase().trim(), String(v).trim());
  const headerLines = signedHeaders
    .split(';')
    .filter((h) => lower.has(h))
    .map((h) => `${h}:${lower.get(h) ?? ''}\n`)
    .join('');
  const query = { ...params };
  delete query['X-Amz-Signature'];
  const canonical = [verb, path, canonicalQuery(query), headerLines, signedHeaders, String(creds.body_hash ?? '')].join('\n');
  const credential = authParam('Credential').split('/');
  const date = headerValue(headers, 'x-amz-date') ?? (typeof params['X-Amz-Date'] === 'string' ? params['X-Amz-Date'] : '');
  if (credential.length !== 5 || !date.startsWith(credential[1] ?? '\0')) throw new Unauthorized('Invalid EC2 signature.');
  const stringToSign = ['AWS4-HMAC-SHA256', date, credential.slice(1).join('/'), createHash('sha256').update(canonical).digest('hex')].join('\n');
  return hmac(signingKey(secret, credential[1] ?? '', credential[2] ?? '', credential[3] ?? ''), stringToSign).toString('hex');
}
