import type { SwiftRequest } from './pipeline.js';

/** What the account, container and object controllers share. */

/** Headers only the account's owner may see or set (Swift's `swift_owner_headers`). */
export const OWNER_HEADERS = [
  'x-container-read',
  'x-container-write',
  'x-container-sync-key',
  'x-container-sync-to',
  'x-account-meta-temp-url-key',
  'x-account-meta-temp-url-key-2',
  'x-container-meta-temp-url-key',
  'x-container-meta-temp-url-key-2',
  'x-account-access-control',
];

/** The only storage policy, as `/info` and `X-Storage-Policy` name it. */
export const DEFAULT_POLICY = { index: '0', name: 'Policy-0' };

/** Headers a container write passes to the container servers (Swift's `pass_through_headers`, user metadata and sysmeta, `X-Remove-*` as empty values). */
export function transferHeaders(req: SwiftRequest, type: 'container' | 'account'): Record<string, string> {
  const out: Record<string, string> = {};
  const passThrough = type === 'container' ? ['x-container-read', 'x-container-write', 'x-container-sync-key', 'x-container-sync-to', 'x-versions-location', 'x-history-location'] : [];
  const removable =
    type === 'container' ? ['x-remove-container-read', 'x-remove-container-write', 'x-remove-versions-location', 'x-remove-history-location', 'x-remove-container-sync-key', 'x-remove-container-sync-to'] : [];
  const removeMeta = `x-remove-${type}-meta-`;
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith(removeMeta) || removable.includes(name)) out[name.replace('-remove', '')] = '';
  }
  for (const [name, value] of Object.entries(req.headers)) {
    if (passThrough.includes(name) || name.startsWith(`x-${type}-meta-`) || name.startsWith(`x-${type}-sysmeta-`)) out[name] = value;
  }
  return out;
}

/** Removes owner-only headers from a request or response of a caller that does not own the account. */
export function stripOwnerHeaders(headers: Record<string, string>): void {
  for (const name of OWNER_HEADERS) delete headers[name];
}

