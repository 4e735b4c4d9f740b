import { pyRepr } from '../../core/py-repr.js';

/**
 * Swift's container ACLs (`X-Container-Read`, `X-Container-Write`): a comma
 * separated list of grants (`project:user`, `project:*`, `*:user`, role names)
 * and referrer designations (`.r:*`, `.r:.example.com`, `.r:-bad.com`) plus
 * `.rlistings`; and the version-2 JSON ACLs of accounts
 * (`X-Account-Access-Control`).
 */

/**
 * The cleaned form of an ACL header as Swift stores it: items trimmed, empty
 * ones dropped, `.ref`/`.referer`/`.referrer` shortened to `.r`, a leading
 * `*` of a domain dropped (`.r:*.example.com` → `.r:.example.com`). Throws
 * (with Swift's message) for referrers in a write ACL, an empty referrer, or
 * an unknown `.designator`.
 */
export function cleanAcl(name: string, value: string): string {
  const header = name.toLowerCase();
  const values: string[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const colon = item.indexOf(':');
    if (colon < 0) {
      values.push(item);
      continue;
    }
    const first = item.slice(0, colon).trim();
    let second = item.slice(colon + 1).trim();
    if (!first || !first.startsWith('.')) {
      values.push(item);
    } else if (['.r', '.ref', '.referer', '.referrer'].includes(first)) {
      if (header.includes('write')) throw new Error(`Referrers not allowed in write ACL: ${pyRepr(item)}`);
      let negate = false;
      if (second.startsWith('-')) {
        negate = true;
        second = second.slice(1).trim();
      }
      if (second && second !== '*' && second.startsWith('*')) second = second.slice(1).trim();
      if (!second || second === '.') throw new Error(`No host/domain value after referrer designation in ACL: ${pyRepr(item)}`);
      values.push(`.r:${negate ? '-' : ''}${second}`);
    } else {
      throw new Error(`Unknown designator ${pyRepr(first)} in ACL: ${pyRepr(item)}`);
    }
  }
  return values.join(',');
}

/** Splits a (cleaned) ACL into referrer designations (without `.r:`) and groups (percent-decoded). */
export function parseAcl(acl: string | null | undefined): { referrers: string[]; groups: string[] } {
  const referrers: string[] = [];
  const groups: string[] = [];
  if (acl) {
    for (const value of acl.split(',')) {
      if (value.startsWith('.r:')) referrers.push(value.slice(3));
      else groups.push(safeDecode(value));
    }
  }
  return { referrers, groups };
}

/** Whether a request with this `Referer` is allowed by the referrer designations, applied in order. */
export function referrerAllowed(referrer: string | undefined, referrers: string[]): boolean {
  let allow = false;
  if (referrers.length === 0) return false;
  const host = hostOf(referrer ?? '') ?? 'unknown';
  for (const designation of referrers) {
    if (designation.startsWith('-')) {
      const match = designation.slice(1);
      if (match === host || (match.startsWith('.') && host.endsWith(match))) allow = false;
    } else if (designation === '*' || designation === host || (designation.startsWith('.') && host.endsWith(designation))) {
      allow = true;
    }
  }
  return allow;
}

/** A version-2 ACL (JSON object) from its header value: {} for '', null when absent or not a JSON object. */
export function parseAclV2(data: string | null | undefined): Record<string, unknown> | null {
  if (data === null || data === undefined) return null;
  if (data === '') return {};
  try {
    const value: unknown = JSON.parse(data);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** A version-2 ACL as Swift writes it: keys sorted, no spaces, non-ASCII escaped. */
export function formatAclV2(acl: Record<string, unknown>): string {
  return asciiJson(sortKeys(acl));
}

/** JSON with every non-ASCII character escaped as `\uXXXX`, as Python's `json.dumps` writes by default. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function hostOf(referrer: string): string | null {
  try {
    const url = new URL(referrer);
    return url.hostname.toLowerCase() || null;
  } catch {
    return null;
  }
}
