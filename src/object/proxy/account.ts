import { CONSTRAINTS, Timestamp } from '../common.js';
import { formatAclV2, parseAclV2 } from './acl.js';
import { backendHeaders, bestResponse, type Target } from './backend.js';
import { checkMetadata, setParams, validateListingParams } from './constraints.js';
import { DEFAULT_POLICY, stripOwnerHeaders, transferHeaders } from './controller-common.js';
import { cacheAccountInfo, clearAccountInfo, proxyState } from './info-cache.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { httpError } from './responses.js';

/**
 * The account controller (Swift's `AccountController`): listings and
 * metadata; an account is created on its first container PUT or POST
 * (`account_autocreate`) and until then reads as an empty one.
 */

const ACCESS_CONTROL_SYSMETA = 'x-account-sysmeta-core-access-control';

/**
 * Creates an account on all its replicas (Swift's `autocreate_account`),
 * carrying any `X-Account-Sysmeta-*` of the request. True when a quorum
 * created it (or it existed).
 */
export async function autocreateAccount(ctx: ProxyContext, req: SwiftRequest, account: string): Promise<boolean> {
  const { partition, nodes } = ctx.rings.account.getNodes(account);
  const headers: Record<string, string> = { 'x-timestamp': Timestamp.now().internal, 'x-trans-id': req.env.requestId };
  for (const [name, value] of Object.entries(req.headers)) if (name.startsWith('x-account-sysmeta-')) headers[name] = value;
  const results = await proxyState(ctx).backend.makeRequests(ctx.rings.account, partition, 'PUT', { account }, nodes.map(() => ({ ...headers })));
  clearAccountInfo(ctx, account);
  const response = bestResponse(results);
  if (response.status >= 200 && response.status < 300) {
    ctx.log.info({ request_id: req.env.requestId, account }, 'autocreated account');
    return true;
  }
  ctx.log.warn({ request_id: req.env.requestId, account, status: response.status }, 'could not autocreate account');
  return false;
}

/** The listing (and headers) of an account that was never written: empty, as Swift's fake account listing. */
function fakeAccountListing(req: SwiftRequest): SwiftResponse {
  const now = Timestamp.now().normal;
  const headers: Record<string, string> = {
    'x-account-container-count': '0',
    'x-account-object-count': '0',
    'x-account-bytes-used': '0',
    'x-timestamp': now,
    'x-put-timestamp': now,
    'x-backend-fake-account-listing': 'yes',
    'content-type': 'application/json; charset=utf-8',
  };
  if (req.method === 'HEAD') return { status: 204, headers, body: '' };
  return { status: 200, headers, body: '[]' };
}

/** Turns `X-Account-Access-Control` into its sysmeta (owners only); a message when the JSON is not a valid ACL. */
function accessControl(req: SwiftRequest): string | null {
  const value = req.headers['x-account-access-control'];
  if (value === undefined) return null;
  delete req.headers['x-account-access-control'];
  if (!req.env.swiftOwner) return null;
  const acl = parseAclV2(value);
  if (acl === null) return `Syntax error in input (${JSON.stringify(value)})`;
  for (const [key, members] of Object.entries(acl)) {
    if (!['admin', 'read-write', 'read-only'].includes(key)) return `Key ${JSON.stringify(key)} not recognized`;
    if (!Array.isArray(members)) return `Value for key ${JSON.stringify(key)} must be a list`;
    if (!members.every((m) => typeof m === 'string')) return `Elements of ${JSON.stringify(key)} list must be strings`;
  }
  req.headers[ACCESS_CONTROL_SYSMETA] = Object.keys(acl).length ? formatAclV2(acl) : '';
  return null;
}

