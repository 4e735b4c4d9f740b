import type { Readable } from 'node:stream';
import { Timestamp } from '../common.js';
import type { Ring, RingDevice } from '../ring/ring.js';
import type { StorageRequest, StorageResponse } from '../storage/client.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { discard, httpError, readAll } from './responses.js';

/**
 * How the proxy app talks to the storage servers, as Swift's proxy
 * controllers do: requests to every replica with a quorum (`make_requests`,
 * `best_response`), reads that try one replica after another until one has
 * the data (`GETorHEAD_base`), and nodes that failed lately tried last.
 */

/** Where a name lives on the storage servers. */
export interface Target {
  account: string;
  container?: string;
  object?: string;
}

/** One storage server's answer, body read (small bodies only), or a stand-in 503 when none answered. */
export interface BackendResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  node: RingDevice | null;
}

/** Successes needed among `n` replicas: a majority (Swift's `quorum_size`). */
export function quorumSize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** How long the last stragglers of a quorum write get before the proxy answers without them (Swift's `post_quorum_timeout`). */
const POST_QUORUM_MS = 500;
/** How long a node that failed is tried after the healthy ones (Swift's `error_suppression_interval`). */
const ERROR_SUPPRESSION_MS = 60_000;

const nodeKey = (node: RingDevice): string => `${node.ip}:${node.port}/${node.device}`;

/** Response headers a proxied response does not take from the backend (Swift's `update_headers`). */
const DROPPED = new Set(['date', 'content-length', 'content-type', 'connection', 'x-put-timestamp', 'x-delete-after', 'transfer-encoding', 'keep-alive']);

/** Copies backend headers into a client response as Swift's `update_headers` does (ETag quotes removed). */
export function copyBackendHeaders(target: Record<string, string>, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) {
    if (name === 'etag') target.etag = value.replaceAll('"', '');
    else if (!DROPPED.has(name)) target[name] = value;
  }
}

/** The storage side of one proxy: a client with timeouts, node health, and the request patterns of the controllers. */
export class Backend {
  private readonly failures = new Map<string, number>();

  constructor(private readonly ctx: Pick<ProxyContext, 'storage' | 'log' | 'config'>) {}

  /** One request to one node: its response, or null when it could not be reached (the node is then tried last for a while). */
  async send(node: RingDevice, request: StorageRequest): Promise<StorageResponse | null> {
    try {
      const response = await this.ctx.storage.request(node, request, {
        connectTimeoutMs: this.ctx.config.conn_timeout * 1000,
        timeoutMs: this.ctx.config.node_timeout * 1000,
      });
      if (response.status === 507) this.failures.set(nodeKey(node), Date.now());
      else if (response.status < 500 && this.failures.size > 0) this.failures.delete(nodeKey(node));
      return response;
    } catch (err) {
      this.failures.set(nodeKey(node), Date.now());
      this.ctx.log.warn({ node: nodeKey(node), method: request.method, account: request.account, container: request.container, err: String(err) }, 'storage node unreachable');
      return null;
    }
  }

  /** Notes a node that failed in the middle of a request. */
  failed(node: RingDevice): void {
    this.failures.set(nodeKey(node), Date.now());
  }

  /** Whether a node failed within the suppression interval. */
  limited(node: RingDevice): boolean {
    const at = this.failures.get(nodeKey(node));
    if (at === undefined) return false;
    if (Date.now() - at > ERROR_SUPPRESSION_MS) {
      this.failures.delete(nodeKey(node));
      return false;
    }
    return true;
  }

  /**
   * The nodes a read tries, in order: the primaries shuffled (spreading the
   * load) with lately failed ones last, then handoffs, at most twice the
   * replica count in all (Swift's `request_node_count`).
   */
  readNodes(ring: Ring, partition: number): { node: RingDevice; handoff: boolean }[] {
    const primaries = shuffle(ring.getPartNodes(partition));
    const healthy = primaries.filter((n) => !this.limited(n));
    const sick = primaries.filter((n) => this.limited(n));
    const out = [...healthy, ...sick].map((node) => ({ node, handoff: false }));
    const limit = 2 * ring.replicaCount;
    for (const node of ring.getMoreNodes(partition)) {
      if (out.length >= limit) break;
      out.push({ node, handoff: true });
    }
    return out;
  }

