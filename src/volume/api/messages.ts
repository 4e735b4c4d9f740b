import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MessageRow } from '../db/schema.js';
import { badRequest, notFound } from '../errors.js';
import { ACTION_TEXT, DETAIL_TEXT } from '../message-fields.js';
import { apiTime, atLeast, authorize, contextOf, isAdmin, now, type VolumeService } from '../volume.js';
import { nextLink, paginationOf, queryOf, sortOf, versionNotSupported } from './catalog-input.js';

/**
 * User messages (3.3 `/messages`): why an asynchronous operation failed,
 * in Cinder's codes and words (`event_id` `VOLUME_<resource>_<action>_<detail>`,
 * `user_message` `<action>:<detail>`). A project sees its own; an
 * administrator sees all. Expired messages (`guaranteed_until` passed) are
 * gone.
 */

/** Cinder's `translate_action` and `translate_detail`, joined as its API joins them. */
export function messageText(actionId: string, detailId: string): string {
  return `${ACTION_TEXT[actionId] ?? 'unknown action'}:${DETAIL_TEXT[detailId] ?? DETAIL_TEXT['001'] ?? 'An unknown error occurred.'}`;
}

function view(volume: VolumeService, req: FastifyRequest, m: MessageRow): Record<string, unknown> {
  const project = req.ctx.projectId;
  const prefix = project ? `${project}/` : '';
  const out: Record<string, unknown> = {
    id: m.id,
    event_id: m.event_id,
    user_message: messageText(m.action_id, m.detail_id),
    message_level: m.message_level,
    created_at: apiTime(m.created_at),
    guaranteed_until: apiTime(m.expires_at),
    request_id: m.request_id,
    links: [
      { rel: 'self', href: `${volume.publicUrl}/v3/${prefix}messages/${m.id}` },
      { rel: 'bookmark', href: `${volume.publicUrl}/${prefix}messages/${m.id}` },
    ],
  };
  if (m.resource_type) out.resource_type = m.resource_type;
  if (m.resource_uuid) out.resource_uuid = m.resource_uuid;
  return out;
}

function needs33(req: FastifyRequest): void {
  if (!atLeast(req, '3.3')) throw versionNotSupported(req);
}

/** The message `id` as the caller may see it (404 otherwise, and when expired). */
async function getMessage(volume: VolumeService, req: FastifyRequest, id: string): Promise<MessageRow> {
  const ctx = contextOf(req);
  let query = volume.db.selectFrom('message').selectAll().where('id', '=', id).where('expires_at', '>', now());
  if (!isAdmin(volume, ctx)) query = query.where('project_id', '=', ctx.projectId ?? '');
  const row = await query.executeTakeFirst();
  if (!row) throw notFound(`Message ${id} could not be found.`);
  return row;
}

const COLUMNS = ['id', 'project_id', 'request_id', 'resource_type', 'resource_uuid', 'event_id', 'message_level', 'created_at', 'expires_at'] as const;
const USER_FILTERS = ['resource_uuid', 'resource_type', 'event_id', 'request_id', 'message_level'];

async function list(volume: VolumeService, req: FastifyRequest): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(volume, ctx, 'message:get_all');
  const query = queryOf(req);
  const paged = atLeast(req, '3.5');
  const filters: Record<string, string> = paged ? { ...query } : {};
  for (const key of ['limit', 'marker', 'offset', 'sort', 'sort_key', 'sort_dir']) delete filters[key];
  const admin = isAdmin(volume, ctx);
  if (atLeast(req, '3.31') && !admin) {
    delete filters.all_tenants;
    const like = atLeast(req, '3.34');
    const invalid = Object.keys(filters).filter((k) => !USER_FILTERS.includes(k) && !(like && k.endsWith('~') && USER_FILTERS.includes(k.slice(0, -1))));
    if (invalid.length > 0) throw badRequest(`Invalid filters ${invalid.join(',')} are found in query options.`);
  }
  let rows = await (() => {
    let q = volume.db.selectFrom('message').selectAll().where('expires_at', '>', now());
    if (!admin) q = q.where('project_id', '=', ctx.projectId ?? '');
    return q.execute();
  })();
  for (const [rawKey, value] of Object.entries(filters)) {
    const like = rawKey.endsWith('~');
    const key = like ? rawKey.slice(0, -1) : rawKey;
    const column = COLUMNS.find((c) => c === key);
    if (!column) return { messages: [] };
    rows = rows.filter((r) => {
      const v = r[column];
      return like ? v !== null && String(v).includes(value) : v === value;
    });
  }
  const sort = paged ? sortOf(query) : [{ key: 'created_at', dir: 'desc' as const }];
  for (const { key } of sort) if (!(COLUMNS as readonly string[]).includes(key)) throw badRequest('Invalid input received: Invalid sort key');
  const keys = [...sort, { key: 'id', dir: sort[sort.length - 1]?.dir ?? 'desc' }];
  rows.sort((a, b) => {
    for (const { key, dir } of keys) {
      const x = String((a as unknown as Record<string, unknown>)[key] ?? '');
      const y = String((b as unknown as Record<string, unknown>)[key] ?? '');
      if (x !== y) return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    }
    return 0;
  });
  let pageSize = volume.config.volume.max_limit;
  let limited = false;
  if (paged) {
    const { limit, marker, offset } = paginationOf(volume, query);
    if (marker !== undefined) {
      const at = rows.findIndex((r) => r.id === marker);
      if (at < 0) throw notFound(`Marker ${marker} could not be found.`);
      rows = rows.slice(at + 1);
    }
    rows = rows.slice(offset);
    if (limit !== undefined) {
      pageSize = limit;
      limited = true;
    }
  }
  rows = rows.slice(0, pageSize);
  const body: Record<string, unknown> = { messages: rows.map((m) => view(volume, req, m)) };
  const last = rows[rows.length - 1];
  if (last && limited && rows.length === pageSize) body.messages_links = [nextLink(volume, req, 'messages', last.id)];
  return body;
}

async function remove(volume: VolumeService, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): Promise<unknown> {
  needs33(req);
  const message = await getMessage(volume, req, req.params.id);
  authorize(volume, contextOf(req), 'message:delete', { project_id: message.project_id });
  await volume.db.deleteFrom('message').where('id', '=', message.id).execute();
  return reply.code(204).send();
}

/** Registers `/messages`. */
export function registerMessages(app: FastifyInstance, volume: VolumeService): void {
  app.get('/v3/messages', async (req) => {
    needs33(req);
    // Expired messages go as Cinder's periodic cleanup removes them.
    await volume.db.deleteFrom('message').where('expires_at', '<=', now()).execute();
    return list(volume, req);
  });
  app.get<{ Params: { id: string } }>('/v3/messages/:id', async (req) => {
    needs33(req);
    const message = await getMessage(volume, req, req.params.id);
    authorize(volume, contextOf(req), 'message:get', { project_id: message.project_id });
    return { message: view(volume, req, message) };
  });
  app.delete<{ Params: { id: string } }>('/v3/messages/:id', async (req, reply) => remove(volume, req, reply));
}
