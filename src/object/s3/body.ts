import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { createChecksum, validChecksumValue, type Checksum } from './checksums.js';
import { S3Error } from './errors.js';
import { chunkStringToSign, EMPTY_SHA256, sameSignature, signV4, trailerStringToSign, type SigV4Scope } from './signature.js';

/** AWS's smallest chunk of an `aws-chunked` body, the last one excepted. */
export const MIN_CHUNK_SIZE = 8192;
/** The longest chunk header or trailer line read. */
const MAX_LINE = 4096;

/** How chunk and trailer signatures of a signed `aws-chunked` body are checked. */
export interface ChunkSigning {
  key: Buffer;
  amzDate: string;
  scope: SigV4Scope;
  /** The request's own signature: the first chunk's signature chains from it. */
  seedSignature: string;
}

/** What an S3 request body must turn out to be. */
export interface S3BodyOptions {
  /** `chunked`: an `aws-chunked` body to decode; `plain`: the bytes as sent. */
  encoding: 'plain' | 'chunked';
  /** The payload length (`x-amz-decoded-content-length` or `Content-Length`), null when unknown. */
  length: number | null;
  /** Plain bodies: the `x-amz-content-sha256` the payload must hash to. */
  sha256?: string;
  /** Chunked bodies: check every chunk signature (null: unsigned chunks). */
  signing?: ChunkSigning | null;
  /** Chunked bodies: the trailers that must follow (lower-case names, `x-amz-trailer-signature` included when signed). */
  trailers?: string[];
  /** An `x-amz-checksum-*` to verify: its algorithm (`crc32`) and the value from the header, or from the trailer of that name. */
  checksum?: { algorithm: string; value?: string; trailer?: string } | null;
}

/**
 * Checks (and for `aws-chunked`, decodes) an S3 request body while it
 * streams: chunk framing and signatures, the declared lengths, the payload
 * SHA-256, the additional checksum. The last piece of the payload is held
 * back until everything is verified, so whoever reads this stream never sees
 * a complete payload that failed a check: it sees an error instead (`failure`
 * says which S3 error). `trailers` holds the trailers once the body is read.
 */
export class S3BodyStream extends Transform {
  /** The trailers read after the last chunk, lower-case names. */
  readonly trailers: Record<string, string> = {};
  /** Set when a check failed; the stream is destroyed with it. */
  failure: S3Error | null = null;

  private readonly opts: S3BodyOptions;
  private pending: Buffer | null = null;
  private received = 0;
  private readonly payloadHash: Hash | null;
  private readonly checksum: Checksum | null;
  // aws-chunked state
  private state: 'header' | 'data' | 'data-end' | 'trailers' | 'done' = 'header';
  private line = Buffer.alloc(0);
  private chunkLeft = 0;
  private chunkSize = 0;
  private lastChunkSize: number | null = null;
  private chunks = 0;
  private chunkHash: Hash | null = null;
  private chunkSignature = '';
  private previousSignature: string;

