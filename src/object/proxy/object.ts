import { EXPIRER_ACCOUNT, Timestamp } from '../common.js';
import { backendHeaders, bestResponse, quorumSize, type Target } from './backend.js';
import { expirerContainer } from '../storage/expirer-queue.js';
import { checkDeleteHeaders, checkMetadata, checkObjectCreation, guessContentType, messageLength, trueValue } from './constraints.js';
import { getContainerInfo, proxyState, type ContainerInfo } from './info-cache.js';
import type { ProxyContext, SwiftRequest, SwiftResponse } from './pipeline.js';
import { storeObject } from './object-put.js';
import { httpError, plainError, SwiftHttpError } from './responses.js';
import type { Authz } from './app.js';

/**
 * The object controller (Swift's `ReplicatedObjectController`): GET and
 * HEAD from one healthy replica, PUT streamed to all replicas with a
 * quorum, POST and DELETE to all with a quorum, each naming the container
 * replicas the object servers must update.
 */

/** Request headers never sent on to the object servers: hop-by-hop ones and credentials. */
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'expect', 'transfer-encoding', 'content-length', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'x-auth-token', 'x-storage-token', 'x-service-token', 'authorization', 'cookie']);

/** The client's headers for the object servers (Swift sends the request's headers on). */
function forwardedHeaders(req: SwiftRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (!NOT_FORWARDED.has(name)) headers[name] = value;
  if (headers.etag !== undefined) headers.etag = headers.etag.replaceAll('"', '').toLowerCase();
  return headers;
}

/** Swift's `num_container_updates`: enough container updates that a successful PUT's update is durable, and each container replica named at least once. */
function containerUpdates(containerReplicas: number, objectReplicas: number): number {
  return Math.max(quorumSize(containerReplicas) + objectReplicas - quorumSize(objectReplicas), containerReplicas);
}

const csvAppend = (current: string | undefined, value: string): string => (current ? `${current},${value}` : value);

/**
 * One header set per object replica, with the container updates (and the
 * expirer queue updates of `X-Delete-At`) spread over them as Swift's
 * `_backend_requests` does.
 */
function objectBackendRequests(ctx: ProxyContext, target: Target, count: number, info: ContainerInfo, base: Record<string, string>): Record<string, string>[] {
  const headers = Array.from({ length: count }, () => ({ ...base }));
  const containers = info.nodes;
  const deleteAt = base['x-delete-at'];
  let deleteAtNodes: { partition: number; nodes: typeof containers; container: string } | null = null;
  if (deleteAt !== undefined) {
    const container = expirerContainer(ctx.salt, Number(deleteAt), target.account, target.container ?? '', target.object ?? '');
    const placement = ctx.rings.container.getNodes(EXPIRER_ACCOUNT, container);
    deleteAtNodes = { partition: placement.partition, nodes: placement.nodes, container };
  }
  if (containers.length === 0 || count === 0) return headers;
  const needed = containerUpdates(containers.length, count);
  for (let i = 0; i < needed; i++) {
    const h = headers[i % count] ?? {};
    const node = containers[i % containers.length];
    if (!node) continue;
    h['x-container-partition'] = String(info.partition);
    h['x-container-host'] = csvAppend(h['x-container-host'], `${node.ip}:${node.port}`);
    h['x-container-device'] = csvAppend(h['x-container-device'], node.device);
    if (deleteAtNodes && deleteAtNodes.nodes.length > 0) {
      const d = headers[count - 1 - (i % count)] ?? {};
      const dnode = deleteAtNodes.nodes[i % deleteAtNodes.nodes.length];
      if (dnode) {
        d['x-delete-at-container'] = deleteAtNodes.container;
        d['x-delete-at-partition'] = String(deleteAtNodes.partition);
        d['x-delete-at-host'] = csvAppend(d['x-delete-at-host'], `${dnode.ip}:${dnode.port}`);
        d['x-delete-at-device'] = csvAppend(d['x-delete-at-device'], dnode.device);
      }
    }
  }
  headers.forEach((h, i) => {
    h['x-backend-clean-expiring-object-queue'] ??= i < 2 ? 't' : 'f';
  });
  return headers;
}

/** Drops Swift's internal `swift_bytes` parameter from a Content-Type (Swift's `clean_content_type`). */
function cleanContentType(value: string): string {
  if (!value.includes(';')) return value;
  const [type, ...params] = value.split(';');
  const kept = params.filter((p) => !p.trim().toLowerCase().startsWith('swift_bytes='));
  return [type ?? '', ...kept].join(';');
}

