import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import { acceptTransfer, createTransfer, deleteTransfer, getTransfer, listTransfers, type Transfer } from '../transfers.js';
import { apiTime, atLeast, authorize, contextOf, type VolumeService } from '../volume.js';
import { bodyObject, booleanField, checkKeys, DB_MAX_INT, integerValue, invalidField, isUuidLike, nextLink, notOfType, paginationOf, pyRepr, queryOf, sortOf, strictBool, versionNotSupported } from './catalog-input.js';

/**
 * Volume transfers: `os-volume-transfer` (every microversion) and, from
 * 3.55, `volume-transfers` (the same, with `no_snapshots`); 3.57 adds the
 * transfer's history fields, 3.59 paging and sorting.
 */

function links(volume: VolumeService, req: FastifyRequest, id: string): { rel: string; href: string }[] {
  const project = req.ctx.projectId;
  const prefix = project ? `${project}/` : '';
  return [
    { rel: 'self', href: `${volume.publicUrl}/v3/${prefix}os-volume-transfer/${id}` },
    { rel: 'bookmark', href: `${volume.publicUrl}/${prefix}os-volume-transfer/${id}` },
  ];
}

function summary(volume: VolumeService, req: FastifyRequest, t: Transfer): Record<string, unknown> {
  return { id: t.id, volume_id: t.volume_id, name: t.display_name, links: links(volume, req, t.id) };
}

function detail(volume: VolumeService, req: FastifyRequest, t: Transfer, withKey = false): Record<string, unknown> {
  const view: Record<string, unknown> = { id: t.id, created_at: apiTime(t.created_at), name: t.display_name, volume_id: t.volume_id };
  if (withKey) view.auth_key = t.auth_key;
  view.links = links(volume, req, t.id);
  if (atLeast(req, '3.55')) view.no_snapshots = Number(t.no_snapshots) === 1;
  if (atLeast(req, '3.57')) Object.assign(view, { destination_project_id: null, source_project_id: t.project_id, accepted: false });
  return view;
}

/** A transfer name: null, or a string 1-255 characters once trimmed (Cinder's `name_skip_leading_trailing_spaces`). */
function transferName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw invalidField('name', value, `${pyRepr(value)} is not valid under any of the given schemas`);
  const name = value.trim();
  if (!name) throw badRequest("An invalid 'name' value was provided. The 'name' can not be empty.");
  if (name.length > 255) throw badRequest("An invalid 'name' value was provided. The 'name' can not be greater than 255 characters.");
  return name;
}

async function create(volume: VolumeService, req: FastifyRequest, reply: FastifyReply, v355: boolean): Promise<unknown> {
  const ctx = contextOf(req);
  const inner = bodyObject(req.body, 'transfer');
  checkKeys(inner, 'transfer', ['volume_id', 'name', ...(v355 ? ['no_snapshots'] : [])], ['volume_id']);
  const volumeId = inner.volume_id;
  if (typeof volumeId !== 'string') throw invalidField('volume_id', volumeId, notOfType(volumeId, 'string'));
  if (!isUuidLike(volumeId)) throw invalidField('volume_id', volumeId, `${pyRepr(volumeId)} is not a 'uuid'`);
  const name = transferName(inner.name);
  const noSnapshots = inner.no_snapshots === undefined ? false : booleanField(inner.no_snapshots, 'no_snapshots');
  const transfer = await createTransfer(volume, ctx, { volumeId, name, noSnapshots, allowEncrypted: atLeast(req, '3.70') });
  return reply.code(202).send({ transfer: detail(volume, req, transfer, true) });
}

async function accept(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  const ctx = contextOf(req);
  const inner = bodyObject(req.body, 'accept');
  checkKeys(inner, 'accept', ['auth_key'], ['auth_key']);
  const key = inner.auth_key;
  if (typeof key !== 'string' && !(typeof key === 'number' && Number.isInteger(key))) throw invalidField('auth_key', key, notOfType(key, 'string', 'integer'));
  const transfer = await acceptTransfer(volume, ctx, req.params.id, String(key));
  return reply.code(202).send({ transfer: summary(volume, req, transfer) });
}

