import type { RingDevice } from '../ring/ring.js';
import { Backend, backendHeaders } from './backend.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { discard } from './responses.js';

/**
 * What the proxy knows about accounts and containers without asking again
 * (Swift's `get_account_info` / `get_container_info` with their cache): the
 * proxy app, ACL checks and middlewares (quotas, tempurl, versioning,
 * staticweb) read it. Entries live a few seconds, and every account or
 * container write through this proxy drops them.
 */

/** A container as its servers describe it (Swift's container info dict, in camelCase). */
export interface ContainerInfo {
  /** The status of the container HEAD: 2xx exists, 404 does not, 503 (or 0) unknown. */
  status: number;
  readAcl: string | null;
  writeAcl: string | null;
  syncKey: string | null;
  syncTo: string | null;
  objectCount: number;
  bytes: number;
  /** `X-Versions-Location` as stored. */
  versions: string | null;
  /** The storage policy index (`'0'`). */
  storagePolicy: string;
  cors: { allowOrigin: string | null; exposeHeaders: string | null; maxAge: string | null };
  /** `X-Container-Meta-*` without the prefix, names lower-case. */
  meta: Record<string, string>;
  /** `X-Container-Sysmeta-*` without the prefix, names lower-case. */
  sysmeta: Record<string, string>;
  /** The HEAD response's headers (lower-case names). */
  headers: Record<string, string>;
  /** The container's partition and primary nodes in the container ring. */
  partition: number;
  nodes: RingDevice[];
}

/** An account as its servers describe it (Swift's account info dict, in camelCase). */
export interface AccountInfo {
  /** 2xx exists (or may be auto-created), 410 deleted, 503 (or 0) unknown. */
  status: number;
  /** False for an account that was never written (answered as an empty one, Swift's fake listing). */
  reallyExists: boolean;
  containerCount: number;
  objectCount: number;
  bytes: number;
  /** `X-Account-Meta-*` without the prefix (e.g. `temp-url-key`). */
  meta: Record<string, string>;
  /** `X-Account-Sysmeta-*` without the prefix (e.g. `project-domain-id`, `core-access-control`). */
  sysmeta: Record<string, string>;
  headers: Record<string, string>;
  partition: number;
  nodes: RingDevice[];
}

const POSITIVE_TTL_MS = 10_000;
const NEGATIVE_TTL_MS = 2_000;
const MAX_ENTRIES = 20_000;

class InfoCache<T extends { status: number }> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until < Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: T): void {
    // Unknown states (backends down) are not remembered.
    if (value.status >= 500 || value.status === 0) return;
    const ttl = value.status >= 200 && value.status < 300 ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS;
    this.entries.delete(key);
    this.entries.set(key, { value, until: Date.now() + ttl });
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  drop(key: string): void {
    this.entries.delete(key);
  }
}

/** Per-proxy state beside the contract's ProxyContext: the storage helper and the info caches. */
export interface ProxyState {
  backend: Backend;
  accounts: InfoCache<AccountInfo>;
  containers: InfoCache<ContainerInfo>;
}

const states = new WeakMap<ProxyContext, ProxyState>();

/** The state of a proxy (made on first use). */
export function proxyState(ctx: ProxyContext): ProxyState {
  let state = states.get(ctx);
  if (!state) {
    state = { backend: new Backend(ctx), accounts: new InfoCache(), containers: new InfoCache() };
    states.set(ctx, state);
  }
  return state;
}

const containerKey = (account: string, container: string): string => `${account}/${container}`;

function splitMeta(headers: Record<string, string>, type: 'account' | 'container'): { meta: Record<string, string>; sysmeta: Record<string, string> } {
  const meta: Record<string, string> = {};
  const sysmeta: Record<string, string> = {};
  const userPrefix = `x-${type}-meta-`;
  const sysPrefix = `x-${type}-sysmeta-`;
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(userPrefix)) meta[name.slice(userPrefix.length)] = value;
    else if (name.startsWith(sysPrefix)) sysmeta[name.slice(sysPrefix.length)] = value;
  }
  return { meta, sysmeta };
}

const int = (value: string | undefined): number => {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
};

