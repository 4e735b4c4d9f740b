import { execFile } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate, type JsonWebKey } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { ComputeConfig } from '../core/config.js';
import { isUniqueViolation } from '../core/db/database.js';
import { isoNow } from './common.js';
import type { ComputeSchema, KeyPairRow } from './db/schema.js';
import { badRequest, conflict, ComputeError, notFound } from './errors.js';
import { projectLimits } from './quotas.js';

/**
 * Key pairs, owned by a user (not a project): SSH public keys (RSA, ECDSA,
 * Ed25519) with their MD5 fingerprint as `ssh-keygen -l -E md5` prints it,
 * and X.509 certificates with their SHA-1 fingerprint. Before 2.92 Nova
 * generates the pair when no public key is given and returns the private key
 * once; it is never stored.
 */

type Db = Kysely<ComputeSchema>;

/** What a key pair holds: an SSH public key, or an X.509 certificate (WinRM). */
export type KeypairType = 'ssh' | 'x509';

/** Nova's 400 for a public key it cannot read. */
function invalidKeypair(reason: string): ComputeError {
  return badRequest(`Keypair data is invalid: ${reason}`);
}

/** Reads SSH wire-format fields (`string` and `mpint`) from a key blob. */
class WireReader {
  private offset = 0;
  constructor(private readonly data: Buffer) {}

  bytes(): Buffer {
    if (this.offset + 4 > this.data.length) throw new Error('truncated');
    const length = this.data.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (start + length > this.data.length) throw new Error('truncated');
    this.offset = start + length;
    return this.data.subarray(start, start + length);
  }

  text(): string {
    return this.bytes().toString('latin1');
  }

  /** An mpint as unsigned big-endian bytes, without the sign byte. */
  unsigned(): Buffer {
    const raw = this.bytes();
    if (raw.length > 0 && (raw[0] ?? 0) & 0x80) throw new Error('negative integer');
    let start = 0;
    while (start < raw.length - 1 && raw[start] === 0) start++;
    return raw.subarray(start);
  }

  done(): boolean {
    return this.offset === this.data.length;
  }
}

const CURVES: Record<string, { crv: string; size: number }> = {
  nistp256: { crv: 'P-256', size: 32 },
  nistp384: { crv: 'P-384', size: 48 },
  nistp521: { crv: 'P-521', size: 66 },
};

const b64url = (data: Buffer): string => data.toString('base64url');

/** The key of an SSH key blob as a JWK, which node:crypto then checks (a point on the curve, a usable modulus). */
function blobToJwk(type: string, blob: Buffer): JsonWebKey {
  const reader = new WireReader(blob);
  const inner = reader.text();
  if (inner !== type) throw new Error('key type mismatch');
  let jwk: JsonWebKey;
  if (type === 'ssh-rsa') {
    const e = reader.unsigned();
    const n = reader.unsigned();
    jwk = { kty: 'RSA', e: b64url(e), n: b64url(n) };
  } else if (type === 'ssh-ed25519') {
    const x = reader.bytes();
    if (x.length !== 32) throw new Error('bad Ed25519 key');
    jwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(x) };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curveName = reader.text();
    const curve = CURVES[curveName];
    if (!curve || type !== `ecdsa-sha2-${curveName}`) throw new Error('bad curve');
    const point = reader.bytes();
    if (point.length !== 1 + 2 * curve.size || point[0] !== 4) throw new Error('bad point');
    jwk = { kty: 'EC', crv: curve.crv, x: b64url(point.subarray(1, 1 + curve.size)), y: b64url(point.subarray(1 + curve.size)) };
  } else {
    throw new Error(`unsupported key type ${type}`);
  }
  if (!reader.done()) throw new Error('unexpected data after the key');
  return jwk;
}

/**
 * The MD5 fingerprint (`aa:bb:...`) of an OpenSSH public key line
 * (`<type> <base64> [comment]`), after checking that it is a well-formed
 * RSA, ECDSA or Ed25519 key; 400 `Keypair data is invalid: failed to
 * generate fingerprint` otherwise.
 */
export function sshFingerprint(publicKey: string): string {
  const match = /^(\S+)[ \t]+(\S+)/.exec(publicKey);
  try {
    if (!match) throw new Error('not an OpenSSH public key line');
    const [, type = '', body = ''] = match;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('not base64');
    const blob = Buffer.from(body, 'base64');
    createPublicKey({ key: blobToJwk(type, blob), format: 'jwk' });
    return colonHex(createHash('md5').update(blob).digest());
  } catch {
    throw invalidKeypair('failed to generate fingerprint');
  }
}

