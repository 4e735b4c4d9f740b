import type { Readable } from 'node:stream';
import type { RingDevice } from '../ring/ring.js';
import type { StorageRequest, StorageResponse } from '../storage/client.js';
import { requestTimeouts, type WorkerContext } from './context.js';

/**
 * Requests of the workers straight to storage servers (Swift's
 * `direct_client`): one device per request, small bodies read whole (listings
 * are at most 10,000 rows), and a node that cannot be reached answers status
 * 0 instead of throwing, so a pass counts it as a failure and goes on.
 */

/** A storage server's answer with its (small) body read; status 0 when the server could not be reached. */
export interface DirectResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Why status is 0. */
  error?: string;
}

/** Largest body a direct request reads (a listing page of 10,000 rows fits). */
const MAX_BODY = 64 * 1024 * 1024;

/** Reads a response body whole (bounded by `MAX_BODY`). */
export async function readBody(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buffer.length;
    if (size > MAX_BODY) {
      body.destroy();
      throw new Error('response body too large');
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Sends a request and reads its answer; never throws for an unreachable node (status 0). */
export async function directRequest(ctx: WorkerContext, node: RingDevice, req: StorageRequest): Promise<DirectResponse> {
  let res: StorageResponse;
  try {
    res = await ctx.storage.request(node, req, requestTimeouts(ctx));
  } catch (err) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), error: err instanceof Error ? err.message : String(err) };
  }
  try {
    return { status: res.status, headers: res.headers, body: req.method === 'HEAD' ? await drain(res.body) : await readBody(res.body) };
  } catch (err) {
    return { status: 0, headers: res.headers, body: Buffer.alloc(0), error: err instanceof Error ? err.message : String(err) };
  }
}

async function drain(body: Readable): Promise<Buffer> {
  body.resume();
  for await (const _chunk of body) {
    // discard
  }
  return Buffer.alloc(0);
}

/** True for 2xx. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** A row of a container listing as the container server gives it (`format=json`). */
export interface ObjectListingRow {
  name: string;
  hash: string;
  bytes: number;
  content_type: string;
  last_modified: string;
}

/** A row of an account listing (`format=json`). */
export interface ContainerListingRow {
  name: string;
  count: number;
  bytes: number;
  last_modified?: string;
}

/**
 * Pages through a listing (`GET` of an account or container, `format=json`)
 * from the first of `nodes` that answers each page, as Swift's reaper and
 * internal client do. Stops when a page comes back short. Throws when no node
 * answers a page; yields nothing for a listing that is 404 everywhere.
 */
export async function* iterListing<T extends { name: string }>(
  ctx: WorkerContext,
  nodes: RingDevice[],
  partition: number,
  account: string,
  container: string | undefined,
  options: { prefix?: string; limit?: number } = {},
): AsyncGenerator<T> {
  const limit = options.limit ?? 10000;
  let marker = '';
  for (;;) {
    const query = new URLSearchParams({ format: 'json', limit: String(limit) });
    if (marker) query.set('marker', marker);
    if (options.prefix) query.set('prefix', options.prefix);
    let page: T[] | null = null;
    let notFound = 0;
    const errors: string[] = [];
    for (const node of nodes) {
      const res = await directRequest(ctx, node, {
        method: 'GET',
        device: node.device,
        partition,
        account,
        ...(container !== undefined ? { container } : {}),
        headers: {},
        query: query.toString(),
      });
      if (res.status === 204) {
        page = [];
        break;
      }
      if (isSuccess(res.status)) {
        page = res.body.length ? (JSON.parse(res.body.toString('utf8')) as T[]) : [];
        break;
      }
      if (res.status === 404) notFound++;
      errors.push(`${node.ip}:${node.port}/${node.device}: ${res.status || res.error}`);
    }
    if (page === null) {
      if (notFound === nodes.length) return;
      throw new Error(`listing of ${account}${container !== undefined ? `/${container}` : ''} failed on every node (${errors.join(', ')})`);
    }
    for (const row of page) yield row;
    const last = page.at(-1);
    if (page.length < limit || !last) return;
    marker = last.name;
  }
}

/** The headers that make an object server update the container replica paired with object replica `index` (as the proxy pairs them). */
export function containerUpdateHeaders(ctx: WorkerContext, account: string, container: string, index: number): Record<string, string> {
  const { partition, nodes } = ctx.rings.container.getNodes(account, container);
  const node = nodes[index % nodes.length];
  if (!node) return {};
  return { 'x-container-host': `${node.ip}:${node.port}`, 'x-container-partition': String(partition), 'x-container-device': node.device };
}

/** The headers that make a container server update the account replica paired with container replica `index`. */
export function accountUpdateHeaders(ctx: WorkerContext, account: string, index: number): Record<string, string> {
  const { partition, nodes } = ctx.rings.account.getNodes(account);
  const node = nodes[index % nodes.length];
  if (!node) return {};
  return { 'x-account-host': `${node.ip}:${node.port}`, 'x-account-partition': String(partition), 'x-account-device': node.device };
}
