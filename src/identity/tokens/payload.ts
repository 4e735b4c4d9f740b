import { decode, encode } from '@msgpack/msgpack';

/** What a token carries; everything else is looked up when it is validated. */
export interface TokenPayload {
  userId: string;
  methods: string[];
  scope: { type: 'unscoped' } | { type: 'project' | 'domain'; id: string } | { type: 'system' };
  /** Milliseconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
  /** This token's audit id first, then the audit id of the token it was made from (a chain). */
  auditIds: string[];
  applicationCredentialId: string | null;
}

// Bits of the packed methods: append only (tokens already issued keep their meaning).
const METHODS = ['password', 'token', 'application_credential', 'totp', 'mapped', 'external', 'ec2credential'] as const;
const SCOPES = ['unscoped', 'project', 'domain', 'system'] as const;
const FORMAT_VERSION = 1;

/** Packs ids as 16 bytes when they are hex UUIDs, which keeps tokens short. */
function packId(id: string): string | Uint8Array {
  return /^[0-9a-f]{32}$/.test(id) ? Buffer.from(id, 'hex') : id;
}

function unpackId(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'string') return value;
  throw new Error('bad id in token');
}

function packAudit(id: string): Uint8Array {
  return Buffer.from(id, 'base64url');
}

export function packPayload(p: TokenPayload): Uint8Array {
  let methods = 0;
  for (const m of p.methods) {
    const bit = METHODS.indexOf(m as (typeof METHODS)[number]);
    if (bit < 0) throw new Error(`unknown auth method ${m}`);
    methods |= 1 << bit;
  }
  const scopeId = p.scope.type === 'project' || p.scope.type === 'domain' ? packId(p.scope.id) : null;
  return encode([
    FORMAT_VERSION,
    packId(p.userId),
    methods,
    SCOPES.indexOf(p.scope.type),
    scopeId,
    p.issuedAt,
    p.expiresAt,
    p.auditIds.map(packAudit),
    p.applicationCredentialId ? packId(p.applicationCredentialId) : null,
  ]);
}

/** Unpacks a payload; throws on anything malformed (the caller treats that as an invalid token). */
export function unpackPayload(bytes: Uint8Array): TokenPayload {
  const value = decode(bytes);
  if (!Array.isArray(value) || value[0] !== FORMAT_VERSION || value.length !== 9) throw new Error('unknown token payload');
  const [, user, methodBits, scopeIndex, scopeId, issuedAt, expiresAt, audits, appCred] = value as unknown[];
  if (typeof methodBits !== 'number' || typeof scopeIndex !== 'number' || typeof issuedAt !== 'number' || typeof expiresAt !== 'number' || !Array.isArray(audits)) {
    throw new Error('malformed token payload');
  }
  const methods = METHODS.filter((_, bit) => (methodBits & (1 << bit)) !== 0);
  const type = SCOPES[scopeIndex];
  let scope: TokenPayload['scope'];
  switch (type) {
    case 'project':
    case 'domain':
      scope = { type, id: unpackId(scopeId) };
      break;
    case 'system':
    case 'unscoped':
      scope = { type };
      break;
    default:
      throw new Error('bad token scope');
  }
  return {
    userId: unpackId(user),
    methods,
    scope,
    issuedAt,
    expiresAt,
    auditIds: audits.map((a) => Buffer.from(a as Uint8Array).toString('base64url')),
    applicationCredentialId: appCred === null || appCred === undefined ? null : unpackId(appCred),
  };
}
