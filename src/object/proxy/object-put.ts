import { PassThrough, type Readable } from 'node:stream';
import type { Ring, RingDevice } from '../ring/ring.js';
import type { StorageResponse } from '../storage/client.js';
import { bestResponse, quorumSize, type Backend, type BackendResult, type Target } from './backend.js';
import type { SwiftResponse } from './pipeline.js';
import { httpError, plainError, readAll, SwiftHttpError } from './responses.js';

/**
 * The data path of an object PUT (Swift's `_store_object` for replicated
 * policies): the client's body streams to every primary at once, at the pace
 * of the slowest live one, and the PUT succeeds when a quorum of object
 * servers stored it with the same ETag.
 *
 * Each backend request carries `Expect: 100-continue`, so an object server
 * can refuse before any byte is sent (If-None-Match, a newer version, a
 * missing disk). A replica that cannot be reached, or refuses with 507/5xx,
 * is replaced by a handoff as long as the bytes sent so far are still held
 * (the first {@link REPLAY_LIMIT} bytes are kept for this; the storage
 * client contract does not say when a connection is ready, so Swift's
 * choose-before-sending is not possible).
 *
 * A client that goes away mid-body aborts the PUT: every backend body
 * stream is destroyed with an error, so the storage client aborts its
 * request and the object server, which never saw the end of a body of the
 * announced length (or the last chunk of a chunked one), keeps nothing.
 */

/** Bytes of the body kept to replay to a handoff. */
const REPLAY_LIMIT = 512 * 1024;
/** How long the slowest replicas get once a quorum has answered (Swift's `post_quorum_timeout`). */
const POST_QUORUM_MS = 500;
/** How long the client may pause in the middle of a body (Swift's `client_timeout`). */
const CLIENT_TIMEOUT_MS = 60_000;

/** What {@link storeObject} needs. */
export interface StoreOptions {
  backend: Backend;
  ring: Ring;
  partition: number;
  target: Target;
  /** One set of backend headers per primary (with its container update headers). */
  headersList: Record<string, string>[];
  /** The client's body (null for an empty one). */
  body: Readable | null;
  /** The announced length, or null for chunked. */
  length: number | null;
  maxFileSize: number;
  /** `Last-Modified` of the new object (from its `X-Timestamp`). */
  lastModified: string;
  ifNoneMatch: boolean;
}

/** One backend PUT in flight. */
interface Putter {
  node: RingDevice;
  /** Index of the header set this putter was started with. */
  slot: number;
  stream: PassThrough;
  failed: boolean;
  /** Settles once the object server answered or the request failed. */
  settled: Promise<void>;
  response: StorageResponse | null;
  body: Buffer;
  replaced: boolean;
}

const isSuccess = (p: Putter): boolean => p.response !== null && p.response.status >= 200 && p.response.status < 300;
/** A refusal about the object itself (412, 409, 422...): another node would say the same. */
const isFinalRefusal = (p: Putter): boolean => p.response !== null && p.response.status >= 300 && p.response.status < 500;

/** The replicas of one PUT and the state of their bodies. */
class Fanout {
  readonly putters: Putter[] = [];
  readonly minConns: number;
  private readonly handoffs: RingDevice[];
  private handoffIndex = 0;
  private readonly replay: Buffer[] = [];
  private replayable = true;
  sent = 0;
  ended = false;

  constructor(
    private readonly options: StoreOptions,
    primaries: RingDevice[],
  ) {
    this.handoffs = options.ring.getMoreNodes(options.partition);
    this.minConns = quorumSize(primaries.length);
    primaries.forEach((node, slot) => this.putters.push(this.start(node, slot)));
  }

  live(): Putter[] {
    return this.putters.filter((p) => !p.failed);
  }

  private start(node: RingDevice, slot: number): Putter {
    const { options } = this;
    const stream = new PassThrough({ highWaterMark: 256 * 1024 });
    const headers: Record<string, string> = { ...(options.headersList[slot] ?? {}), expect: '100-continue' };
    if (options.length !== null) headers['content-length'] = String(options.length);
    else {
      delete headers['content-length'];
      headers['transfer-encoding'] = 'chunked';
    }
    const putter: Putter = { node, slot, stream, failed: false, settled: Promise.resolve(), response: null, body: Buffer.alloc(0), replaced: false };
    putter.settled = options.backend.send(node, { method: 'PUT', device: node.device, partition: options.partition, ...options.target, headers, body: stream }).then(async (response) => {
      putter.response = response;
      if (response) {
        putter.body = await readAll(response.body, 1024 * 1024).catch(() => Buffer.alloc(0));
        if (response.status === 507 || response.status >= 500) options.backend.failed(node);
      }
      // No answer, a refusal, or an answer before the whole body was sent: this replica failed.
      putter.failed = !response || response.status >= 300 || !this.ended;
      if (putter.failed && !stream.destroyed) stream.destroy();
    });
    // A write to a destroyed stream must not throw out of the tee.
    stream.on('error', () => undefined);
    return putter;
  }

  /** Replaces failed (unreachable, 507, 5xx) replicas by handoffs, replaying the bytes sent so far. */
  replaceFailed(): void {
    if (!this.replayable) return;
    for (const putter of [...this.putters]) {
      if (!putter.failed || putter.replaced || isFinalRefusal(putter)) continue;
      const node = this.handoffs[this.handoffIndex++];
      if (!node) return;
      putter.replaced = true;
      const next = this.start(node, putter.slot);
      for (const chunk of this.replay) next.stream.write(chunk);
      if (this.ended) next.stream.end();
      this.putters.push(next);
    }
  }