  /**
   * Swift's `make_requests`: one request per header set, each to the next
   * node of primaries-then-handoffs that answers with neither a 5xx nor a
   * 507; answers as soon as one status class has a quorum, after giving the
   * others a short while. Missing answers count as 503.
   */
  makeRequests(ring: Ring, partition: number, method: string, target: Target, headersList: Record<string, string>[], options: { query?: string; body?: Buffer } = {}): Promise<BackendResult[]> {
    const nodes = [...ring.getPartNodes(partition), ...ring.getMoreNodes(partition).slice(0, ring.replicaCount)];
    let next = 0;
    const total = headersList.length;
    const results: BackendResult[] = [];
    const one = async (headers: Record<string, string>): Promise<void> => {
      for (let node = nodes[next++]; node; node = nodes[next++]) {
        const response = await this.send(node, {
          method,
          device: node.device,
          partition,
          ...target,
          headers: options.body ? { ...headers, 'content-length': String(options.body.length) } : headers,
          ...(options.query ? { query: options.query } : {}),
          body: options.body ?? null,
        });
        if (!response) continue;
        if (response.status >= 500 || response.status === 507) {
          discard(response.body);
          continue;
        }
        let body: Buffer;
        try {
          body = await readAll(response.body, 1024 * 1024);
        } catch {
          continue;
        }
        results.push({ status: response.status, headers: response.headers, body, node });
        return;
      }
    };
    return new Promise<BackendResult[]>((resolve) => {
      let pending = total;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        const out = [...results];
        while (out.length < total) out.push({ status: 503, headers: {}, body: Buffer.alloc(0), node: null });
        resolve(out);
      };
      const onDone = (): void => {
        pending--;
        if (pending <= 0) finish();
        else if (!timer && hasQuorum(results.map((r) => r.status), total)) timer = setTimeout(finish, POST_QUORUM_MS);
      };
      if (total === 0) finish();
      for (const headers of headersList) one(headers).then(onDone, onDone);
    });
  }

  /**
   * Swift's `GETorHEAD_base` for accounts, containers and objects: tries the
   * read nodes one at a time until one gives a good answer (2xx, 3xx, and
   * 416 for objects), which is returned with its body still streaming. A
   * 404 of a deleted object (with `X-Backend-Timestamp`) outranks older data
   * found later; 404s from handoffs that hold nothing are ignored. With
   * `newest` every node is asked and the newest answer wins. With no good
   * answer the best of the others is returned.
   */
  async getOrHead(ring: Ring, partition: number, target: Target, request: { method: string; headers: Record<string, string>; query?: string; serverType: 'account' | 'container' | 'object'; newest?: boolean }): Promise<SwiftResponse> {
    const statuses: BackendResult[] = [];
    let latest404 = 0;
    let best: { response: StorageResponse; ts: number } | null = null;
    for (const { node, handoff } of this.readNodes(ring, partition)) {
      const response = await this.send(node, { method: request.method, device: node.device, partition, ...target, headers: request.headers, ...(request.query ? { query: request.query } : {}) });
      if (!response) continue;
      const good = (response.status >= 200 && response.status < 400) || (request.serverType === 'object' && response.status === 416);
      if (good) {
        const ts = backendTimestamp(response.headers);
        if (ts < latest404) {
          response.body.destroy();
          continue;
        }
        if (!request.newest) return this.working(response, request.method);
        if (!best || ts > best.ts) {
          best?.response.body.destroy();
          best = { response, ts };
        } else {
          response.body.destroy();
        }
        continue;
      }
      const tombstone = response.headers['x-backend-timestamp'];
      if (handoff && (response.status >= 500 || response.status === 404) && !tombstone) {
        discard(response.body);
        continue;
      }
      let body: Buffer;
      try {
        body = await readAll(response.body, 1024 * 1024);
      } catch {
        continue;
      }
      statuses.push({ status: response.status, headers: response.headers, body, node });
      if (request.serverType === 'object' && response.status === 404 && tombstone) latest404 = Math.max(latest404, parseTimestamp(tombstone));
    }
    if (best && best.ts >= latest404) return this.working(best.response, request.method);
    best?.response.body.destroy();
    return bestResponse(statuses, quorumSize(statuses.length));
  }

  private working(response: StorageResponse, method: string): SwiftResponse {
    const headers: Record<string, string> = {};
    copyBackendHeaders(headers, response.headers);
    headers['accept-ranges'] = 'bytes';
    const length = response.headers['content-length'];
    if (length !== undefined) headers['content-length'] = length;
    const type = response.headers['content-type'];
    if (type) headers['content-type'] = type;
    if (method === 'GET' && (response.status === 200 || response.status === 206)) return { status: response.status, headers, body: response.body as Readable };
    discard(response.body);
    if (method === 'HEAD') return { status: response.status, headers, body: '' };
    // A GET answered without the object (304, 416): Swift's own body for the status.
    delete headers['content-length'];
    if (response.status >= 400) return httpError(response.status, undefined, { ...headers, 'content-type': 'text/html; charset=UTF-8' });
    return { status: response.status, headers, body: '' };
  }
}

