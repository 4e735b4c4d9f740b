import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { StratusConfig } from '../../core/config.js';

/**
 * The secret the network's metadata proxy signs instance ids with (Nova's
 * and Neutron's `metadata_proxy_shared_secret`): `compute.metadata.shared_secret`
 * when set (every host of a multi-host cloud must be given the same), else
 * generated once and kept in `<data_dir>/metadata-proxy-secret` (mode 0600),
 * so that every role of the all-in-one reads the same. Idempotent, also when
 * two processes ask at once: the first file written wins.
 */
export function metadataSecret(config: StratusConfig): string {
  const configured = config.compute.metadata.shared_secret;
  if (configured) return configured;
  const file = path.join(config.data_dir, 'metadata-proxy-secret');
  const existing = readSecret(file);
  if (existing) return existing;
  fs.mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flush: true });
  try {
    // A hard link never replaces a file another process wrote meanwhile.
    fs.linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const secret = readSecret(file);
  if (!secret) throw new Error(`${file} is empty`);
  return secret;
}

function readSecret(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** `X-Instance-ID-Signature`: the hex HMAC-SHA256 of the instance id under the shared secret. */
export function instanceIdSignature(secret: string, instanceId: string): string {
  return createHmac('sha256', secret).update(instanceId, 'utf8').digest('hex');
}

/** True when `signature` is the instance id's (compared in constant time). */
export function validSignature(secret: string, instanceId: string, signature: string): boolean {
  const expected = Buffer.from(instanceIdSignature(secret, instanceId), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