  constructor(opts: S3BodyOptions) {
    super();
    this.opts = opts;
    this.payloadHash = opts.encoding === 'plain' && opts.sha256 ? createHash('sha256') : null;
    this.checksum = opts.checksum ? createChecksum(opts.checksum.algorithm) : null;
    this.previousSignature = opts.signing?.seedSignature ?? '';
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.opts.encoding === 'plain') this.payload(data);
      else this.decode(data);
      callback();
    } catch (err) {
      callback(this.fail(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.opts.encoding === 'chunked') {
        if (this.state === 'trailers' && this.line.length === 0) this.endTrailers();
        if (this.state !== 'done') throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
      }
      this.verifyEnd();
      if (this.pending) this.push(this.pending);
      this.pending = null;
      callback();
    } catch (err) {
      callback(this.fail(err));
    }
  }

  private fail(err: unknown): Error {
    this.failure = err instanceof S3Error ? err : new S3Error('InternalError');
    this.pending = null;
    return this.failure;
  }

  /** One piece of payload: counted, hashed, passed on one piece late. */
  private payload(data: Buffer): void {
    if (data.length === 0) return;
    this.received += data.length;
    if (this.opts.length !== null && this.received > this.opts.length) {
      throw new S3Error('IncompleteBody', undefined, { NumberBytesExpected: String(this.opts.length), NumberBytesProvided: String(this.received) });
    }
    this.payloadHash?.update(data);
    this.checksum?.update(data);
    if (this.pending) this.push(this.pending);
    this.pending = data;
  }

  private verifyEnd(): void {
    if (this.opts.length !== null && this.received !== this.opts.length) {
      throw new S3Error('IncompleteBody', undefined, { NumberBytesExpected: String(this.opts.length), NumberBytesProvided: String(this.received) });
    }
    if (this.payloadHash && this.opts.sha256) {
      const computed = this.payloadHash.digest('hex');
      if (computed !== this.opts.sha256.toLowerCase()) {
        throw new S3Error('XAmzContentSHA256Mismatch', undefined, { ClientComputedContentSHA256: this.opts.sha256, S3ComputedContentSHA256: computed });
      }
    }
    const spec = this.opts.checksum;
    if (this.checksum && spec) {
      const expected = spec.trailer ? this.trailers[spec.trailer] : spec.value;
      if (expected === undefined || !validChecksumValue(spec.algorithm, expected)) {
        throw new S3Error('InvalidRequest', `Value for ${spec.trailer ?? `x-amz-checksum-${spec.algorithm}`} ${spec.trailer ? 'trailing ' : ''}header is invalid.`);
      }
      if (this.checksum.digest() !== expected) throw new S3Error('BadDigest', `The ${this.checksum.algorithm} you specified did not match the calculated checksum.`);
    }
  }

  /** Feeds raw `aws-chunked` bytes through the framing state machine. */
  private decode(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      switch (this.state) {
        case 'header':
        case 'trailers': {
          const nl = data.indexOf(0x0a, at);
          const end = nl < 0 ? data.length : nl + 1;
          this.line = Buffer.concat([this.line, data.subarray(at, end)]);
          at = end;
          if (this.line.length > MAX_LINE) throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
          if (nl >= 0) {
            const text = this.line.toString('latin1');
            this.line = Buffer.alloc(0);
            if (!text.endsWith('\r\n')) throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
            if (this.state === 'header') this.chunkHeader(text.slice(0, -2));
            else this.trailerLine(text.slice(0, -2));
          }
          break;
        }
        case 'data': {
          const take = Math.min(this.chunkLeft, data.length - at);
          const piece = data.subarray(at, at + take);
          at += take;
          this.chunkLeft -= take;
          this.chunkHash?.update(piece);
          this.payload(piece);
          if (this.chunkLeft === 0) this.endChunk();
          break;
        }
        case 'data-end': {
          // The CRLF after a chunk's data, possibly split across reads.
          const take = Math.min(2 - this.line.length, data.length - at);
          this.line = Buffer.concat([this.line, data.subarray(at, at + take)]);
          at += take;
          if (this.line.length === 2) {
            if (this.line.toString('latin1') !== '\r\n') throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
            this.line = Buffer.alloc(0);
            this.state = 'header';
          }
          break;
        }
        case 'done':
          if (data.subarray(at).some((b) => b !== 0x0d && b !== 0x0a)) throw new S3Error('IncompleteBody', 'The request body terminated unexpectedly');
          at = data.length;
          break;
      }
    }
  }

  private chunkHeader(header: string): void {
    const semi = header.indexOf(';');
    const sizeText = (semi < 0 ? header : header.slice(0, semi)).trim();
    const params = semi < 0 ? '' : header.slice(semi + 1);
    if (!/^[0-9a-fA-F]{1,15}$/.test(sizeText)) throw new S3Error('IncompleteBody', `invalid chunk header: ${header.slice(0, 64)}`);
    const size = parseInt(sizeText, 16);
    if (this.lastChunkSize !== null && this.lastChunkSize < MIN_CHUNK_SIZE && size !== 0) {
      throw new S3Error('InvalidChunkSizeError', undefined, { Chunk: String(this.chunks + 1), BadChunkSize: String(this.lastChunkSize) });
    }
    this.lastChunkSize = size;
    if (this.opts.length !== null && this.received + size > this.opts.length) {
      throw new S3Error('IncompleteBody', undefined, { NumberBytesExpected: String(this.opts.length), NumberBytesProvided: String(this.received + size) });
    }
    if (this.opts.signing) {
      const [name, value] = params.split('=', 2).map((s) => s.trim());
      if (name !== 'chunk-signature' || !value) throw new S3Error('SignatureDoesNotMatch');
      this.chunkSignature = value;
      this.chunkHash = createHash('sha256');
    }
    this.chunks += 1;
    this.chunkSize = size;
    this.chunkLeft = size;
    if (size === 0) this.endChunk();
    else this.state = 'data';
  }

  private endChunk(): void {
    const signing = this.opts.signing;
    if (signing && this.chunkHash) {
      const hash = this.chunkSize === 0 ? EMPTY_SHA256 : this.chunkHash.digest('hex');
      const expected = signV4(signing.key, chunkStringToSign(signing.amzDate, signing.scope, this.previousSignature, hash));
      if (!sameSignature(expected, this.chunkSignature)) throw new S3Error('SignatureDoesNotMatch');
      this.previousSignature = this.chunkSignature;
      this.chunkHash = null;
    }
    if (this.chunkSize > 0) {
      this.state = 'data-end';
      return;
    }
    this.state = (this.opts.trailers ?? []).length > 0 ? 'trailers' : 'done';
  }

  private trailerLine(text: string): void {
    if (text === '') {
      this.endTrailers();
      return;
    }
    const colon = text.indexOf(':');
    const name = (colon < 0 ? text : text.slice(0, colon)).trim().toLowerCase();
    if (colon < 0 || !(this.opts.trailers ?? []).includes(name)) throw new S3Error('MalformedTrailerError');
    this.trailers[name] = text.slice(colon + 1).trim();
  }

  private endTrailers(): void {
    const expected = this.opts.trailers ?? [];
    const got = Object.keys(this.trailers);
    if (got.length !== expected.length || expected.some((t) => !(t in this.trailers))) throw new S3Error('MalformedTrailerError');
    const signing = this.opts.signing;
    if (signing && expected.includes('x-amz-trailer-signature')) {
      const want = signV4(signing.key, trailerStringToSign(signing.amzDate, signing.scope, this.previousSignature, this.trailers));
      if (!sameSignature(want, this.trailers['x-amz-trailer-signature'] ?? '')) throw new S3Error('SignatureDoesNotMatch');
    }
    this.state = 'done';
  }
}
