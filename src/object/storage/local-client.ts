import type http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import type { RingDevice } from '../ring/ring.js';
import type { StorageClient, StorageRequest, StorageResponse } from './client.js';
import { StorageTimeoutError, storagePath } from './http-client.js';
import type { StorageHandler } from './object-server.js';
import { parseStoragePath } from './server-util.js';

/**
 * A `StorageClient` that calls the storage servers of this process directly
 * and every other node over `remote` (HTTP). In the all-in-one cloud the
 * proxy, the storage servers and the workers share one process: each object
 * PUT is three object requests and three container updates, and over
 * loopback HTTP their framing, parsing and socket copies cost more CPU than
 * the storage work itself. A direct call runs the same handler on the same
 * request (path, headers, a streamed body) and gives back the same response,
 * so what a server does never depends on how it was reached; only the
 * transport is skipped. Registered servers are found by the `ip:port` the
 * rings give their devices.
 */
export class LocalStorageClient implements StorageClient {
  private readonly handlers = new Map<string, StorageHandler>();

  constructor(
    private readonly remote: StorageClient,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Serves requests for `ip:port` with `handler` from now on. */
  register(ip: string, port: number, handler: StorageHandler): void {
    this.handlers.set(`${ip}:${port}`, handler);
  }

  unregister(ip: string, port: number): void {
    this.handlers.delete(`${ip}:${port}`);
  }

  request(node: RingDevice, req: StorageRequest, options: { connectTimeoutMs?: number; timeoutMs?: number } = {}): Promise<StorageResponse> {
    const handler = this.handlers.get(`${node.ip}:${node.port}`);
    if (!handler) return this.remote.request(node, req, options);
    return this.direct(handler, node, req, options.timeoutMs ?? this.timeoutMs);
  }

  private async direct(handler: StorageHandler, node: RingDevice, req: StorageRequest, timeoutMs: number): Promise<StorageResponse> {
    const url = storagePath(req) + (req.query ? `?${req.query}` : '');
    const target = parseStoragePath(url);
    const incoming = new PassThrough() as PassThrough & { headers: http.IncomingHttpHeaders; method: string; url: string; complete: boolean };
    const headers: Record<string, string> = { ...req.headers };
    delete headers.expect;
    const body = req.body ?? null;
    if (Buffer.isBuffer(body)) headers['content-length'] = String(body.length);
    else if (body === null && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = '0';
    incoming.headers = headers;
    incoming.method = req.method;
    incoming.url = url;
    incoming.complete = false;
    // The server sees an aborted body through its own listeners; one that stopped listening must not crash the process.
    incoming.on('error', () => undefined);
    incoming.once('end', () => {
      incoming.complete = true;
    });
    if (body instanceof Readable) {
      // A body that fails (the client went away) reaches the server as an aborted upload, as a reset connection would.
      body.once('error', (err: Error) => incoming.destroy(err));
      body.pipe(incoming);
    } else incoming.end(body ?? undefined);
    if (!target) return toStorageResponse(req.method, { status: 400, headers: { 'content-type': 'text/plain' }, body: 'Invalid path' });

    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new StorageTimeoutError(`response timeout (${timeoutMs} ms) from ${node.ip}:${node.port}/${node.device}`)), timeoutMs);
    });
    try {
      const out = await Promise.race([handler(incoming as unknown as http.IncomingMessage, target, () => undefined), timeout]);
      return toStorageResponse(req.method, out);
    } catch (err) {
      incoming.destroy();
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      if (!incoming.complete && !incoming.destroyed) {
        // The server answered without reading the body (an early refusal): let the sender go on, as a closed connection would.
        if (body instanceof Readable) {
          body.unpipe(incoming);
          body.resume();
        }
        incoming.destroy();
      }
    }
  }

  close(): void {
    this.remote.close();
  }
}

/** A storage server's answer as a client sees it: lower-case string headers, a stream body (empty for HEAD, 204, 304). */
function toStorageResponse(method: string, out: { status: number; headers: Record<string, string | number>; body?: Buffer | string | Readable | null }): StorageResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(out.headers)) headers[name.toLowerCase()] = String(value);
  const body = out.body ?? null;
  if (typeof body === 'string' || Buffer.isBuffer(body)) headers['content-length'] ??= String(Buffer.byteLength(body));
  else if (body === null) headers['content-length'] ??= '0';
  if (headers['content-type'] === undefined && out.status !== 204 && out.status !== 304) headers['content-type'] = 'text/html; charset=UTF-8';
  const empty = method === 'HEAD' || body === null || out.status === 204 || out.status === 304;
  if (empty) {
    if (body instanceof Readable) body.destroy();
    return { status: out.status, headers, body: Readable.from([]) };
  }
  return { status: out.status, headers, body: body instanceof Readable ? body : Readable.from([typeof body === 'string' ? Buffer.from(body) : body]) };
}