/** Whether one status class (1xx to 4xx) already has `quorumSize(total)` answers. */
export function hasQuorum(statuses: number[], total: number): boolean {
  const quorum = quorumSize(total);
  if (statuses.length < quorum) return false;
  for (const hundred of [100, 200, 300, 400]) {
    if (statuses.filter((s) => s >= hundred && s < hundred + 100).length >= quorum) return true;
  }
  return false;
}

/**
 * Swift's `best_response`: the highest status of the first class (2xx, 3xx,
 * 4xx) with a quorum, with that answer's body and headers; 503 when none
 * has one. `overrides` maps statuses (DELETE's 404 → 204) when there is no
 * quorum otherwise.
 */
export function bestResponse(results: BackendResult[], quorum = quorumSize(results.length), options: { etag?: string; overrides?: Record<number, number> } = {}): SwiftResponse {
  const pick = (list: BackendResult[], avoid: Set<number>): SwiftResponse | null => {
    for (const hundred of [200, 300, 400]) {
      const inClass = list.map((r, i) => ({ r, i })).filter(({ r }) => r.status >= hundred && r.status < hundred + 100);
      if (inClass.length < quorum) continue;
      const candidates = inClass.filter(({ i }) => !avoid.has(i));
      if (candidates.length === 0) continue;
      const chosen = candidates.reduce((a, b) => (b.r.status > a.r.status ? b : a));
      const headers: Record<string, string> = { 'content-type': 'text/html; charset=UTF-8' };
      copyBackendHeaders(headers, chosen.r.headers);
      if (options.etag) headers.etag = options.etag.replaceAll('"', '');
      if (chosen.r.body.length === 0 && chosen.r.status >= 400) return httpError(chosen.r.status, undefined, headers);
      return { status: chosen.r.status, headers, body: chosen.r.body };
    }
    return null;
  };
  let response = results.length ? pick(results, new Set()) : null;
  if (!response && options.overrides) {
    const avoid = new Set<number>();
    const mapped = results.map((r, i) => {
      const to = options.overrides?.[r.status];
      if (to === undefined) return r;
      avoid.add(i);
      return { ...r, status: to, headers: {}, body: Buffer.alloc(0) };
    });
    response = pick(mapped, avoid);
  }
  return response ?? httpError(503);
}

/** The timestamp of a backend answer's data, in 10 µs ticks (0 when it names none). */
export function backendTimestamp(headers: Record<string, string>): number {
  const text = headers['x-backend-data-timestamp'] ?? headers['x-backend-timestamp'] ?? headers['x-put-timestamp'] ?? headers['x-timestamp'];
  return text ? parseTimestamp(text) : 0;
}

function parseTimestamp(text: string): number {
  try {
    const ts = Timestamp.parse(text);
    return ts.ticks + ts.offset / 2 ** 64;
  } catch {
    return 0;
  }
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const a = out[i] as T;
    out[i] = out[j] as T;
    out[j] = a;
  }
  return out;
}

/** Headers every backend request carries (Swift's `generate_request_headers`): the caller's `X-Backend-*` and `X-Timestamp`, then `additional`, the transaction id, a user agent and a referer. */
export function backendHeaders(req: SwiftRequest, additional: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-backend-') || name === 'x-timestamp') headers[name] = value;
  }
  Object.assign(headers, additional);
  headers['x-trans-id'] = req.env.requestId;
  headers['user-agent'] = `proxy-server ${process.pid}`;
  headers.referer = `${req.method} ${encodeURI(req.path)}`;
  return headers;
}
