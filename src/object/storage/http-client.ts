import http from 'node:http';
import { Readable, pipeline } from 'node:stream';
import type { RingDevice } from '../ring/ring.js';
import type { StorageClient, StorageRequest, StorageResponse } from './client.js';

/** Options of an `HttpStorageClient`. */
export interface HttpStorageClientOptions {
  /** Default time to get a connection (Swift's `conn_timeout`), ms. */
  connectTimeoutMs?: number;
  /** Default time from the end of the request body to the response headers (Swift's `node_timeout`), ms. */
  timeoutMs?: number;
  /** Sockets kept per storage server. */
  maxSockets?: number;
}

/**
 * The path of a storage request: each name percent-encoded, an object
 * name's `/` kept (Swift's quoting of backend paths).
 */
export function storagePath(req: Pick<StorageRequest, 'device' | 'partition' | 'account' | 'container' | 'object'>): string {
  let path = `/${encodeURIComponent(req.device)}/${req.partition}/${encodeURIComponent(req.account)}`;
  if (req.container !== undefined) path += `/${encodeURIComponent(req.container)}`;
  if (req.object !== undefined) path += `/${encodeURIComponent(req.object).replace(/%2F/g, '/')}`;
  return path;
}

/** Methods whose request may be sent again when a kept-alive socket turns out to be closed. */
const RETRYABLE = new Set(['GET', 'HEAD', 'DELETE', 'PUT', 'POST', 'REPLICATE']);

/**
 * `StorageClient` over HTTP/1.1 with kept-alive connections (one pool per
 * storage server). A request whose socket was reused and reset before any
 * response is sent once more on a new connection when its body is not a
 * stream (the server closed an idle connection at the same moment).
 * `Expect: 100-continue` in the headers makes it wait for the server's
 * go-ahead before sending a streamed body; a final answer instead resolves at
 * once and the body is not sent (the connection is then closed).
 * `REPLICATE` is sent as `POST` with `X-Backend-Method: REPLICATE` (Node's
 * HTTP parser accepts only the methods it knows); the storage servers read
 * it back as REPLICATE.
 */
export class HttpStorageClient implements StorageClient {
  private readonly agent: http.Agent;
  private readonly connectTimeoutMs: number;
  private readonly timeoutMs: number;

  constructor(options: HttpStorageClientOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, maxFreeSockets: 64, scheduling: 'lifo' });
  }

  async request(node: RingDevice, req: StorageRequest, options: { connectTimeoutMs?: number; timeoutMs?: number } = {}): Promise<StorageResponse> {
    const canRetry = RETRYABLE.has(req.method) && !(req.body instanceof Readable);
    try {
      return await this.once(node, req, options);
    } catch (err) {
      if (canRetry && (err as { reusedSocket?: boolean }).reusedSocket) return this.once(node, req, options);
      throw err;
    }
  }

  private once(node: RingDevice, req: StorageRequest, options: { connectTimeoutMs?: number; timeoutMs?: number }): Promise<StorageResponse> {
    const connectTimeoutMs = options.connectTimeoutMs ?? this.connectTimeoutMs;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body ?? null;
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
    else if (body === null && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined && (req.method === 'PUT' || req.method === 'POST' || req.method === 'REPLICATE')) {
      headers['content-length'] = '0';
    }
    const expectContinue = /100-continue/i.test(headers.expect ?? '') && body instanceof Readable;
    if (!expectContinue) delete headers.expect;
    const path = storagePath(req) + (req.query ? `?${req.query}` : '');
    // Node's HTTP parser knows a fixed set of methods, so REPLICATE travels as a POST that says what it is.
    let method = req.method;
    if (method === 'REPLICATE') {
      method = 'POST';
      headers['x-backend-method'] = 'REPLICATE';
    }
    return new Promise<StorageResponse>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | null = null;
      const clear = (): void => {
        if (timer) clearTimeout(timer);
        timer = null;
      };
      const arm = (ms: number, what: string): void => {
        clear();
        timer = setTimeout(() => {
          timer = null;
          outgoing.destroy(new StorageTimeoutError(`${what} timeout (${ms} ms) talking to ${node.ip}:${node.port}/${node.device}`));
        }, ms);
      };
      const fail = (err: Error): void => {
        clear();
        if (settled) return;
        settled = true;
        if (outgoing.reusedSocket && !responded) Object.assign(err, { reusedSocket: true });
        if (body instanceof Readable && !body.destroyed) body.resume();
        reject(err);
      };
      let responded = false;
      let bodySent = false;
      const outgoing = http.request({ host: node.ip, port: node.port, method, path, headers, agent: this.agent });
      outgoing.on('error', fail);
      outgoing.on('socket', (socket) => {
        socket.setNoDelay(true);
        if ((socket as unknown as { connecting?: boolean }).connecting) {
          arm(connectTimeoutMs, 'connect');
          socket.once('connect', clear);
        }
      });
      outgoing.on('finish', () => {
        if (!responded) arm(timeoutMs, 'response');
      });
      outgoing.on('response', (res) => {
        responded = true;
        clear();
        if (settled) {
          res.resume();
          return;
        }
        settled = true;
        const out: Record<string, string> = {};
        for (const [key, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          out[key] = Array.isArray(value) ? value.join(', ') : value;
        }
        if (expectContinue && !bodySent) {
          // The server answered without asking for the body: never send it on this connection.
          res.once('end', () => outgoing.destroy());
          res.once('close', () => outgoing.destroy());
          if (body instanceof Readable) body.resume();
        }
        resolve({ status: res.statusCode ?? 500, headers: out, body: res });
      });
      const sendBody = (): void => {
        bodySent = true;
        if (body === null) outgoing.end();
        else if (Buffer.isBuffer(body)) outgoing.end(body);
        else {
          pipeline(body, outgoing, (err) => {
            // A body that fails (the client went away) aborts the request: the server must see an incomplete upload.
            if (err) outgoing.destroy(err);
          });
        }
      };
      if (body instanceof Readable) {
        // A body that fails before it is piped (while waiting for 100 Continue) aborts the request too.
        body.once('error', (err: Error) => outgoing.destroy(err));
      }
      if (expectContinue) {
        outgoing.flushHeaders();
        arm(timeoutMs, 'continue');
        outgoing.once('continue', () => {
          clear();
          sendBody();
        });
      } else sendBody();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A storage server that did not connect or answer in time. */
export class StorageTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
}
