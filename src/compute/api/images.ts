import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { contextOf, type ComputeService } from '../compute.js';
import { badRequest, ComputeError, forbidden, notFound } from '../errors.js';
import { isObject } from './nova-input.js';
import { proxyUntil235, upstreamMessage } from './network-proxy.js';

/**
 * Nova's image proxy (`/images`, `/images/{id}/metadata`, up to 2.35): the
 * image service's images as Nova showed them (`ACTIVE`/`SAVING`/...,
 * `minRam`, `minDisk`, `metadata` = the custom properties, the `server` a
 * snapshot was taken from), called with the caller's token so the image
 * service decides what the caller sees.
 */

/** The image service's own fields: everything else of an image is a property (Nova's metadata). */
const CORE_FIELDS = new Set([
  'id', 'name', 'status', 'visibility', 'protected', 'checksum', 'owner', 'size', 'virtual_size', 'container_format', 'disk_format', 'created_at', 'updated_at',
  'tags', 'direct_url', 'min_ram', 'min_disk', 'file', 'schema', 'self', 'locations', 'os_hash_algo', 'os_hash_value', 'os_hidden', 'stores', 'os_glance_failed_import', 'os_glance_importing_to_stores',
]);

const STATUS: Record<string, string> = { active: 'ACTIVE', queued: 'SAVING', saving: 'SAVING', importing: 'SAVING', uploading: 'SAVING', deleted: 'DELETED', pending_delete: 'DELETED', killed: 'ERROR' };
const PROGRESS: Record<string, number> = { queued: 25, saving: 50, importing: 50, uploading: 50, active: 100 };

/** Nova's image metadata limit (`quota.metadata_items`). */
const MAX_METADATA = 128;

type GlanceImage = Record<string, unknown> & { id: string; name: string | null; status: string };

function properties(image: GlanceImage): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).filter(([k]) => !CORE_FIELDS.has(k)));
}

function imageLinks(compute: ComputeService, id: string): { rel: string; href: string }[] {
  return [
    { rel: 'self', href: `${compute.publicUrl}/v2.1/images/${id}` },
    { rel: 'bookmark', href: `${compute.publicUrl}/images/${id}` },
  ];
}

function detailView(compute: ComputeService, image: GlanceImage): Record<string, unknown> {
  const meta = properties(image);
  const view: Record<string, unknown> = {
    id: image.id,
    name: image.name,
    status: STATUS[image.status] ?? 'UNKNOWN',
    progress: PROGRESS[image.status] ?? 0,
    minRam: Number(image.min_ram ?? 0),
    minDisk: Number(image.min_disk ?? 0),
    metadata: meta,
    created: image.created_at,
    updated: image.updated_at,
    links: imageLinks(compute, image.id),
    'OS-EXT-IMG-SIZE:size': typeof image.size === 'number' ? image.size : null,
  };
  if (typeof meta.instance_uuid === 'string') {
    const uuid = meta.instance_uuid;
    view.server = { id: uuid, links: [{ rel: 'self', href: `${compute.publicUrl}/v2.1/servers/${uuid}` }, { rel: 'bookmark', href: `${compute.publicUrl}/servers/${uuid}` }] };
  }
  return view;
}

async function glance<T>(compute: ComputeService, ctx: RequestContext, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }> {
  return compute.client.request<T>('image', method, path, { userToken: ctx.authToken, ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}) });
}

async function loadImage(compute: ComputeService, ctx: RequestContext, id: string): Promise<GlanceImage> {
  const res = await glance<GlanceImage>(compute, ctx, 'GET', `/v2/images/${encodeURIComponent(id)}`);
  if (res.status === 404 || res.status === 403 || res.status === 400) throw notFound('Image not found.');
  if (res.status >= 400) throw new ComputeError(500, `The image service answered ${res.status}: ${upstreamMessage(res.body)}`);
  return res.body;
}

/** The images the caller sees, filtered as Nova's `GET /images` filters them, then paged by marker and limit. */
async function listImages(compute: ComputeService, req: FastifyRequest, ctx: RequestContext): Promise<GlanceImage[]> {
  const q = req.query as Record<string, string>;
  const params = new URLSearchParams({ limit: '1000' });
  if (q.name !== undefined) params.set('name', q.name);
  const all: GlanceImage[] = [];
  let path: string | null = `/v2/images?${params.toString()}`;
  for (let page = 0; path && page < 100; page++) {
    const res: { status: number; body: { images?: GlanceImage[]; next?: string } } = await glance(compute, ctx, 'GET', path);
    if (res.status >= 400) throw new ComputeError(500, `The image service answered ${res.status}: ${upstreamMessage(res.body)}`);
    all.push(...(res.body.images ?? []));
    path = res.body.next ?? null;
  }
  let images = all;
  if (q.status !== undefined) images = images.filter((i) => (STATUS[i.status] ?? 'UNKNOWN') === q.status.toUpperCase());
  if (q.server !== undefined) {
    const server = q.server.replace(/\/+$/, '').split('/').pop() ?? '';
    images = images.filter((i) => i.instance_uuid === server);
  }
  if (q.type !== undefined) images = images.filter((i) => i.image_type === q.type);
  if (q.minRam !== undefined) images = images.filter((i) => Number(i.min_ram ?? 0) >= Number(q.minRam));
  if (q.minDisk !== undefined) images = images.filter((i) => Number(i.min_disk ?? 0) >= Number(q.minDisk));
  if (q['changes-since'] !== undefined) {
    const since = Date.parse(q['changes-since']);
    if (Number.isNaN(since)) throw badRequest(`Invalid changes-since value: ${q['changes-since']}`);
    images = images.filter((i) => Date.parse(String(i.updated_at)) >= since);
  }
  if (q.marker !== undefined) {
    const at = images.findIndex((i) => i.id === q.marker);
    if (at < 0) throw badRequest(`marker [${q.marker}] not found`);
    images = images.slice(at + 1);
  }
  if (q.limit !== undefined) {
    const limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 0) throw badRequest('limit param must be an integer');
    images = images.slice(0, limit);
  }
  return images;
}

