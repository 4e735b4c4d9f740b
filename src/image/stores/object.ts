import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreDataMissing, type ByteRange, type ImageStore, type StoredData } from './store.js';

/** How the store reaches object storage: the account URL and a token (the image service's ServiceClient gives both). */
export interface ObjectStoreConnection {
  /** The account's URL, `http://<proxy>/v1/AUTH_<project>` (the catalog's `object-store` internal endpoint). */
  endpoint(): Promise<string>;
  /** A token that owns that account. */
  token(): Promise<string>;
}

/** Settings of an object store. */
export interface ObjectStoreOptions {
  /** Container of the images (created on first use). */
  container: string;
  /** Largest segment of a large image, in bytes: no single PUT is bigger. */
  segmentSize: number;
  connection: ObjectStoreConnection;
  /** Largest image written as one object instead of segments (default: the smaller of 4 MiB and the segment size). */
  singleObjectLimit?: number;
  /** Time without progress after which a request fails, in ms (default 60000). */
  timeoutMs?: number;
}

/** Segments a static large object may have (Swift's default `max_manifest_segments`). */
export const MAX_SEGMENTS = 1000;

/** The default segment size: 200 MiB. */
export const DEFAULT_SEGMENT_SIZE = 200 * 1024 * 1024;

/** Where an image is: `object://<container>/<object>`. */
interface ObjectLocation {
  container: string;
  object: string;
}

/** An image's location URL in an object store: `object://<container>/<image id>` (names URL-encoded). */
export function objectLocation(container: string, object: string): string {
  return `object://${encodeURIComponent(container)}/${encodeURIComponent(object)}`;
}

function parseLocation(url: string): ObjectLocation | null {
  const match = /^object:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!match) return null;
  try {
    return { container: decodeURIComponent(match[1] ?? ''), object: decodeURIComponent(match[2] ?? '') };
  } catch {
    return null;
  }
}

/** The name of segment `n` (1-based) of an image. */
export function segmentName(imageId: string, n: number): string {
  return `${imageId}-${String(n).padStart(5, '0')}`;
}

/** One entry of a static large object manifest. */
interface SegmentEntry {
  path: string;
  etag: string;
  size_bytes: number;
}

/** Object storage refused or failed a request that is not a missing object. */
export class ObjectStoreError extends Error {}

/**
 * Glance's swift store: images as objects in a container of the image
 * service's own account, reached over the Swift API (never through object
 * storage's internals). An image up to `singleObjectLimit` is one object
 * named by the image id; a larger one is streamed in segments
 * (`<image id>-00001`, ...) of at most `segmentSize` bytes each, then bound
 * by a static large object manifest under the image id, so that reads
 * (ranges included), sizes and deletes go through the one name. The
 * location is `object://<container>/<image id>`. Swift makes each PUT
 * durable (a quorum of fsynced replicas) before answering.
 */
export class ObjectStore implements ImageStore {
  readonly type = 'object';
  readonly readOnly = false;
  private readonly container: string;
  private readonly segmentSize: number;
  private readonly singleObjectLimit: number;
  private readonly timeoutMs: number;
  private readonly connection: ObjectStoreConnection;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private containerReady: Promise<void> | null = null;

  constructor(
    readonly id: string,
    readonly description: string,
    options: ObjectStoreOptions,
  ) {
    if (!options.container || options.container.includes('/') || Buffer.byteLength(options.container) > 256) {
      throw new Error(`image store '${id}': container '${options.container}' must be 1-256 bytes without '/'`);
    }
    if (!Number.isSafeInteger(options.segmentSize) || options.segmentSize < 1) throw new Error(`image store '${id}': segment_size must be a whole number of bytes >= 1`);
    this.container = options.container;
    this.segmentSize = options.segmentSize;
    this.singleObjectLimit = Math.min(options.singleObjectLimit ?? 4 * 1024 * 1024, options.segmentSize);
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.connection = options.connection;
  }