/** The account controller's handlers. */
export class AccountController {
  private readonly target: Target;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly account: string,
  ) {
    this.target = { account };
  }

  private nameTooLong(): SwiftResponse | null {
    const limit = CONSTRAINTS.max_account_name_length * (this.account.startsWith('.') ? 2 : 1);
    const length = Buffer.byteLength(this.account);
    return length > limit ? httpError(400, `Account name length of ${length} longer than ${limit}`) : null;
  }

  /** What only owners see: the account ACL in its client form; for others owner-only headers go. */
  private ownerView(req: SwiftRequest, response: SwiftResponse): void {
    const acl = response.headers[ACCESS_CONTROL_SYSMETA];
    delete response.headers[ACCESS_CONTROL_SYSMETA];
    if (req.env.swiftOwner) {
      const parsed = parseAclV2(acl);
      if (parsed && Object.keys(parsed).length) response.headers['x-account-access-control'] = formatAclV2(parsed);
    } else {
      stripOwnerHeaders(response.headers);
    }
  }

  /** GET (a JSON listing; `listing_formats` writes the others) and HEAD. */
  async getOrHead(req: SwiftRequest): Promise<SwiftResponse> {
    const tooLong = this.nameTooLong();
    if (tooLong) return tooLong;
    if (req.method === 'GET') validateListingParams(req.query, CONSTRAINTS.account_listing_limit);
    const ring = this.ctx.rings.account;
    const { partition } = ring.getNodes(this.account);
    const headers = backendHeaders(req, {});
    delete headers['x-timestamp'];
    const query = req.method === 'GET' ? setParams(req.query, { format: 'json' }) : '';
    let response = await proxyState(this.ctx).backend.getOrHead(ring, partition, this.target, { method: req.method, headers, query, serverType: 'account' });
    if (response.status === 404) {
      if ((response.headers['x-account-status'] ?? '').toLowerCase() === 'deleted') response = httpError(410, undefined, { 'x-account-status': 'Deleted' });
      else response = fakeAccountListing(req);
    }
    cacheAccountInfo(this.ctx, this.account, response);
    if (response.status >= 200 && response.status < 300) {
      const count = response.headers['x-account-container-count'] ?? '0';
      const prefix = `x-account-storage-policy-${DEFAULT_POLICY.name.toLowerCase()}-`;
      if (count !== '0' && response.headers[`${prefix}container-count`] === undefined) {
        response.headers[`${prefix}container-count`] = count;
        response.headers[`${prefix}object-count`] = response.headers['x-account-object-count'] ?? '0';
        response.headers[`${prefix}bytes-used`] = response.headers['x-account-bytes-used'] ?? '0';
      }
    }
    this.ownerView(req, response);
    return response;
  }

  /** PUT: creates the account (reseller admin only). */
  async put(req: SwiftRequest): Promise<SwiftResponse> {
    if (!req.env.resellerAdmin) return req.env.identity ? httpError(403) : httpError(401);
    const invalid = checkMetadata(req.headers, 'account');
    if (invalid) return invalid;
    const tooLong = this.nameTooLong();
    if (tooLong) return tooLong;
    const aclError = accessControl(req);
    if (aclError) return httpError(400, aclError);
    return this.write(req, 'PUT');
  }

  /** POST: new metadata (`X-Account-Meta-*`, temp URL keys; ACLs for owners), creating the account if needed. */
  async post(req: SwiftRequest): Promise<SwiftResponse> {
    const tooLong = this.nameTooLong();
    if (tooLong) return tooLong;
    const invalid = checkMetadata(req.headers, 'account');
    if (invalid) return invalid;
    const aclError = accessControl(req);
    if (aclError) return httpError(400, aclError);
    if (!req.env.swiftOwner) stripOwnerHeaders(req.headers);
    let response = await this.write(req, 'POST');
    if (response.status === 404) {
      if (!(await autocreateAccount(this.ctx, req, this.account))) return httpError(503);
      response = await this.write(req, 'POST');
    }
    return response;
  }

  /** DELETE: marks the account deleted for the reaper (reseller admin only). */
  async delete(req: SwiftRequest): Promise<SwiftResponse> {
    if (req.query) return httpError(400);
    if (!req.env.resellerAdmin) return req.env.identity ? httpError(403) : httpError(401);
    return this.write(req, 'DELETE');
  }

  private async write(req: SwiftRequest, method: string): Promise<SwiftResponse> {
    const { partition, nodes } = this.ctx.rings.account.getNodes(this.account);
    const headers = backendHeaders(req, method === 'DELETE' ? {} : transferHeaders(req, 'account'));
    clearAccountInfo(this.ctx, this.account);
    const results = await proxyState(this.ctx).backend.makeRequests(this.ctx.rings.account, partition, method, this.target, nodes.map(() => ({ ...headers })));
    clearAccountInfo(this.ctx, this.account);
    const response = bestResponse(results);
    this.ownerView(req, response);
    return response;
  }
}
