import { DEFAULT_POLICY } from './controller-common.js';
import { splitSwiftPath, swiftError } from './feature-util.js';
import { clearAccountInfo } from './info-cache.js';
import type { Handler, Middleware, SwiftRequest, SwiftResponse } from './pipeline.js';
import { accountInfo } from './resource-info.js';

/**
 * Swift's `account_quotas`: `X-Account-Quota-Bytes` and
 * `X-Account-Quota-Count` (or the older `X-Account-Meta-Quota-Bytes`), and
 * their per-policy forms `X-Account-Quota-Bytes-Policy-<name>`, which only a
 * reseller admin may set or remove (403 for anyone else), cap what object
 * PUTs may add to an account: over one, 413 `Upload exceeds quota.` (or
 * `policy quota`). The quotas are kept as account sysmeta and shown on the
 * account's HEAD/GET. Resellers are not held to them.
 */

const DIGITS = /^\d+$/;
const QUOTAS = ['quota-bytes', 'quota-count'] as const;
/** The one storage policy there is: its usage is the account's. */
const POLICY = { index: DEFAULT_POLICY.index, name: DEFAULT_POLICY.name.toLowerCase() };

/** Thrown while reading the quota headers of an account request. */
class QuotaHeaderError extends Error {
  constructor(readonly status: number) {
    super(String(status));
  }
}

/** Turns the client's quota headers into sysmeta (resellers) or refuses them (anyone else). */
function translateQuotaHeaders(req: SwiftRequest, headers: Record<string, string>): void {
  for (const quota of QUOTAS) {
    // [client header tail, sysmeta name]: the account-wide quota and the policy's.
    const forms: [string, string][] = [
      [quota, quota],
      [`${quota}-policy-${POLICY.name}`, `${quota}-policy-${POLICY.index}`],
    ];
    const values: [string, string | undefined][] = [];
    for (const [tail, sysmeta] of forms) {
      let value: string | undefined = headers[`x-account-${tail}`];
      if (headers[`x-remove-account-${tail}`]) value = ''; // removal wins when both are sent
      delete headers[`x-account-sysmeta-${sysmeta}`];
      if (tail !== quota) delete headers[`x-account-${tail}`];
      values.push([sysmeta, value]);
    }
    if (req.env.resellerAdmin === true) {
      if (values.some(([, value]) => value && !DIGITS.test(value))) throw new QuotaHeaderError(400);
      for (const [sysmeta, value] of values) if (value !== undefined) headers[`x-account-sysmeta-${sysmeta}`] = value;
    } else if (values.some(([, value]) => value !== undefined)) {
      throw new QuotaHeaderError(403);
    }
  }
}

async function handleAccount(next: Handler, req: SwiftRequest): Promise<SwiftResponse> {
  let forward = req;
  if (req.method === 'POST' || req.method === 'PUT') {
    const headers = { ...req.headers };
    // The older form, X-Account-Meta-Quota-Bytes, stands for X-Account-Quota-Bytes.
    for (const legacy of ['x-account-meta-quota-bytes', 'x-remove-account-meta-quota-bytes']) {
      const modern = legacy.replace('-meta-', '-');
      const value = headers[legacy];
      if (value !== undefined && !headers[modern]) headers[modern] = value;
    }
    try {
      translateQuotaHeaders(req, headers);
    } catch (err) {
      if (err instanceof QuotaHeaderError) return swiftError(err.status, req.method);
      throw err;
    }
    forward = { ...req, headers };
  }
  const resp = await next(forward);
  // Anyone who may read the account may see its quotas.
  for (const quota of QUOTAS) {
    const value = resp.headers[`x-account-sysmeta-${quota}`];
    if (value) resp.headers[`x-account-${quota}`] = value;
    const policyValue = resp.headers[`x-account-sysmeta-${quota}-policy-${POLICY.index}`];
    if (policyValue) resp.headers[`x-account-${quota}-policy-${POLICY.name}`] = policyValue;
  }
  return resp;
}

/** 413 once the request is authorized (a caller who may not write learns nothing of the quota). */
function overQuota(req: SwiftRequest, message: string): SwiftRequest | SwiftResponse {
  const refusal = swiftError(413, req.method, message);
  const authorize = req.env.authorize;
  // A temp URL or form post was authorized above (by its signature): nothing to wait for.
  if (!authorize || req.env.authorizeOverride) return refusal;
  return {
    ...req,
    env: {
      ...req.env,
      authorize: async (r, acls) => (await authorize(r, acls)) ?? refusal,
    },
  };
}

/** Swift's `account_quotas` middleware. */
export const accountQuotas: Middleware = {
  name: 'account_quotas',
  wrap(next, ctx) {
    ctx.registerInfo('account_quotas', {});
    return async (req) => {
      const parts = splitSwiftPath(req.path);
      if (!parts) return next(req);
      if (parts.container === undefined) return handleAccount(next, req);
      if (req.method !== 'PUT' || !parts.object) return next(req);
      if (req.env.resellerAdmin === true) return next(req);
      const length = Number(req.headers['content-length'] ?? '0') || 0;
      const hasQuota = (info: { meta: Record<string, string>; sysmeta: Record<string, string> }): boolean =>
        info.meta['quota-bytes'] !== undefined || Object.keys(info.sysmeta).some((name) => name.startsWith('quota-'));
      let info = await accountInfo(ctx, req, parts.account);
      if (!hasQuota(info)) return next(req);
      // An account with a quota is asked afresh rather than trusted from the cache.
      clearAccountInfo(ctx, parts.account);
      info = await accountInfo(ctx, req, parts.account);
      const quota = (value: string | undefined): number => (value !== undefined && DIGITS.test(value) ? Number(value) : -1);
      const bytes = quota(info.sysmeta['quota-bytes'] ?? info.meta['quota-bytes']);
      const count = quota(info.sysmeta['quota-count']);
      let message: string | null = null;
      if ((bytes >= 0 && bytes < info.bytes + length) || (count >= 0 && count < info.objectCount + 1)) message = 'Upload exceeds quota.';
      else {
        const policyBytes = quota(info.sysmeta[`quota-bytes-policy-${POLICY.index}`]);
        const policyCount = quota(info.sysmeta[`quota-count-policy-${POLICY.index}`]);
        if ((policyBytes >= 0 && policyBytes < info.bytes + length) || (policyCount >= 0 && policyCount < info.objectCount + 1)) message = 'Upload exceeds policy quota.';
      }
      if (message === null) return next(req);
      const guarded = overQuota(req, message);
      return 'status' in guarded ? guarded : next(guarded);
    };
  },
};