async function list(volume: VolumeService, req: FastifyRequest, detailed: boolean, collection: string, v355: boolean): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'volume:get_all_transfers');
  const query = queryOf(req);
  // Only the 3.55 API pages and sorts (3.59); os-volume-transfer lists oldest first.
  const paged = v355 && atLeast(req, '3.59');
  const filters: Record<string, string> = { ...query };
  for (const key of ['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir', 'all_tenants']) delete filters[key];
  if (filters.name !== undefined) {
    filters.display_name = filters.name;
    delete filters.name;
  }
  const allTenants = query.all_tenants !== undefined && strictBool(query.all_tenants) === true;
  let transfers = await listTransfers(volume, ctx, allTenants, filters);
  const sort = paged ? sortOf(query) : [{ key: 'created_at', dir: 'asc' as const }];
  const keys = [...sort, { key: 'id', dir: sort[sort.length - 1]?.dir ?? 'asc' }].map((s) => ({ ...s, key: s.key === 'name' ? 'display_name' : s.key }));
  for (const { key } of keys) if (!['id', 'volume_id', 'display_name', 'created_at', 'updated_at'].includes(key)) throw badRequest('Invalid input received: Invalid sort key');
  transfers.sort((a, b) => {
    for (const { key, dir } of keys) {
      const x = String((a as unknown as Record<string, unknown>)[key] ?? '');
      const y = String((b as unknown as Record<string, unknown>)[key] ?? '');
      if (x !== y) return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    }
    return 0;
  });
  let pageSize: number | undefined;
  if (paged) {
    const { limit, marker, offset } = paginationOf(volume, query);
    if (marker !== undefined) {
      const at = transfers.findIndex((t) => t.id === marker);
      if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
      transfers = transfers.slice(at + 1);
    }
    transfers = transfers.slice(offset);
    pageSize = limit;
  } else {
    // Cinder's common.limited: offset and limit from the query.
    const offset = query.offset !== undefined ? integerValue(query.offset, 'offset', 0, DB_MAX_INT) : 0;
    transfers = transfers.slice(offset);
    if (query.limit !== undefined) pageSize = integerValue(query.limit, 'limit', 0);
  }
  const size = Math.min(pageSize ?? volume.config.volume.max_limit, volume.config.volume.max_limit);
  transfers = transfers.slice(0, size);
  const body: Record<string, unknown> = { transfers: transfers.map((t) => (detailed ? detail(volume, req, t) : summary(volume, req, t))) };
  const last = transfers[transfers.length - 1];
  if (last && pageSize !== undefined && transfers.length === size) body.transfers_links = [nextLink(volume, req, collection, last.id)];
  return body;
}

function needs355(req: FastifyRequest): void {
  if (!atLeast(req, '3.55')) throw versionNotSupported(req);
}

/** Registers `os-volume-transfer` and `volume-transfers`. */
export function registerTransfers(app: FastifyInstance, volume: VolumeService): void {
  for (const collection of ['os-volume-transfer', 'volume-transfers']) {
    const v355 = collection === 'volume-transfers';
    const gate = (req: FastifyRequest): void => {
      if (v355) needs355(req);
    };
    app.post(`/v3/${collection}`, async (req, reply) => {
      gate(req);
      return create(volume, req, reply, v355);
    });
    app.get(`/v3/${collection}`, async (req) => {
      gate(req);
      return list(volume, req, false, collection, v355);
    });
    app.get(`/v3/${collection}/detail`, async (req) => {
      gate(req);
      return list(volume, req, true, `${collection}/detail`, v355);
    });
    app.get<{ Params: { id: string } }>(`/v3/${collection}/:id`, async (req) => {
      gate(req);
      const ctx = contextOf(req);
      authorize(volume, ctx, 'volume:get_transfer');
      return { transfer: detail(volume, req, await getTransfer(volume, ctx, req.params.id)) };
    });
    app.post<{ Params: { id: string } }>(`/v3/${collection}/:id/accept`, async (req, reply) => {
      gate(req);
      return accept(volume, req, reply);
    });
    app.delete<{ Params: { id: string } }>(`/v3/${collection}/:id`, async (req, reply) => {
      gate(req);
      await deleteTransfer(volume, contextOf(req), req.params.id);
      return reply.code(202).send();
    });
  }
}
