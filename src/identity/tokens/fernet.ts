import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The Fernet format (https://github.com/fernet/spec): version 0x80, 64-bit
 * big-endian timestamp, 128-bit IV, AES-128-CBC ciphertext, HMAC-SHA256 over
 * all of that. Keys are 32 random bytes, base64url: the first half signs, the
 * second half encrypts. Tokens are base64url without padding (as Keystone's).
 */
const VERSION = 0x80;

export function generateFernetKey(): string {
  return randomBytes(32).toString('base64url');
}

interface KeyParts {
  signing: Buffer;
  encryption: Buffer;
}

function splitKey(key: string): KeyParts {
  const raw = Buffer.from(key, 'base64url');
  if (raw.length !== 32) throw new Error('a Fernet key is 32 bytes, base64url-encoded');
  return { signing: raw.subarray(0, 16), encryption: raw.subarray(16) };
}

/** Encrypts and signs `plaintext` with `key`; `now` is the token's timestamp (seconds). */
export function fernetEncrypt(key: string, plaintext: Uint8Array, now = Math.floor(Date.now() / 1000)): string {
  const { signing, encryption } = splitKey(key);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-128-cbc', encryption, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const header = Buffer.alloc(9);
  header[0] = VERSION;
  header.writeBigUInt64BE(BigInt(now), 1);
  const signed = Buffer.concat([header, iv, body]);
  const mac = createHmac('sha256', signing).update(signed).digest();
  return Buffer.concat([signed, mac]).toString('base64url');
}

/**
 * Verifies and decrypts a token with the first key that signed it. Returns
 * null for anything not made by one of `keys` (tampered, truncated, foreign).
 */
export function fernetDecrypt(keys: readonly string[], token: string): { plaintext: Buffer; timestamp: number } | null {
  if (token.length < 100 || token.length > 1024 || !/^[A-Za-z0-9_-]+=*$/.test(token)) return null;
  const raw = Buffer.from(token.replace(/=+$/, ''), 'base64url');
  if (raw.length < 1 + 8 + 16 + 16 + 32 || raw[0] !== VERSION || (raw.length - 57) % 16 !== 0) return null;
  const signed = raw.subarray(0, raw.length - 32);
  const mac = raw.subarray(raw.length - 32);
  for (const key of keys) {
    const { signing, encryption } = splitKey(key);
    const expected = createHmac('sha256', signing).update(signed).digest();
    if (!timingSafeEqual(expected, mac)) continue;
    try {
      const decipher = createDecipheriv('aes-128-cbc', encryption, raw.subarray(9, 25));
      const plaintext = Buffer.concat([decipher.update(raw.subarray(25, raw.length - 32)), decipher.final()]);
      return { plaintext, timestamp: Number(raw.readBigUInt64BE(1)) };
    } catch {
      return null;
    }
  }
  return null;
}
