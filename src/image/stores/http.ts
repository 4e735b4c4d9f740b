import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { StoreDataMissing, type ByteRange, type ImageStore, type StoredData } from './store.js';

/**
 * Read-only image data on web servers (Glance's `http` store): an image's
 * location is an `http(s)://` URL, read with GET (and `Range`), sized with
 * HEAD. Nothing can be written or deleted here.
 */
export class HttpStore implements ImageStore {
  readonly type = 'http';
  readonly readOnly = true;

  constructor(
    readonly id: string,
    readonly description: string,
    private readonly timeoutMs = 60_000,
  ) {}

  async add(): Promise<StoredData> {
    throw new Error(`store ${this.id} is read-only`);
  }

  async get(url: string, range?: ByteRange): Promise<Readable> {
    const headers: Record<string, string> = range ? { Range: `bytes=${range.start}-${range.end}` } : {};
    const response = await fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(this.timeoutMs) }).catch((err: unknown) => {
      throw new StoreDataMissing(`cannot reach ${url}: ${String(err)}`);
    });
    if (!response.ok || !response.body) throw new StoreDataMissing(`${url} answered ${response.status}`);
    const stream = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    // A server that ignored the range sent the whole body: cut the range out of it.
    return range && response.status === 200 ? Readable.from(sliceBytes(range)(stream)) : stream;
  }

  async size(url: string): Promise<number> {
    const response = await fetch(url, { method: 'HEAD', redirect: 'follow', signal: AbortSignal.timeout(this.timeoutMs) }).catch((err: unknown) => {
      throw new StoreDataMissing(`cannot reach ${url}: ${String(err)}`);
    });
    const length = Number(response.headers.get('content-length'));
    if (!response.ok || !Number.isSafeInteger(length)) throw new StoreDataMissing(`${url} gave no size (status ${response.status})`);
    return length;
  }

  async delete(): Promise<void> {
    // Read-only: the data belongs to the web server.
  }

  localPath(): null {
    return null;
  }

  owns(url: string): boolean {
    return /^https?:\/\//i.test(url);
  }
}

/** Passes on only the bytes of `range` (inclusive ends) of a stream. */
function sliceBytes(range: ByteRange): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* slice(source) {
    let offset = 0;
    for await (const chunk of source) {
      const start = Math.max(range.start - offset, 0);
      const end = Math.min(range.end + 1 - offset, chunk.length);
      if (start < end) yield chunk.subarray(start, end);
      offset += chunk.length;
      if (offset > range.end) return;
    }
  };
}
