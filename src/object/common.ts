import { createHash } from 'node:crypto';

/**
 * What every part of object storage shares: where a name hashes to, Swift's
 * timestamps, and the limits of names and metadata (Swift's `constraints`).
 */

/** The secret salt of every path hash (Swift's `swift_hash_path_prefix`/`suffix`); shared by every node of a cluster. */
export interface HashPathSalt {
  prefix: string;
  suffix: string;
}

/**
 * The MD5 of `/account[/container[/object]]` between the cluster's prefix and
 * suffix, as Swift's `hash_path`: it names an object's directory on disk and,
 * through its first four bytes, the ring partition.
 */
export function hashPath(salt: HashPathSalt, account: string, container?: string, object?: string): Buffer {
  if (object !== undefined && container === undefined) throw new Error('an object name needs a container name');
  let path = `/${account}`;
  if (container !== undefined) path += `/${container}`;
  if (object !== undefined) path += `/${object}`;
  return createHash('md5').update(salt.prefix).update(path).update(salt.suffix).digest();
}

/** The hex form of `hashPath`. */
export function hashPathHex(salt: HashPathSalt, account: string, container?: string, object?: string): string {
  return hashPath(salt, account, container, object).toString('hex');
}

/** The partition of a path hash in a ring of 2^partPower partitions: its first 32 bits, shifted. */
export function partitionOf(digest: Buffer, partPower: number): number {
  return digest.readUInt32BE(0) >>> (32 - partPower);
}

/**
 * Swift's timestamps: seconds since the epoch with five decimals
 * (`1700000000.12345`), optionally with a 16-hex-digit offset
 * (`1700000000.12345_0000000000000001`) that orders writes made in the same
 * instant. Compared as strings once normalised: the newest wins.
 */
export class Timestamp {
  /** Time in units of 10 µs. */
  readonly ticks: number;
  readonly offset: number;

  constructor(ticks: number, offset = 0) {
    this.ticks = ticks;
    this.offset = offset;
  }

  static now(): Timestamp {
    return new Timestamp(Math.round(Date.now() * 100));
  }

  /** Parses `X-Timestamp` forms: `1700000000.12345`, `1700000000`, with an `_offset`. Throws on anything else. */
  static parse(text: string): Timestamp {
    const match = /^(\d{1,10})(?:\.(\d{1,5}))?(?:_([0-9a-f]{16}))?$/.exec(text.trim());
    if (!match) {
      const number = Number(text);
      if (!Number.isFinite(number) || number < 0 || number >= 1e10) throw new Error(`invalid timestamp ${JSON.stringify(text)}`);
      return new Timestamp(Math.round(number * 1e5));
    }
    const ticks = Number(match[1]) * 1e5 + Number((match[2] ?? '').padEnd(5, '0'));
    return new Timestamp(ticks, match[3] ? Number.parseInt(match[3], 16) : 0);
  }

  /** `1700000000.12345`: the `X-Timestamp` and `X-Backend-Timestamp` form, without the offset. */
  get normal(): string {
    const seconds = Math.floor(this.ticks / 1e5);
    const fraction = String(this.ticks % 1e5).padStart(5, '0');
    return `${String(seconds).padStart(10, '0')}.${fraction}`;
  }

  /** With the offset when there is one: what file names and database rows keep. */
  get internal(): string {
    return this.offset ? `${this.normal}_${this.offset.toString(16).padStart(16, '0')}` : this.normal;
  }

  /** Seconds since the epoch, as a number. */
  get seconds(): number {
    return this.ticks / 1e5;
  }

  /** `Last-Modified` of a response: the timestamp rounded up to the next whole second, as Swift does. */
  get httpDate(): string {
    return new Date(Math.ceil(this.ticks / 1e5) * 1000).toUTCString();
  }

  compare(other: Timestamp): number {
    return this.ticks - other.ticks || this.offset - other.offset;
  }

  withOffset(offset: number): Timestamp {
    return new Timestamp(this.ticks, offset);
  }

  toString(): string {
    return this.internal;
  }
}

/** Swift's default constraints, as `/info` reports them under `swift`. */
export const CONSTRAINTS = {
  max_file_size: 5368709122,
  max_meta_name_length: 128,
  max_meta_value_length: 256,
  max_meta_count: 90,
  max_meta_overall_size: 4096,
  max_header_size: 8192,
  max_object_name_length: 1024,
  container_listing_limit: 10000,
  account_listing_limit: 10000,
  max_account_name_length: 256,
  max_container_name_length: 256,
  extra_header_count: 0,
} as const;

/** The hidden account that queues objects to expire (Swift's `.expiring_objects`). */
export const EXPIRER_ACCOUNT = '.expiring_objects';
/** Seconds per expirer queue container (Swift's `expiring_objects_container_divisor`). */
export const EXPIRER_DIVISOR = 86400;
