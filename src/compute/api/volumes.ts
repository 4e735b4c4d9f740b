import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest, ComputeError, forbidden, notFound } from '../errors.js';
import { snapshotNotFound, VolumeApi, volumeNotFound } from '../volume-api.js';
import { bodyOf, checkObject, invalidField, notOfType, pyRepr } from './nova-input.js';
import { proxyUntil235, upstreamMessage } from './network-proxy.js';

/**
 * Nova's block storage proxies, `os-volumes` and `os-snapshots` (up to
 * 2.35, 404 from 2.36 as Nova answers them): the block storage service's
 * volumes and snapshots in Nova's camel-case view (`displayName`,
 * `availabilityZone`, `attachments` with `serverId`, ...), called with the
 * caller's token, so that service decides what the caller sees and may do.
 * Lists are the caller's project's, paged Nova's way (`offset`, `limit`).
 */

/** Nova's `[api] max_limit`: the most items a list returns. */
const MAX_LIMIT = 1000;
/** The most pages of the block storage service one list reads. */
const MAX_PAGES = 100;
/** The microversion of the block storage API these calls use. */
const VOLUME_VERSION = { 'OpenStack-API-Version': 'volume 3.44' };

type CinderVolume = Record<string, unknown> & { id: string };
type CinderSnapshot = Record<string, unknown> & { id: string };

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** A volume as Nova shows it (the same view in lists, show and create). */
export function novaVolumeView(volume: CinderVolume): Record<string, unknown> {
  const attached = Array.isArray(volume.attachments) ? (volume.attachments as Record<string, unknown>[]) : [];
  // Nova shows the first attachment (a volume it attaches has one), or one empty object when there is none.
  const first = attached[0];
  let attachment: Record<string, unknown> = {};
  if (first) {
    attachment = { id: volume.id, volumeId: volume.id, serverId: String(first.server_id ?? '') };
    const device = str(first.device);
    if (device) attachment.device = device;
  }
  return {
    id: volume.id,
    status: String(volume.status ?? ''),
    size: Number(volume.size ?? 0),
    availabilityZone: String(volume.availability_zone ?? ''),
    createdAt: String(volume.created_at ?? ''),
    attachments: [attachment],
    displayName: str(volume.name),
    displayDescription: str(volume.description),
    volumeType: str(volume.volume_type),
    snapshotId: str(volume.snapshot_id),
    metadata: typeof volume.metadata === 'object' && volume.metadata !== null ? volume.metadata : {},
  };
}

/** A snapshot as Nova shows it (`size` is the snapshot's, in GB). */
export function novaSnapshotView(snapshot: CinderSnapshot): Record<string, unknown> {
  return {
    id: snapshot.id,
    volumeId: String(snapshot.volume_id ?? ''),
    status: String(snapshot.status ?? ''),
    size: Number(snapshot.size ?? 0),
    createdAt: String(snapshot.created_at ?? ''),
    displayName: str(snapshot.name),
    displayDescription: str(snapshot.description),
  };
}

/**
 * A call to the block storage service as the caller. Its refusals become
 * Nova's: 404 stays 404 (with `notFoundAs` when given), 400 and 409 are 400,
 * 403 is 403, and an over-quota 413 is Nova's 403.
 */
async function cinder<T>(compute: ComputeService, ctx: RequestContext, method: string, path: string, body?: unknown, notFoundAs?: ComputeError): Promise<T> {
  const type = await new VolumeApi(compute.client).serviceType();
  if (!type) throw notFoundAs ?? notFound('The resource could not be found.');
  const res = await compute.client.request<T>(type, method, path, { userToken: ctx.authToken, headers: VOLUME_VERSION, ...(body === undefined ? {} : { body }) });
  if (res.status < 400) return res.body;
  const message = upstreamMessage(res.body);
  if (res.status === 404) throw notFoundAs ?? notFound(message);
  if (res.status === 400 || res.status === 409) throw badRequest(message);
  if (res.status === 403 || res.status === 413) throw forbidden(message);
  throw new ComputeError(500, `The block storage service answered ${res.status}: ${message}`);
}

/** Every item of a block storage collection the caller sees (`volumes/detail`, `snapshots/detail`), following its pages. */
async function listAll<T extends { id: string }>(compute: ComputeService, ctx: RequestContext, collection: 'volumes' | 'snapshots'): Promise<T[]> {
  const all: T[] = [];
  let marker: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const params = new URLSearchParams({ limit: String(MAX_LIMIT) });
    if (marker) params.set('marker', marker);
    const body = await cinder<Record<string, unknown>>(compute, ctx, 'GET', `/${collection}/detail?${params.toString()}`);
    const items = Array.isArray(body[collection]) ? (body[collection] as T[]) : [];
    all.push(...items);
    const last = items[items.length - 1];
    if (!last || !Array.isArray(body[`${collection}_links`])) break;
    marker = last.id;
  }
  return all;
}