/** The object controller's handlers. */
export class ObjectController {
  private readonly target: Target;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly account: string,
    private readonly container: string,
    private readonly object: string,
  ) {
    this.target = { account, container, object };
  }

  private async info(req: SwiftRequest): Promise<ContainerInfo> {
    const info = await getContainerInfo(this.ctx, req, this.account, this.container);
    if (info.status >= 500) throw new SwiftHttpError(httpError(503));
    return info;
  }

  /** GET and HEAD: the first replica that has the object answers, streamed; Range and conditional headers are the object server's to apply. */
  async getOrHead(req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
    const info = await this.info(req);
    const denial = await authz.check({ read: info.readAcl ?? undefined });
    if (denial) return denial;
    const ring = this.ctx.rings.object;
    const { partition } = ring.getNodes(this.account, this.container, this.object);
    const headers = backendHeaders(req, { ...forwardedHeaders(req), 'x-backend-storage-policy-index': req.headers['x-backend-storage-policy-index'] ?? info.storagePolicy });
    delete headers['x-timestamp'];
    const response = await proxyState(this.ctx).backend.getOrHead(ring, partition, this.target, {
      method: req.method,
      headers,
      serverType: 'object',
      newest: trueValue(req.headers['x-newest']),
    });
    const type = response.headers['content-type'];
    if (type) response.headers['content-type'] = cleanContentType(type);
    return response;
  }

  /** PUT: checks (Swift's `check_object_creation`), then {@link storeObject}. */
  async put(req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && !inm.split(',').some((t) => t.trim() === '*')) return plainError(400, 'If-None-Match only supports *');
    const info = await this.info(req);
    const denial = await authz.check({ write: info.writeAcl ?? undefined });
    if (denial) return denial;
    if (info.status < 200 || info.status >= 300) return httpError(404);
    const detect = trueValue(req.headers['x-detect-content-type']);
    if (detect || !req.headers['content-type']) {
      req.headers['content-type'] = guessContentType(this.object);
      delete req.headers['x-detect-content-type'];
    }
    const invalid = checkObjectCreation(req, this.object, this.ctx.config.max_file_size);
    if (invalid) return invalid;
    const timestamp = Timestamp.parse(req.headers['x-timestamp'] ?? Timestamp.now().internal);
    checkDeleteHeaders(req.headers, timestamp.seconds);
    const ring = this.ctx.rings.object;
    const { partition, nodes } = ring.getNodes(this.account, this.container, this.object);
    const base = backendHeaders(req, { ...forwardedHeaders(req), 'x-backend-storage-policy-index': req.headers['x-backend-storage-policy-index'] ?? info.storagePolicy });
    const headersList = objectBackendRequests(this.ctx, this.target, nodes.length, info, base);
    const response = await storeObject({
      backend: proxyState(this.ctx).backend,
      ring,
      partition,
      target: this.target,
      headersList,
      body: req.body,
      length: messageLength(req.headers),
      maxFileSize: this.ctx.config.max_file_size,
      lastModified: timestamp.httpDate,
      ifNoneMatch: inm !== undefined,
    });
    req.body = null;
    return response;
  }

  /** POST: new metadata on every replica (202). */
  async post(req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
    const info = await this.info(req);
    const denial = await authz.check({ write: info.writeAcl ?? undefined });
    if (denial) return denial;
    if (info.status < 200 || info.status >= 300) return httpError(404);
    const invalid = checkMetadata(req.headers, 'object');
    if (invalid) return invalid;
    const timestamp = Timestamp.parse(req.headers['x-timestamp'] ?? Timestamp.now().internal);
    checkDeleteHeaders(req.headers, timestamp.seconds);
    const ring = this.ctx.rings.object;
    const { partition, nodes } = ring.getNodes(this.account, this.container, this.object);
    const base = backendHeaders(req, { ...forwardedHeaders(req), 'x-backend-storage-policy-index': req.headers['x-backend-storage-policy-index'] ?? info.storagePolicy });
    const headersList = objectBackendRequests(this.ctx, this.target, nodes.length, info, base);
    const results = await proxyState(this.ctx).backend.makeRequests(ring, partition, 'POST', this.target, headersList);
    const response = bestResponse(results, quorumSize(results.length));
    if (response.status === 404 && results.some((r) => r.status === 202)) return httpError(503);
    return response;
  }

  /** DELETE: a tombstone on every replica; 404 only when no replica had the object. */
  async delete(req: SwiftRequest, authz: Authz): Promise<SwiftResponse> {
    const info = await this.info(req);
    const denial = await authz.check({ write: info.writeAcl ?? undefined });
    if (denial) return denial;
    if (info.status < 200 || info.status >= 300) return httpError(404);
    const ring = this.ctx.rings.object;
    const { partition, nodes } = ring.getNodes(this.account, this.container, this.object);
    const base = backendHeaders(req, { ...forwardedHeaders(req), 'x-backend-storage-policy-index': req.headers['x-backend-storage-policy-index'] ?? info.storagePolicy });
    delete base['x-delete-at'];
    const headersList = objectBackendRequests(this.ctx, this.target, nodes.length, info, base);
    const results = await proxyState(this.ctx).backend.makeRequests(ring, partition, 'DELETE', this.target, headersList);
    return bestResponse(results, quorumSize(results.length), { overrides: { 404: 204 } });
  }
}
