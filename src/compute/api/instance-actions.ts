import type { FastifyInstance, FastifyRequest } from 'fastify';
import { allowed, atLeast, contextOf, type ComputeService } from '../compute.js';
import { apiTimeNoZone } from '../common.js';
import type { InstanceActionEventRow, InstanceActionRow, InstanceRow } from '../db/schema.js';
import { notFound } from '../errors.js';
import { actionEvents, findAction, hostIdFor, listActions, type ActionQuery } from '../instance-actions.js';
import { loadInstanceFor } from '../instances.js';
import { changesWindow, nextLinks, nonNegativeInteger, pageLimit, queryOf, rejectUnknownQuery, singleValue } from './nova-input.js';

/**
 * `/servers/{id}/os-instance-actions`: the actions recorded on a server,
 * newest first (paged with `limit`/`marker` and filtered by `changes-since`
 * from 2.58, `changes-before` from 2.66), and one action with its events.
 * A deleted server's actions can be read from 2.21.
 *
 * Events: before 2.51 only admins see them (with tracebacks); from 2.51
 * everyone who may see the action does, tracebacks still admin-only; 2.62
 * adds `hostId` for all and `host` for admins; 2.84 adds `details` for
 * those the `events:details` rule allows.
 */

function actionView(req: FastifyRequest, row: InstanceActionRow): Record<string, unknown> {
  const view: Record<string, unknown> = {
    action: row.action,
    instance_uuid: row.instance_uuid,
    request_id: row.request_id,
    user_id: row.user_id,
    project_id: row.project_id,
    start_time: apiTimeNoZone(row.start_time),
    message: row.message,
  };
  if (atLeast(req, '2.58')) view.updated_at = apiTimeNoZone(row.updated_at);
  return view;
}

interface EventVisibility {
  traceback: boolean;
  host: boolean;
  hostId: boolean;
  details: boolean;
}

function eventView(row: InstanceActionEventRow, projectId: string, show: EventVisibility): Record<string, unknown> {
  const view: Record<string, unknown> = {
    event: row.event,
    start_time: apiTimeNoZone(row.start_time),
    finish_time: apiTimeNoZone(row.finish_time),
    result: row.result,
  };
  if (show.traceback) view.traceback = row.traceback;
  if (show.host) view.host = row.host ?? '';
  if (show.hostId) view.hostId = hostIdFor(row.host, projectId);
  if (show.details) view.details = row.details;
  return view;
}

/** Reads the 2.58+ list parameters (strict: unknown ones are 400). */
function readListQuery(compute: ComputeService, req: FastifyRequest): ActionQuery {
  if (!atLeast(req, '2.58')) return {};
  const query = queryOf(req);
  const v266 = atLeast(req, '2.66');
  rejectUnknownQuery(query, ['limit', 'marker', 'changes-since', ...(v266 ? ['changes-before'] : [])]);
  const limitText = singleValue(query, 'limit');
  const marker = singleValue(query, 'marker');
  const window = changesWindow(query, { since: true, before: v266 });
  return {
    limit: pageLimit(compute, limitText === undefined ? undefined : nonNegativeInteger('limit', limitText)),
    ...(marker === undefined ? {} : { marker }),
    ...window,
  };
}

type ServerParams = { Params: { server_id: string } };
type ActionParams = { Params: { server_id: string; request_id: string } };

async function loadServer(compute: ComputeService, req: FastifyRequest<ServerParams | ActionParams>, rule: string): Promise<InstanceRow> {
  return loadInstanceFor(compute, contextOf(req), req.params.server_id, `os-instance-actions:${rule}`, { deleted: atLeast(req, '2.21') });
}

/** Registers the `/servers/{id}/os-instance-actions` routes. */
export function registerInstanceActions(app: FastifyInstance, compute: ComputeService): void {
  app.get<ServerParams>('/v2.1/servers/:server_id/os-instance-actions', async (req) => {
    const query = readListQuery(compute, req);
    const server = await loadServer(compute, req, 'list');
    const rows = await listActions(compute.db, server.uuid, query);
    const body: Record<string, unknown> = { instanceActions: rows.map((row) => actionView(req, row)) };
    if (atLeast(req, '2.58')) {
      const links = nextLinks(compute, req, `servers/${req.params.server_id}/os-instance-actions`, rows.length, rows.at(-1)?.request_id);
      if (links.length > 0) body.links = links;
    }
    return body;
  });

  app.get<ActionParams>('/v2.1/servers/:server_id/os-instance-actions/:request_id', async (req) => {
    const ctx = contextOf(req);
    const server = await loadServer(compute, req, 'show');
    const action = await findAction(compute.db, server.uuid, req.params.request_id);
    if (!action) throw notFound(`Action ${req.params.request_id} not found`);
    const view = actionView(req, action);
    const target = { project_id: server.project_id };
    const seesAll = allowed(compute, ctx, 'os-instance-actions:events', target);
    if (seesAll || atLeast(req, '2.51')) {
      const show: EventVisibility = {
        traceback: seesAll,
        host: seesAll && atLeast(req, '2.62'),
        hostId: atLeast(req, '2.62'),
        details: atLeast(req, '2.84') && allowed(compute, ctx, 'os-instance-actions:events:details', target),
      };
      const events = await actionEvents(compute.db, action.id);
      view.events = events.map((event) => eventView(event, action.project_id || server.project_id, show));
    }
    return { instanceAction: view };
  });
}