/** A non-negative integer query parameter, as Nova's `common.limited` reads it; undefined when absent. */
function intParam(req: FastifyRequest, name: string): number | undefined {
  const raw = (req.query as Record<string, unknown>)[name];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? String(raw[raw.length - 1]) : String(raw);
  if (!/^\s*[+-]?\d+\s*$/.test(text)) throw badRequest(`${name} param must be an integer`);
  const value = Number(text);
  if (value < 0) throw badRequest(`${name} param must be positive`);
  return value;
}

/** Nova's `common.limited`: `offset` items skipped, at most `limit` (0 or none: the maximum) returned. */
function limited<T>(req: FastifyRequest, items: T[]): T[] {
  const offset = intParam(req, 'offset') ?? 0;
  const limit = Math.min(MAX_LIMIT, intParam(req, 'limit') || MAX_LIMIT);
  return items.slice(offset, offset + limit);
}

/** `GET /os-volumes/` (an empty id) is no list: Nova answers 404. */
function rejectEmptyId(req: FastifyRequest): void {
  if (req.url.split('?')[0]?.endsWith('/')) throw notFound('The resource could not be found.');
}

const STRING_FIELDS = ['volume_type', 'snapshot_id', 'availability_zone', 'display_name', 'display_description'];

/** The block storage request of a Nova volume create (`size` 1 or more, as a number or digits). */
function volumeRequest(body: unknown): Record<string, unknown> {
  const outer = checkObject(body, null, ['volume'], ['volume']);
  const v = checkObject(outer.volume, 'volume', ['size'], ['size', 'metadata', ...STRING_FIELDS]);
  for (const field of STRING_FIELDS) if (v[field] !== undefined && typeof v[field] !== 'string') throw invalidField(field, v[field], notOfType(v[field], 'string'));
  if (v.metadata !== undefined && (typeof v.metadata !== 'object' || v.metadata === null || Array.isArray(v.metadata))) throw invalidField('metadata', v.metadata, notOfType(v.metadata, 'object'));
  const size = v.size;
  if (typeof size === 'string' && !/^[0-9]+$/.test(size)) throw invalidField('size', size, `'${size}' does not match '^[0-9]+$'`);
  if (typeof size !== 'string' && !Number.isInteger(size)) throw invalidField('size', size, notOfType(size, 'integer, string'));
  const gb = Number(size);
  if (gb < 1) throw invalidField('size', size, `${String(size)} is less than the minimum of 1`);
  const request: Record<string, unknown> = { size: gb };
  if (v.display_name !== undefined) request.name = v.display_name;
  if (v.display_description !== undefined) request.description = v.display_description;
  for (const field of ['volume_type', 'snapshot_id', 'availability_zone', 'metadata']) if (v[field] !== undefined) request[field] = v[field];
  return request;
}

/** The block storage request of a Nova snapshot create (`force` as Nova's booleans). */
function snapshotRequest(body: unknown): Record<string, unknown> {
  const outer = checkObject(body, null, ['snapshot'], ['snapshot']);
  const s = checkObject(outer.snapshot, 'snapshot', ['volume_id'], ['volume_id', 'force', 'display_name', 'display_description']);
  for (const field of ['volume_id', 'display_name', 'display_description']) if (s[field] !== undefined && typeof s[field] !== 'string') throw invalidField(field, s[field], notOfType(s[field], 'string'));
  let force = false;
  if (s.force !== undefined) {
    const text = typeof s.force === 'string' ? s.force.toLowerCase() : '';
    if (typeof s.force === 'boolean') force = s.force;
    else if (typeof s.force === 'string' && ['true', '1', 'yes', 'on', 'y', 't'].includes(text)) force = true;
    else if (typeof s.force === 'string' && ['false', '0', 'no', 'off', 'n', 'f'].includes(text)) force = false;
    else throw invalidField('force', s.force, `${pyRepr(s.force, true)} is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f']`);
  }
  const request: Record<string, unknown> = { volume_id: s.volume_id, force };
  if (s.display_name !== undefined) request.name = s.display_name;
  if (s.display_description !== undefined) request.description = s.display_description;
  return request;
}