  /**
   * Writes an image: one PUT when it is small, else segments and a
   * manifest. Each segment's ETag is checked against the MD5 of what was
   * sent. On failure every segment written is deleted again.
   */
  async add(imageId: string, source: Readable): Promise<StoredData> {
    await this.ensureContainer();
    const reader = new ChunkReader(source);
    try {
      const head = await reader.take(this.singleObjectLimit);
      if (!(await reader.more())) {
        const body = Buffer.concat(head);
        await this.putObject(imageId, body);
        return { url: objectLocation(this.container, imageId), size: body.length };
      }
      return await this.addSegmented(imageId, head, reader);
    } finally {
      reader.close();
    }
  }

  private async putObject(name: string, body: Buffer): Promise<void> {
    const md5 = createHash('md5').update(body).digest('hex');
    const headers = { 'Content-Length': String(body.length), ETag: md5, 'Content-Type': 'application/octet-stream' };
    const { response } = await this.request('PUT', this.objectPath(this.container, name), { headers, body });
    const text = await readText(response);
    if (response.statusCode !== 201) throw this.failure('PUT', name, response, text);
  }

  private async addSegmented(imageId: string, head: Buffer[], reader: ChunkReader): Promise<StoredData> {
    const segments: SegmentEntry[] = [];
    const written: string[] = [];
    let size = 0;
    try {
      for (let n = 1; n === 1 || (await reader.more()); n += 1) {
        if (n > MAX_SEGMENTS) throw new ObjectStoreError(`image ${imageId} is larger than ${MAX_SEGMENTS} segments of ${this.segmentSize} bytes; raise the store's segment_size`);
        const name = segmentName(imageId, n);
        const headBytes = n === 1 ? head.reduce((a, c) => a + c.length, 0) : 0;
        const chunks = n === 1 ? concatChunks(head, reader.stream(this.segmentSize - headBytes)) : reader.stream(this.segmentSize);
        written.push(name);
        const segment = await this.putSegment(name, chunks);
        segments.push(segment);
        size += segment.size_bytes;
      }
      const manifest = Buffer.from(JSON.stringify(segments));
      const { response } = await this.request('PUT', `${this.objectPath(this.container, imageId)}?multipart-manifest=put`, {
        headers: { 'Content-Length': String(manifest.length), 'Content-Type': 'application/octet-stream' },
        body: manifest,
      });
      const text = await readText(response);
      if (response.statusCode !== 201) throw this.failure('PUT manifest', imageId, response, text);
      return { url: objectLocation(this.container, imageId), size };
    } catch (err) {
      await Promise.allSettled(written.map((name) => this.deleteObject(this.container, name)));
      throw err;
    }
  }