  /** Whether a quorum can no longer be reached (or an object server gave an answer that ends the PUT). */
  hopeless(): boolean {
    if (this.putters.some((p) => p.response?.status === 412 || p.response?.status === 409)) return true;
    if (this.live().length >= this.minConns) return false;
    const replaceable = this.putters.filter((p) => p.failed && !p.replaced && !isFinalRefusal(p)).length;
    return !this.replayable || this.handoffIndex >= this.handoffs.length || replaceable === 0;
  }

  /** Sends one chunk of the client's body to every live replica, waiting for the slowest. */
  async write(chunk: Buffer): Promise<void> {
    this.sent += chunk.length;
    if (this.sent > this.options.maxFileSize) throw new SwiftHttpError(plainError(413, 'Your request is too large.'));
    // Handoffs take the bytes before this chunk; this one goes to all live replicas below.
    this.replaceFailed();
    if (this.replayable) {
      if (this.sent <= REPLAY_LIMIT) this.replay.push(chunk);
      else {
        this.replayable = false;
        this.replay.length = 0;
      }
    }
    const waits: Promise<unknown>[] = [];
    for (const putter of this.live()) {
      if (!putter.stream.write(chunk)) waits.push(Promise.race([new Promise((resolve) => putter.stream.once('drain', resolve)), putter.settled]));
    }
    if (waits.length) await Promise.all(waits);
  }

  end(): void {
    this.ended = true;
    this.replaceFailed();
    for (const putter of this.live()) putter.stream.end();
  }

  abort(error: Error): void {
    for (const putter of this.putters) if (!putter.stream.destroyed) putter.stream.destroy(error);
  }

  /** Waits until every replica answered, or a quorum succeeded and the rest had {@link POST_QUORUM_MS}. */
  async settle(): Promise<void> {
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        if (timer) clearTimeout(timer);
        resolve();
      };
      const check = (): void => {
        const pending = this.putters.filter((p) => p.response === null && !p.failed).length;
        if (pending === 0) finish();
        else if (this.putters.filter(isSuccess).length >= this.minConns && !timer) timer = setTimeout(finish, POST_QUORUM_MS);
      };
      for (const putter of this.putters) void putter.settled.then(check);
      check();
    });
  }
}

/**
 * Stores an object on a quorum of its replicas and answers as Swift does:
 * 201 with `ETag` and `Last-Modified`; 412 when `If-None-Match: *` found it;
 * 202 when a newer version already exists (409 from the servers); 413 past
 * `maxFileSize`; 422 on an ETag mismatch; 499 when the client went away;
 * 503 without a quorum.
 */
export async function storeObject(options: StoreOptions): Promise<SwiftResponse> {
  const primaries = options.ring.getPartNodes(options.partition);
  if (primaries.length === 0) return httpError(404);
  const fanout = new Fanout(options, primaries);
  let timedOut = false;
  let watchdog: NodeJS.Timeout | undefined;
  const body = options.body;
  const arm = (): void => {
    if (watchdog) clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      timedOut = true;
      body?.destroy(new Error('client read timeout'));
    }, CLIENT_TIMEOUT_MS);
  };
  try {
    if (body) {
      arm();
      for await (const raw of body as AsyncIterable<Buffer | string>) {
        arm();
        await fanout.write(typeof raw === 'string' ? Buffer.from(raw) : raw);
        if (fanout.hopeless()) break;
      }
    }
    if (fanout.hopeless()) {
      fanout.abort(new Error('PUT abandoned'));
      await fanout.settle();
      return finalResponse(fanout, options, primaries.length);
    }
    if (options.length !== null && fanout.sent < options.length) throw new SwiftHttpError(httpError(499));
  } catch (err) {
    fanout.abort(err instanceof Error ? err : new Error(String(err)));
    if (err instanceof SwiftHttpError) throw err;
    // The client's body broke: it stalled, or it disconnected.
    throw new SwiftHttpError(httpError(timedOut ? 408 : 499));
  } finally {
    if (watchdog) clearTimeout(watchdog);
  }
  fanout.end();
  await fanout.settle();
  // Late failures of a fully held body may still go to handoffs.
  for (let round = 0; round < 3; round++) {
    const before = fanout.putters.length;
    fanout.replaceFailed();
    if (fanout.putters.length === before) break;
    await fanout.settle();
  }
  return finalResponse(fanout, options, primaries.length);
}

function finalResponse(fanout: Fanout, options: StoreOptions, replicas: number): SwiftResponse {
  const answered = fanout.putters.filter((p) => p.response !== null && !(p.replaced && p.failed));
  const statuses = answered.map((p) => p.response?.status ?? 503);
  if (options.ifNoneMatch && statuses.includes(412)) return httpError(412);
  const successes = answered.filter(isSuccess);
  if (statuses.includes(409) && successes.length < fanout.minConns) return httpError(202);
  const etags = new Set(successes.map((p) => (p.response?.headers.etag ?? '').replaceAll('"', '').toLowerCase()));
  if (etags.size > 1) return httpError(500);
  const results: BackendResult[] = answered.map((p) => ({ status: p.response?.status ?? 503, headers: p.response?.headers ?? {}, body: p.body, node: p.node }));
  while (results.length < replicas) results.push({ status: 503, headers: {}, body: Buffer.alloc(0), node: null });
  const etag = [...etags][0];
  const response = bestResponse(results, quorumSize(replicas), etag ? { etag } : {});
  if (response.status === 201) {
    response.body = '';
    response.headers['last-modified'] = options.lastModified;
  }
  return response;
}