function registerOsVolumes(app: FastifyInstance, compute: ComputeService): void {
  const list = async (req: FastifyRequest, rule: 'list' | 'detail'): Promise<unknown> => {
    proxyUntil235(req);
    if (rule === 'list') rejectEmptyId(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, `os-volumes:${rule}`, { project_id: ctx.projectId });
    const volumes = await listAll<CinderVolume>(compute, ctx, 'volumes');
    return { volumes: limited(req, volumes).map(novaVolumeView) };
  };
  app.get('/v2.1/os-volumes', async (req) => list(req, 'list'));
  app.get('/v2.1/os-volumes/detail', async (req) => list(req, 'detail'));

  app.get<{ Params: { id: string } }>('/v2.1/os-volumes/:id', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:show', { project_id: ctx.projectId });
    const id = req.params.id;
    const body = await cinder<{ volume: CinderVolume }>(compute, ctx, 'GET', `/volumes/${encodeURIComponent(id)}`, undefined, volumeNotFound(id));
    return { volume: novaVolumeView(body.volume) };
  });

  app.post('/v2.1/os-volumes', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:create', { project_id: ctx.projectId });
    const request = volumeRequest(bodyOf(req));
    if (typeof request.snapshot_id === 'string') {
      const snapshotId = request.snapshot_id;
      await cinder(compute, ctx, 'GET', `/snapshots/${encodeURIComponent(snapshotId)}`, undefined, snapshotNotFound(snapshotId));
    }
    const body = await cinder<{ volume: CinderVolume }>(compute, ctx, 'POST', '/volumes', { volume: request });
    reply.header('Location', `${compute.publicUrl}/v2.1/os-volumes/${body.volume.id}`);
    return { volume: novaVolumeView(body.volume) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-volumes/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:delete', { project_id: ctx.projectId });
    const id = req.params.id;
    await cinder(compute, ctx, 'DELETE', `/volumes/${encodeURIComponent(id)}`, undefined, volumeNotFound(id));
    return reply.code(202).send();
  });
}

function registerOsSnapshots(app: FastifyInstance, compute: ComputeService): void {
  const list = async (req: FastifyRequest, rule: 'list' | 'detail'): Promise<unknown> => {
    proxyUntil235(req);
    if (rule === 'list') rejectEmptyId(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, `os-volumes:snapshots:${rule}`, { project_id: ctx.projectId });
    const snapshots = await listAll<CinderSnapshot>(compute, ctx, 'snapshots');
    return { snapshots: limited(req, snapshots).map(novaSnapshotView) };
  };
  app.get('/v2.1/os-snapshots', async (req) => list(req, 'list'));
  app.get('/v2.1/os-snapshots/detail', async (req) => list(req, 'detail'));

  app.get<{ Params: { id: string } }>('/v2.1/os-snapshots/:id', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:snapshots:show', { project_id: ctx.projectId });
    const id = req.params.id;
    const body = await cinder<{ snapshot: CinderSnapshot }>(compute, ctx, 'GET', `/snapshots/${encodeURIComponent(id)}`, undefined, snapshotNotFound(id));
    return { snapshot: novaSnapshotView(body.snapshot) };
  });

  app.post('/v2.1/os-snapshots', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:snapshots:create', { project_id: ctx.projectId });
    const request = snapshotRequest(bodyOf(req));
    const volumeId = String(request.volume_id);
    const body = await cinder<{ snapshot: CinderSnapshot }>(compute, ctx, 'POST', '/snapshots', { snapshot: request }, volumeNotFound(volumeId));
    return { snapshot: novaSnapshotView(body.snapshot) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/os-snapshots/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-volumes:snapshots:delete', { project_id: ctx.projectId });
    const id = req.params.id;
    await cinder(compute, ctx, 'DELETE', `/snapshots/${encodeURIComponent(id)}`, undefined, snapshotNotFound(id));
    return reply.code(202).send();
  });
}

/** `os-volumes` and `os-snapshots`. */
export function registerVolumes(app: FastifyInstance, compute: ComputeService): void {
  registerOsVolumes(app, compute);
  registerOsSnapshots(app, compute);
}

/** Nova's `os-volumes_boot` routes, the servers API under another name. */
const VOLUMES_BOOT = /^\/v2\.1\/os-volumes_boot(\/detail|\/[^/?]+(?:\/action)?)?\/?(\?.*)?$/;

/**
 * The URL a request is routed by: `os-volumes_boot` (list, detail, create,
 * show, update, delete, actions) is `servers`, as Nova routes it (at every
 * microversion: it is no proxy); any other URL is itself.
 */
export function volumesBootAsServers(url: string): string {
  const match = VOLUMES_BOOT.exec(url);
  return match ? `/v2.1/servers${match[1] ?? ''}${match[2] ?? ''}` : url;
}