  /** Streams one segment (chunked), checking the ETag the server computed against ours. */
  private async putSegment(name: string, chunks: AsyncIterable<Buffer>): Promise<SegmentEntry> {
    const md5 = createHash('md5');
    let size = 0;
    const counted = async function* counted(): AsyncGenerator<Buffer> {
      for await (const chunk of chunks) {
        md5.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    };
    const { response } = await this.request('PUT', this.objectPath(this.container, name), {
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Readable.from(counted(), { objectMode: false }),
    });
    const text = await readText(response);
    if (response.statusCode !== 201) throw this.failure('PUT', name, response, text);
    const etag = md5.digest('hex');
    const returned = String(response.headers.etag ?? '').replace(/"/g, '');
    if (returned !== etag) throw new ObjectStoreError(`segment ${name}: object storage stored ETag ${returned || '(none)'}, but ${etag} was sent`);
    return { path: `/${this.container}/${name}`, etag, size_bytes: size };
  }

  async get(url: string, range?: ByteRange): Promise<Readable> {
    const where = this.locate(url);
    const headers: OutgoingHttpHeaders = range ? { Range: `bytes=${range.start}-${range.end}` } : {};
    const { response, request } = await this.request('GET', this.objectPath(where.container, where.object), { headers });
    const status = response.statusCode ?? 0;
    if (status === 200 || status === 206) {
      // The body may be read slowly (a client downloading): no idle limit once it flows.
      request.setTimeout(0);
      return range && status === 200 ? Readable.from(sliceBytes(range)(response)) : response;
    }
    const text = await readText(response);
    if (status === 404) throw new StoreDataMissing(`image data ${url} is missing`);
    throw this.failure('GET', where.object, response, text);
  }

  async size(url: string): Promise<number> {
    const where = this.locate(url);
    const { response } = await this.request('HEAD', this.objectPath(where.container, where.object), {});
    await readText(response);
    if (response.statusCode === 404) throw new StoreDataMissing(`image data ${url} is missing`);
    const length = Number(response.headers['content-length']);
    if (response.statusCode !== 200 || !Number.isSafeInteger(length)) throw this.failure('HEAD', where.object, response, '');
    return length;
  }

  /**
   * Deletes an image: a manifest with its segments
   * (`?multipart-manifest=delete`), or the single object; then any
   * segment an interrupted write left behind. A location already gone is
   * not an error.
   */
  async delete(url: string): Promise<void> {
    const where = parseLocation(url);
    if (!where) return;
    const path = this.objectPath(where.container, where.object);
    const head = await this.request('HEAD', path, {});
    await readText(head.response);
    const headStatus = head.response.statusCode ?? 0;
    if (headStatus !== 404 && headStatus !== 200) throw this.failure('HEAD', where.object, head.response, '');
    if (headStatus === 200 && /^true$/i.test(String(head.response.headers['x-static-large-object'] ?? ''))) {
      const { response } = await this.request('DELETE', `${path}?multipart-manifest=delete`, { headers: { Accept: 'application/json' } });
      const text = await readText(response);
      if (response.statusCode !== 200 && response.statusCode !== 404) throw this.failure('DELETE manifest', where.object, response, text);
      const result = response.statusCode === 200 ? parseBulkResult(text) : null;
      if (result && result.errors.length > 0) throw new ObjectStoreError(`DELETE manifest ${where.object}: ${JSON.stringify(result.errors)}`);
    } else if (headStatus === 200) {
      await this.deleteObject(where.container, where.object);
    }
    for (const name of await this.list(where.container, `${where.object}-`)) {
      if (/-\d{5}$/.test(name)) await this.deleteObject(where.container, name);
    }
  }

  localPath(): null {
    return null;
  }

  owns(url: string): boolean {
    return parseLocation(url)?.container === this.container;
  }

  /** Closes idle connections (for a clean exit). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private locate(url: string): ObjectLocation {
    const where = parseLocation(url);
    if (!where || where.container !== this.container) throw new StoreDataMissing(`location ${url} is not in store ${this.id}`);
    return where;
  }

  private objectPath(container: string, object: string): string {
    return `/${encodeURIComponent(container)}/${object.split('/').map(encodeURIComponent).join('/')}`;
  }

  /** Creates the container once per process (PUT is idempotent: 201 or 202). */
  private ensureContainer(): Promise<void> {
    if (!this.containerReady) {
      const ready = (async () => {
        const { response } = await this.request('PUT', `/${encodeURIComponent(this.container)}`, { headers: { 'Content-Length': '0' } });
        const text = await readText(response);
        if (response.statusCode !== 201 && response.statusCode !== 202) throw this.failure('PUT container', this.container, response, text);
      })();
      this.containerReady = ready;
      ready.catch(() => {
        if (this.containerReady === ready) this.containerReady = null;
      });
    }
    return this.containerReady;
  }

  private async deleteObject(container: string, name: string): Promise<void> {
    const { response } = await this.request('DELETE', this.objectPath(container, name), {});
    const text = await readText(response);
    if (response.statusCode !== 204 && response.statusCode !== 404) throw this.failure('DELETE', name, response, text);
  }

  /** Names in a container with a prefix (every page). */
  private async list(container: string, prefix: string): Promise<string[]> {
    const names: string[] = [];
    let marker = '';
    for (;;) {
      const query = new URLSearchParams({ format: 'json', prefix, ...(marker ? { marker } : {}) });
      const { response } = await this.request('GET', `/${encodeURIComponent(container)}?${query.toString()}`, { headers: { Accept: 'application/json' } });
      const text = await readText(response);
      if (response.statusCode === 404 || response.statusCode === 204) return names;
      if (response.statusCode !== 200) throw this.failure('GET container', container, response, text);
      const page = JSON.parse(text) as { name?: string }[];
      const batch = page.map((e) => e.name).filter((n): n is string => typeof n === 'string');
      if (batch.length === 0) return names;
      names.push(...batch);
      marker = batch[batch.length - 1] ?? '';
    }
  }

  /**
   * One request to the account URL + `path`. A streamed body is sent
   * chunked; if it fails mid-way the request is destroyed, so the object
   * server never sees a complete body and stores nothing.
   */
  private async request(
    method: string,
    path: string,
    options: { headers?: OutgoingHttpHeaders; body?: Buffer | Readable },
  ): Promise<{ response: IncomingMessage; request: http.ClientRequest }> {
    const [base, token] = await Promise.all([this.connection.endpoint(), this.connection.token()]);
    const url = new URL(`${base.replace(/\/+$/, '')}${path}`);
    const secure = url.protocol === 'https:';
    return await new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(url, {
        method,
        agent: secure ? this.agents.https : this.agents.http,
        headers: { ...options.headers, 'X-Auth-Token': token, 'User-Agent': 'stratus-image-object-store' },
      });
      request.setTimeout(this.timeoutMs, () => request.destroy(new ObjectStoreError(`${method} ${url.pathname}: no progress for ${this.timeoutMs} ms`)));
      let answered = false;
      request.on('error', reject);
      request.on('response', (response) => {
        answered = true;
        if (options.body instanceof Readable && !options.body.readableEnded) {
          // The server answered before the whole body was sent (a refusal): stop sending, and drop
          // the connection once the answer is read, since it is mid-request.
          options.body.destroy();
          response.on('end', () => request.destroy());
        }
        resolve({ response, request });
      });
      const { body } = options;
      if (body === undefined) request.end();
      else if (Buffer.isBuffer(body)) request.end(body);
      else {
        pipeline(body, request).catch((err: unknown) => {
          if (answered) return;
          request.destroy(err instanceof Error ? err : new Error(String(err)));
          reject(err);
        });
      }
    });
  }

