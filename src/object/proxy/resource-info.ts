import { getAccountInfo, getContainerInfo, type AccountInfo, type ContainerInfo } from './info-cache.js';
import type { ProxyContext, SwiftRequest } from './pipeline.js';

/**
 * What the tempurl, formpost, staticweb and quota middlewares read of an
 * account or a container (Swift's `get_account_info`/`get_container_info`),
 * through the proxy's info cache, without authorization.
 */

export type { AccountInfo, ContainerInfo };

/** The account's info (status 2xx, also for an account never written; 410 when deleted). */
export function accountInfo(ctx: ProxyContext, req: SwiftRequest, account: string): Promise<AccountInfo> {
  return getAccountInfo(ctx, req, account);
}

/** The container's info (status 404 when it does not exist). */
export function containerInfo(ctx: ProxyContext, req: SwiftRequest, account: string, container: string): Promise<ContainerInfo> {
  return getContainerInfo(ctx, req, account, container);
}

/** The Temp-URL keys in account or container metadata (`temp-url-key`, `temp-url-key-2`), empty ones left out. */
export function tempUrlKeys(meta: Record<string, string>): string[] {
  const keys: string[] = [];
  for (const name of ['temp-url-key', 'temp-url-key-2']) {
    const value = meta[name];
    if (value) keys.push(value);
  }
  return keys;
}
