import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ServiceClient } from '../../core/auth/service-client.js';
import { ObjectMissing, type ChunkStore, type ChunkStoreOpener } from './chunk-store.js';
import type { BackupAccess } from './driver.js';

/**
 * Object storage through the Swift API v1, as the backup driver uses it:
 * the endpoint of type `object-store` in the `cinder` user's catalog. A
 * project's account is that endpoint with the project's id in place of the
 * service project's (`.../v1/AUTH_<project>`). Requests carry the caller's
 * token when there is one; when object storage refuses it (401/403: an
 * expired token, or an administrator of another project) the store goes on
 * with the `cinder` user's own token, which may act on the project's account
 * when that user has the reseller administrator role.
 */

/** How long one object transfer may take. */
const OBJECT_TIMEOUT_MS = 10 * 60_000;
/** How long a small request (container, listing, delete) may take. */
const REQUEST_TIMEOUT_MS = 60_000;
const LIST_LIMIT = 10_000;

/** Opens stores on the object storage of `client`'s catalog. */
export function swiftStores(client: ServiceClient): ChunkStoreOpener {
  return (project, access) => new SwiftChunkStore(client, project, access);
}

/**
 * The account URL for `project`: the catalog's endpoint with its last path
 * segment's id (after the reseller prefix, `AUTH_`) replaced; the endpoint
 * itself for null.
 */
export function accountUrl(endpoint: string, project: string | null): string {
  const base = endpoint.replace(/\/+$/, '');
  if (project === null) return base;
  const slash = base.lastIndexOf('/');
  const last = base.slice(slash + 1);
  const underscore = last.lastIndexOf('_');
  if (underscore < 0) return `${base}/AUTH_${encodeURIComponent(project)}`;
  return `${base.slice(0, slash + 1)}${last.slice(0, underscore + 1)}${encodeURIComponent(project)}`;
}

/** An object storage failure, with the status and the start of the answer. */
export class ObjectStoreError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ObjectStoreError';
  }
}

class SwiftChunkStore implements ChunkStore {
  /** Once the caller's token was refused, the service's own is used. */
  private useServiceToken: boolean;
  private base: Promise<string> | null = null;

  constructor(
    private readonly client: ServiceClient,
    private readonly project: string | null,
    private readonly access: BackupAccess,
  ) {
    this.useServiceToken = !access.userToken;
  }

  async ensureContainer(container: string): Promise<void> {
    const res = await this.send('PUT', objectPath(container), { timeoutMs: REQUEST_TIMEOUT_MS });
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 201 && res.status !== 202 && res.status !== 204) throw await failure(res, `Object storage refused to create container ${container}`);
  }

  async put(container: string, name: string, data: Readable): Promise<{ etag: string | null }> {
    const res = await this.send('PUT', objectPath(container, name), {
      timeoutMs: OBJECT_TIMEOUT_MS,
      body: data,
      headers: { 'Content-Type': 'application/octet-stream' },
    });
    const text = await res.text().catch(() => '');
    if (res.status !== 201) throw new ObjectStoreError(res.status, `Object storage refused object ${name} (${res.status}): ${text.slice(0, 200)}`);
    return { etag: res.headers.get('etag') };
  }

  async get(container: string, name: string): Promise<Readable> {
    const res = await this.send('GET', objectPath(container, name), { timeoutMs: OBJECT_TIMEOUT_MS });
    if (res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      throw new ObjectMissing(container, name);
    }
    if (res.status !== 200 || !res.body) throw await failure(res, `Object storage refused to read object ${name}`);
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }

  async delete(container: string, name: string): Promise<void> {
    const res = await this.send('DELETE', objectPath(container, name), { timeoutMs: REQUEST_TIMEOUT_MS });
    await res.body?.cancel().catch(() => undefined);
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) throw await failure(res, `Object storage refused to delete object ${name}`);
  }

  async list(container: string, prefix: string): Promise<string[]> {
    const names: string[] = [];
    let marker = '';
    for (;;) {
      const query = new URLSearchParams({ format: 'json', prefix, limit: String(LIST_LIMIT), ...(marker ? { marker } : {}) });
      const res = await this.send('GET', `${objectPath(container)}?${query.toString()}`, { timeoutMs: REQUEST_TIMEOUT_MS });
      if (res.status === 404) {
        await res.body?.cancel().catch(() => undefined);
        return names;
      }
      if (res.status === 204) return names;
      if (res.status !== 200) throw await failure(res, `Object storage refused to list container ${container}`);
      const page = (await res.json()) as { name?: unknown }[];
      const got = page.map((o) => o.name).filter((n): n is string => typeof n === 'string');
      names.push(...got);
      const last = got[got.length - 1];
      if (got.length < LIST_LIMIT || last === undefined) return names;
      marker = last;
    }
  }

  /**
   * One request to the account. A refused caller's token (401/403) switches
   * the store to the service token and, when the body can be sent again (no
   * stream), repeats the request with it; a stream's caller retries.
   */
  private async send(method: string, path: string, options: { timeoutMs: number; body?: Readable; headers?: Record<string, string> }): Promise<Response> {
    this.base ??= this.client.endpoint('object-store').then((endpoint) => accountUrl(endpoint, this.project));
    const base = await this.base;
    for (;;) {
      const usingUser = !this.useServiceToken;
      const token = usingUser ? (this.access.userToken ?? '') : await this.client.token();
      const init: RequestInit & { duplex?: 'half' } = {
        method,
        headers: {
          'X-Auth-Token': token,
          'User-Agent': 'stratus-volume-backup',
          ...(this.access.requestId ? { 'X-OpenStack-Request-ID': this.access.requestId } : {}),
          ...(options.headers ?? {}),
        },
        signal: AbortSignal.timeout(options.timeoutMs),
      };
      if (options.body) {
        init.body = Readable.toWeb(options.body) as unknown as RequestInit['body'];
        init.duplex = 'half';
      }
      const res = await fetch(`${base}${path}`, init);
      if (usingUser && (res.status === 401 || res.status === 403)) {
        this.useServiceToken = true;
        if (!options.body) {
          await res.body?.cancel().catch(() => undefined);
          continue;
        }
      }
      return res;
    }
  }
}

/** `/<container>[/<object>]`, each part URL-encoded (object names keep their slashes). */
function objectPath(container: string, name?: string): string {
  const c = `/${encodeURIComponent(container)}`;
  return name === undefined ? c : `${c}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

async function failure(res: Response, what: string): Promise<ObjectStoreError> {
  const text = await res.text().catch(() => '');
  return new ObjectStoreError(res.status, `${what} (${res.status}): ${text.slice(0, 200)}`);
}