/** Container info from the headers of a container HEAD or GET. */
export function containerInfoFromResponse(ctx: ProxyContext, account: string, container: string, status: number, headers: Record<string, string>): ContainerInfo {
  const { meta, sysmeta } = splitMeta(headers, 'container');
  const { partition, nodes } = ctx.rings.container.getNodes(account, container);
  return {
    status,
    readAcl: headers['x-container-read'] ?? null,
    writeAcl: headers['x-container-write'] ?? null,
    syncKey: headers['x-container-sync-key'] ?? null,
    syncTo: headers['x-container-sync-to'] ?? null,
    objectCount: int(headers['x-container-object-count']),
    bytes: int(headers['x-container-bytes-used']),
    versions: headers['x-versions-location'] ?? null,
    storagePolicy: headers['x-backend-storage-policy-index'] ?? '0',
    cors: {
      allowOrigin: meta['access-control-allow-origin'] ?? null,
      exposeHeaders: meta['access-control-expose-headers'] ?? null,
      maxAge: meta['access-control-max-age'] ?? null,
    },
    meta,
    sysmeta,
    headers,
    partition,
    nodes,
  };
}

/** Account info from the headers of an account HEAD or GET. */
export function accountInfoFromResponse(ctx: ProxyContext, account: string, status: number, headers: Record<string, string>): AccountInfo {
  const { meta, sysmeta } = splitMeta(headers, 'account');
  const { partition, nodes } = ctx.rings.account.getNodes(account);
  return {
    status,
    reallyExists: status >= 200 && status < 300 && headers['x-backend-fake-account-listing'] !== 'yes',
    containerCount: int(headers['x-account-container-count']),
    objectCount: int(headers['x-account-object-count']),
    bytes: int(headers['x-account-bytes-used']),
    meta,
    sysmeta,
    headers,
    partition,
    nodes,
  };
}

/** Remembers what a container GET/HEAD just learnt. */
export function cacheContainerInfo(ctx: ProxyContext, account: string, container: string, response: SwiftResponse): void {
  proxyState(ctx).containers.set(containerKey(account, container), containerInfoFromResponse(ctx, account, container, response.status, response.headers));
}

/** Remembers what an account GET/HEAD just learnt. */
export function cacheAccountInfo(ctx: ProxyContext, account: string, response: SwiftResponse): void {
  proxyState(ctx).accounts.set(account, accountInfoFromResponse(ctx, account, response.status, response.headers));
}

/** Forgets a container (after a PUT, POST or DELETE of it). */
export function clearContainerInfo(ctx: ProxyContext, account: string, container: string): void {
  proxyState(ctx).containers.drop(containerKey(account, container));
}

/** Forgets an account (after a write to it, or a container PUT/DELETE that changes its counts). */
export function clearAccountInfo(ctx: ProxyContext, account: string): void {
  proxyState(ctx).accounts.drop(account);
}

/**
 * What the proxy knows of a container, from the cache or a HEAD to its
 * servers. Bypasses authorization: it does not say the caller may use the
 * container. Never throws; an unreachable cluster gives status 503.
 */
export async function getContainerInfo(ctx: ProxyContext, req: SwiftRequest, account: string, container: string): Promise<ContainerInfo> {
  const state = proxyState(ctx);
  const cached = state.containers.get(containerKey(account, container));
  if (cached) return cached;
  const { partition } = ctx.rings.container.getNodes(account, container);
  const headers = backendHeaders(req, {});
  delete headers['x-timestamp'];
  const response = await state.backend.getOrHead(ctx.rings.container, partition, { account, container }, { method: 'HEAD', headers, serverType: 'container' });
  discard(response.body);
  const info = containerInfoFromResponse(ctx, account, container, response.status, response.headers);
  state.containers.set(containerKey(account, container), info);
  return info;
}

/**
 * What the proxy knows of an account, from the cache or a HEAD to its
 * servers. An account never written answers as an existing empty one with
 * `reallyExists` false (accounts are created on first write). Bypasses
 * authorization. Never throws; an unreachable cluster gives status 503.
 */
export async function getAccountInfo(ctx: ProxyContext, req: SwiftRequest, account: string): Promise<AccountInfo> {
  const state = proxyState(ctx);
  const cached = state.accounts.get(account);
  if (cached) return cached;
  const { partition } = ctx.rings.account.getNodes(account);
  const headers = backendHeaders(req, {});
  delete headers['x-timestamp'];
  const response = await state.backend.getOrHead(ctx.rings.account, partition, { account }, { method: 'HEAD', headers, serverType: 'account' });
  discard(response.body);
  let info: AccountInfo;
  if (response.status === 404 && (response.headers['x-account-status'] ?? '').toLowerCase() === 'deleted') {
    info = accountInfoFromResponse(ctx, account, 410, response.headers);
  } else if (response.status === 404) {
    info = { ...accountInfoFromResponse(ctx, account, 200, {}), reallyExists: false };
  } else {
    info = accountInfoFromResponse(ctx, account, response.status, response.headers);
  }
  state.accounts.set(account, info);
  return info;
}
