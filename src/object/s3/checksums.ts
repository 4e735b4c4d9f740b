import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The additional checksums of S3 (`x-amz-checksum-crc32`, `-crc32c`,
 * `-crc64nvme`, `-sha1`, `-sha256`), computed incrementally over a body; the
 * value a client sends is the base64 of the big-endian digest.
 */
export interface Checksum {
  /** Upper-case algorithm name as in `x-amz-sdk-checksum-algorithm` (`CRC32`). */
  readonly algorithm: string;
  update(data: Buffer): void;
  /** The base64 digest of everything given so far. */
  digest(): string;
}

/** The header names of the checksums, by lower-case algorithm name. */
export const CHECKSUM_HEADERS: Record<string, string> = {
  crc32: 'x-amz-checksum-crc32',
  crc32c: 'x-amz-checksum-crc32c',
  crc64nvme: 'x-amz-checksum-crc64nvme',
  sha1: 'x-amz-checksum-sha1',
  sha256: 'x-amz-checksum-sha256',
};

/** Byte length of each digest, for checking a value's form before the body is read. */
const DIGEST_BYTES: Record<string, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 };

function u32(value: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b.toString('base64');
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5), as two 32-bit halves. */
const CRC64_TABLE = (() => {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  const polyHi = 0x9a6c9329;
  const polyLo = 0xac4bc9b5;
  for (let n = 0; n < 256; n++) {
    let h = 0;
    let l = n;
    for (let k = 0; k < 8; k++) {
      const bit = l & 1;
      l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
      h = h >>> 1;
      if (bit) {
        h = (h ^ polyHi) >>> 0;
        l = (l ^ polyLo) >>> 0;
      }
    }
    hi[n] = h;
    lo[n] = l;
  }
  return { hi, lo };
})();

function hashChecksum(algorithm: string, hash: Hash): Checksum {
  return {
    algorithm,
    update: (data) => {
      hash.update(data);
    },
    digest: () => hash.copy().digest('base64'),
  };
}

/** A fresh checksum for a lower-case algorithm name (`crc32`), or null when unknown. */
export function createChecksum(name: string): Checksum | null {
  switch (name) {
    case 'crc32': {
      let value = 0;
      return {
        algorithm: 'CRC32',
        update: (data) => {
          value = crc32(data, value);
        },
        digest: () => u32(value),
      };
    }
    case 'crc32c': {
      let value = 0xffffffff;
      return {
        algorithm: 'CRC32C',
        update: (data) => {
          let c = value;
          for (let i = 0; i < data.length; i++) c = (CRC32C_TABLE[(c ^ (data[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
          value = c >>> 0;
        },
        digest: () => u32(value ^ 0xffffffff),
      };
    }
    case 'crc64nvme': {
      let h = 0xffffffff;
      let l = 0xffffffff;
      return {
        algorithm: 'CRC64NVME',
        update: (data) => {
          for (let i = 0; i < data.length; i++) {
            const idx = (l ^ (data[i] ?? 0)) & 0xff;
            l = (((l >>> 8) | ((h & 0xff) << 24)) ^ (CRC64_TABLE.lo[idx] ?? 0)) >>> 0;
            h = ((h >>> 8) ^ (CRC64_TABLE.hi[idx] ?? 0)) >>> 0;
          }
        },
        digest: () => {
          const b = Buffer.alloc(8);
          b.writeUInt32BE((h ^ 0xffffffff) >>> 0, 0);
          b.writeUInt32BE((l ^ 0xffffffff) >>> 0, 4);
          return b.toString('base64');
        },
      };
    }
    case 'sha1':
      return hashChecksum('SHA1', createHash('sha1'));
    case 'sha256':
      return hashChecksum('SHA256', createHash('sha256'));
    default:
      return null;
  }
}

/** Whether a base64 value has the form of that algorithm's digest. */
export function validChecksumValue(name: string, value: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return false;
  return Buffer.from(value, 'base64').length === DIGEST_BYTES[name];
}