/** Sets the image's properties to `wanted` (dropping the others when `replace`); the properties after. */
async function writeProperties(compute: ComputeService, ctx: RequestContext, image: GlanceImage, wanted: Record<string, unknown>, replace: boolean): Promise<Record<string, unknown>> {
  const current = properties(image);
  const next = replace ? { ...wanted } : { ...current, ...wanted };
  if (Object.keys(next).length > MAX_METADATA) throw forbidden('Quota exceeded for metadata_items: too many image properties');
  const ops: Record<string, unknown>[] = [];
  for (const key of Object.keys(current)) if (!(key in next)) ops.push({ op: 'remove', path: `/${key}` });
  for (const [key, value] of Object.entries(next)) {
    if (current[key] === value) continue;
    ops.push({ op: key in current ? 'replace' : 'add', path: `/${key}`, value: String(value) });
  }
  if (ops.length === 0) return current;
  const res = await glance<GlanceImage>(compute, ctx, 'PATCH', `/v2/images/${image.id}`, ops, { 'Content-Type': 'application/openstack-images-v2.1-json-patch' });
  if (res.status === 404) throw notFound('Image not found.');
  if (res.status === 403) throw forbidden(upstreamMessage(res.body));
  if (res.status === 413) throw forbidden('Quota exceeded for metadata_items: too many image properties');
  if (res.status >= 400) throw badRequest(`Invalid image metadata: ${upstreamMessage(res.body)}`);
  return properties(res.body);
}

function metadataBody(body: unknown, key: 'metadata' | 'meta'): Record<string, unknown> {
  if (!isObject(body) || !isObject(body[key])) throw badRequest('Malformed request body');
  const meta = body[key];
  for (const [k, v] of Object.entries(meta)) {
    if (k.length === 0 || k.length > 255) throw badRequest('Image metadata key cannot be blank or longer than 255 characters');
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw badRequest(`Invalid image metadata value for ${k}`);
  }
  return meta;
}

export function registerImages(app: FastifyInstance, compute: ComputeService): void {
  app.get('/v2.1/images', async (req) => {
    proxyUntil235(req);
    const images = await listImages(compute, req, contextOf(req));
    return { images: images.map((i) => ({ id: i.id, name: i.name, links: imageLinks(compute, i.id) })) };
  });

  app.get('/v2.1/images/detail', async (req) => {
    proxyUntil235(req);
    const images = await listImages(compute, req, contextOf(req));
    return { images: images.map((i) => detailView(compute, i)) };
  });

  app.get<{ Params: { id: string } }>('/v2.1/images/:id', async (req) => {
    proxyUntil235(req);
    return { image: detailView(compute, await loadImage(compute, contextOf(req), req.params.id)) };
  });

  app.delete<{ Params: { id: string } }>('/v2.1/images/:id', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const image = await loadImage(compute, ctx, req.params.id);
    const res = await glance(compute, ctx, 'DELETE', `/v2/images/${image.id}`);
    if (res.status === 404) throw notFound('Image not found.');
    if (res.status === 403) throw forbidden(`You are not allowed to delete the image. ${upstreamMessage(res.body)}`);
    if (res.status >= 400) throw new ComputeError(500, `The image service answered ${res.status}: ${upstreamMessage(res.body)}`);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req) => {
    proxyUntil235(req);
    return { metadata: properties(await loadImage(compute, contextOf(req), req.params.id)) };
  });

  app.put<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const image = await loadImage(compute, ctx, req.params.id);
    return { metadata: await writeProperties(compute, ctx, image, metadataBody(req.body, 'metadata'), true) };
  });

  app.post<{ Params: { id: string } }>('/v2.1/images/:id/metadata', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const image = await loadImage(compute, ctx, req.params.id);
    return { metadata: await writeProperties(compute, ctx, image, metadataBody(req.body, 'metadata'), false) };
  });

  app.get<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req) => {
    proxyUntil235(req);
    const meta = properties(await loadImage(compute, contextOf(req), req.params.id));
    if (!(req.params.key in meta)) throw notFound('Invalid metadata key');
    return { meta: { [req.params.key]: meta[req.params.key] } };
  });

  app.put<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const meta = metadataBody(req.body, 'meta');
    const keys = Object.keys(meta);
    if (keys.length > 1) throw badRequest('Request body contains too many items');
    if (keys[0] !== req.params.key) throw badRequest('Request body and URI mismatch');
    const image = await loadImage(compute, ctx, req.params.id);
    const after = await writeProperties(compute, ctx, image, meta, false);
    return { meta: { [req.params.key]: after[req.params.key] } };
  });

  app.delete<{ Params: { id: string; key: string } }>('/v2.1/images/:id/metadata/:key', async (req, reply) => {
    proxyUntil235(req);
    const ctx = contextOf(req);
    const image = await loadImage(compute, ctx, req.params.id);
    const current = properties(image);
    if (!(req.params.key in current)) throw notFound('Invalid metadata key');
    const { [req.params.key]: _gone, ...rest } = current;
    await writeProperties(compute, ctx, image, rest, true);
    return reply.code(204).send();
  });
}