  private failure(what: string, name: string, response: IncomingMessage, text: string): ObjectStoreError {
    const detail = text.trim().slice(0, 200);
    return new ObjectStoreError(`object storage answered ${response.statusCode ?? '?'} to ${what} ${this.container}/${name}${detail ? `: ${detail}` : ''}`);
  }
}

/** Reads a (small) response body as text. */
async function readText(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response) chunks.push(chunk as Buffer);
  } catch {
    // A connection cut after the status arrived: the status is what matters.
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The bulk-delete style answer of `?multipart-manifest=delete`. */
function parseBulkResult(text: string): { errors: unknown[] } | null {
  try {
    const body = JSON.parse(text) as { Errors?: unknown[]; 'Response Status'?: string };
    const status = body['Response Status'] ?? '200';
    const errors = Array.isArray(body.Errors) ? body.Errors : [];
    if (!/^(2\d\d|404)/.test(status) && errors.length === 0) return { errors: [status] };
    return { errors };
  } catch {
    return null;
  }
}

/**
 * Pulls a stream's chunks on demand, so that it can be cut into pieces of
 * exact sizes without holding more than one chunk beyond what is asked.
 */
class ChunkReader {
  private readonly iterator: AsyncIterator<unknown>;
  private pending: Buffer | null = null;
  private ended = false;

  constructor(source: Readable) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** True when more data follows (waits for the next chunk or the end). */
  async more(): Promise<boolean> {
    while (!this.pending && !this.ended) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else {
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
        if (chunk.length > 0) this.pending = chunk;
      }
    }
    return this.pending !== null;
  }

  /** Up to `limit` bytes, as chunks, read now. */
  async take(limit: number): Promise<Buffer[]> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream(limit)) chunks.push(chunk);
    return chunks;
  }

  /** Up to `limit` bytes, as chunks, read as they are consumed. */
  async *stream(limit: number): AsyncGenerator<Buffer> {
    let left = limit;
    while (left > 0 && (await this.more())) {
      const chunk = this.pending as Buffer;
      if (chunk.length <= left) {
        this.pending = null;
        left -= chunk.length;
        yield chunk;
      } else {
        this.pending = chunk.subarray(left);
        yield chunk.subarray(0, left);
        left = 0;
      }
    }
  }

  /** Stops reading the source (it is destroyed if it has not ended). */
  close(): void {
    if (!this.ended) void this.iterator.return?.().catch(() => undefined);
  }
}

async function* concatChunks(first: Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* first;
  yield* rest;
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