/** The SHA-1 fingerprint (`aa:bb:...`) of a PEM certificate; 400 when it is not one. */
export function x509Fingerprint(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint.toLowerCase();
  } catch (err) {
    throw invalidKeypair(`failed to generate X509 fingerprint. Error message: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function colonHex(digest: Buffer): string {
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function sshString(data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, data]);
}

function sshMpint(unsigned: Buffer): Buffer {
  let start = 0;
  while (start < unsigned.length - 1 && unsigned[start] === 0) start++;
  const trimmed = unsigned.subarray(start);
  return sshString((trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** A new 2048-bit RSA pair: the private key (PEM, PKCS#1), the public key line and its fingerprint. */
export function generateSshKeypair(): { privateKey: string; publicKey: string; fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const jwk = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshMpint(Buffer.from(jwk.e ?? '', 'base64url')), sshMpint(Buffer.from(jwk.n ?? '', 'base64url'))]);
  const line = `ssh-rsa ${blob.toString('base64')} Generated-by-Nova`;
  return { privateKey: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey: line, fingerprint: colonHex(createHash('md5').update(blob).digest()) };
}

function run(command: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { encoding: 'buffer', maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args[0] ?? ''} failed: ${stderr.toString().trim() || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

/**
 * A self-signed client certificate for the user (`CN=<user_id>`, WinRM
 * style, made with `openssl` as Nova does): the certificate (PEM) is the
 * public key, the private key is a PKCS#12 bundle with an empty password,
 * in base64.
 */
export async function generateX509Keypair(userId: string): Promise<{ privateKey: string; publicKey: string; fingerprint: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'stratus-x509-'));
  try {
    const keyFile = path.join(dir, 'temp.key');
    const confFile = path.join(dir, 'temp.conf');
    await fs.writeFile(
      confFile,
      `distinguished_name = req_distinguished_name\n[req_distinguished_name]\n[v3_req_client]\nextendedKeyUsage = clientAuth\nsubjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:${userId}@localhost\n`,
    );
    const cert = await run('openssl', ['req', '-x509', '-nodes', '-days', '3650', '-config', confFile, '-newkey', 'rsa:2048', '-outform', 'PEM', '-keyout', keyFile, '-subj', `/CN=${userId}`, '-extensions', 'v3_req_client']);
    const bundle = await run('openssl', ['pkcs12', '-export', '-inkey', keyFile, '-password', 'pass:'], cert);
    const certificate = cert.toString('utf8');
    return { privateKey: bundle.toString('base64'), publicKey: certificate, fingerprint: x509Fingerprint(certificate) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Nova's 404 for a key pair the user does not have. */
export function keypairNotFound(name: string, userId: string): ComputeError {
  return notFound(`Keypair ${name} not found for user ${userId}`);
}

/** A user's key pair, or 404. */
export async function getKeypair(db: Db, userId: string, name: string): Promise<KeyPairRow> {
  const row = await db.selectFrom('key_pair').selectAll().where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  if (!row) throw keypairNotFound(name, userId);
  return row;
}

/** A page of a user's key pairs, by name, after `marker` (a name of theirs: else 400 `Marker X could not be found.`). */
export async function listKeypairs(db: Db, userId: string, page: { limit?: number; marker?: string } = {}): Promise<KeyPairRow[]> {
  let query = db.selectFrom('key_pair').selectAll().where('user_id', '=', userId).orderBy('name');
  if (page.marker !== undefined) {
    const marker = await db.selectFrom('key_pair').select('name').where('user_id', '=', userId).where('name', '=', page.marker).executeTakeFirst();
    if (!marker) throw badRequest(`Marker ${page.marker} could not be found.`);
    query = query.where('name', '>', page.marker);
  }
  if (page.limit !== undefined) query = query.limit(page.limit);
  return query.execute();
}

async function countKeypairs(db: Db, userId: string): Promise<number> {
  const row = await db.selectFrom('key_pair').select((eb) => eb.fn.countAll<number>().as('n')).where('user_id', '=', userId).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Stores a key pair for `userId` in `projectId`, within the `key_pairs`
 * quota (403 `Quota exceeded, too many key pairs.`, checked again after the
 * insert so that racing creations cannot both pass); 409 `Key pair 'x'
 * already exists.` when the user has one of that name.
 */
export async function storeKeypair(db: Db, config: ComputeConfig, projectId: string, row: Omit<KeyPairRow, 'created_at'>): Promise<KeyPairRow> {
  const limits = await projectLimits(db, config, projectId, row.user_id);
  const limit = limits.key_pairs;
  const overQuota = new ComputeError(403, 'Quota exceeded, too many key pairs.');
  if (limit >= 0 && (await countKeypairs(db, row.user_id)) + 1 > limit) throw overQuota;
  const full: KeyPairRow = { ...row, created_at: isoNow() };
  try {
    await db.insertInto('key_pair').values(full).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Key pair '${row.name}' already exists.`);
    throw err;
  }
  if (limit >= 0 && (await countKeypairs(db, row.user_id)) > limit) {
    await db.deleteFrom('key_pair').where('user_id', '=', row.user_id).where('name', '=', row.name).execute();
    throw overQuota;
  }
  return full;
}

/** Deletes a user's key pair; 404 when there is none. */
export async function deleteKeypair(db: Db, userId: string, name: string): Promise<void> {
  const result = await db.deleteFrom('key_pair').where('user_id', '=', userId).where('name', '=', name).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw keypairNotFound(name, userId);
}

/**
 * The integer `id` Nova shows for a key pair (its database id there): ours
 * have none, so it is derived from the owner and name, stable across calls.
 */
export function keypairId(row: Pick<KeyPairRow, 'user_id' | 'name'>): number {
  return createHash('sha1').update(`${row.user_id}/${row.name}`).digest().readUInt32BE(0) & 0x7fffffff;
}
