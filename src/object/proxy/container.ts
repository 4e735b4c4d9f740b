import { CONSTRAINTS } from '../common.js';
import { cleanAcl } from './acl.js';
import { backendHeaders, bestResponse, type Target } from './backend.js';
import { checkMetadata, setParams, trueValue, validateListingParams } from './constraints.js';
import { cacheContainerInfo, clearAccountInfo, clearContainerInfo, getAccountInfo, proxyState } from './info-cache.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { httpError, plainError } from './responses.js';
import { DEFAULT_POLICY, stripOwnerHeaders, transferHeaders } from './controller-common.js';
import type { Authz } from './app.js';
import { autocreateAccount } from './account.js';

/**
 * The container controller (Swift's `ContainerController`): listings and
 * metadata from one healthy replica, PUT/POST/DELETE to all replicas with a
 * quorum, each container replica told which account replica to update.
 */

/** The container controller's handlers. */
export class ContainerController {
  private readonly target: Target;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly account: string,
    private readonly container: string,
  ) {
    this.target = { account, container };
  }

  private nameTooLong(): SwiftResponse | null {
    const limit = CONSTRAINTS.max_container_name_length * (this.account.startsWith('.') ? 2 : 1);
    const length = Buffer.byteLength(this.container);
    return length > limit ? httpError(400, `Container name length of ${length} longer than ${limit}`) : null;
  }

  /** Validates and cleans the ACL headers in place (400 with Swift's message when invalid). */
  private cleanAcls(req: SwiftRequest): SwiftResponse | null {
    for (const header of ['x-container-read', 'x-container-write']) {
      const value = req.headers[header];
      if (value === undefined) continue;
      try {
        req.headers[header] = cleanAcl(header, value);
      } catch (err) {
        return httpError(400, err instanceof Error ? err.message : String(err));
      }
    }
    return null;
  }

  /** GET (a JSON listing; `listing_formats` writes the other formats) and HEAD. */
  async getOrHead(req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
    if (req.method === 'GET') validateListingParams(req.query, CONSTRAINTS.container_listing_limit);
    const ring = this.ctx.rings.container;
    const { partition } = ring.getNodes(this.account, this.container);
    const headers = backendHeaders(req, {});
    delete headers['x-timestamp'];
    const query = req.method === 'GET' ? setParams(req.query, { format: 'json' }) : '';
    const response = await proxyState(this.ctx).backend.getOrHead(ring, partition, this.target, { method: req.method, headers, query, serverType: 'container', newest: trueValue(req.headers['x-newest']) });
    cacheContainerInfo(this.ctx, this.account, this.container, response);
    const denial = await authz.check({ read: response.headers['x-container-read'] });
    if (denial) {
      if (response.body && typeof response.body !== 'string' && !Buffer.isBuffer(response.body)) response.body.destroy();
      return denial;
    }
    if (!req.env.swiftOwner) stripOwnerHeaders(response.headers);
    if (response.status >= 200 && response.status < 300) response.headers['x-storage-policy'] = DEFAULT_POLICY.name;
    return response;
  }

  /** PUT: creates the container (201, 202 when it existed), creating the account first if needed. */
  async put(req: SwiftRequest): Promise<SwiftResponse> {
    const invalid = this.cleanAcls(req) ?? checkMetadata(req.headers, 'container');
    if (invalid) return invalid;
    const policy = req.headers['x-storage-policy'];
    if (policy && policy.toLowerCase() !== DEFAULT_POLICY.name.toLowerCase()) return plainError(400, `Invalid X-Storage-Policy '${policy}'`);
    if (!req.env.swiftOwner) stripOwnerHeaders(req.headers);
    const tooLong = this.nameTooLong();
    if (tooLong) return tooLong;
    let account = await getAccountInfo(this.ctx, req, this.account);
    if (account.status >= 500) return httpError(503);
    if (account.status === 410) return httpError(404);
    if (!account.reallyExists) {
      if (!(await autocreateAccount(this.ctx, req, this.account))) return httpError(503);
      account = await getAccountInfo(this.ctx, req, this.account);
    }
    const { partition, nodes } = this.ctx.rings.container.getNodes(this.account, this.container);
    const headersList = this.withAccountUpdates(req, nodes.length, { ...transferHeaders(req, 'container'), 'x-backend-storage-policy-default': DEFAULT_POLICY.index });
    const results = await proxyState(this.ctx).backend.makeRequests(this.ctx.rings.container, partition, 'PUT', this.target, headersList);
    clearContainerInfo(this.ctx, this.account, this.container);
    clearAccountInfo(this.ctx, this.account);
    return bestResponse(results);
  }

  /** POST: new metadata and ACLs (204). */
  async post(req: SwiftRequest): Promise<SwiftResponse> {
    const invalid = this.cleanAcls(req) ?? checkMetadata(req.headers, 'container');
    if (invalid) return invalid;
    if (!req.env.swiftOwner) stripOwnerHeaders(req.headers);
    const account = await getAccountInfo(this.ctx, req, this.account);
    if (account.status >= 500) return httpError(503);
    if (!account.reallyExists) return httpError(404);
    const { partition, nodes } = this.ctx.rings.container.getNodes(this.account, this.container);
    const headers = backendHeaders(req, transferHeaders(req, 'container'));
    clearContainerInfo(this.ctx, this.account, this.container);
    const results = await proxyState(this.ctx).backend.makeRequests(this.ctx.rings.container, partition, 'POST', this.target, nodes.map(() => ({ ...headers })));
    clearContainerInfo(this.ctx, this.account, this.container);
    return bestResponse(results);
  }

  /** DELETE: 204; 409 when it still holds objects; 404 when no replica had it. */
  async delete(req: SwiftRequest): Promise<SwiftResponse> {
    const account = await getAccountInfo(this.ctx, req, this.account);
    if (account.status >= 500) return httpError(503);
    if (!account.reallyExists) return httpError(404);
    const { partition, nodes } = this.ctx.rings.container.getNodes(this.account, this.container);
    const headersList = this.withAccountUpdates(req, nodes.length, {});
    clearContainerInfo(this.ctx, this.account, this.container);
    const results = await proxyState(this.ctx).backend.makeRequests(this.ctx.rings.container, partition, 'DELETE', this.target, headersList);
    clearContainerInfo(this.ctx, this.account, this.container);
    clearAccountInfo(this.ctx, this.account);
    const response = bestResponse(results);
    // Every replica answered 202: none had the container.
    if (response.status === 202) return httpError(404);
    return response;
  }

  /** One header set per container replica, each naming account replicas to update (Swift's container `_backend_requests`). */
  private withAccountUpdates(req: SwiftRequest, count: number, additional: Record<string, string>): Record<string, string>[] {
    const { partition, nodes } = this.ctx.rings.account.getNodes(this.account);
    const headersList = Array.from({ length: count }, () => backendHeaders(req, { ...additional }));
    if (count === 0) return headersList;
    nodes.forEach((node, i) => {
      const h = headersList[i % count];
      if (!h) return;
      h['x-account-partition'] = String(partition);
      h['x-account-host'] = h['x-account-host'] ? `${h['x-account-host']},${node.ip}:${node.port}` : `${node.ip}:${node.port}`;
      h['x-account-device'] = h['x-account-device'] ? `${h['x-account-device']},${node.device}` : node.device;
    });
    return headersList;
  }
}
