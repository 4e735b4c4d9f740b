import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ComputeSchema, InstanceActionEventRow, InstanceActionRow } from './db/schema.js';
import { badRequest, type ComputeError } from './errors.js';

/**
 * Reading a server's recorded actions (`os-instance-actions`): one per
 * request that changed the server, each with the events the roles that
 * carried it out recorded (see `recordAction` in instances.ts). Newest first.
 */

type Db = Kysely<ComputeSchema>;

/** What a page of actions asks: at most `limit`, after the action of request `marker`, updated within the window. */
export interface ActionQuery {
  limit?: number;
  marker?: string;
  /** Only actions updated at or after this time (ISO 8601, as stored). */
  since?: string;
  /** Only actions updated at or before this time. */
  before?: string;
}

/** Nova's 400 for a `marker` that names nothing in the list. */
export function markerNotFound(marker: string): ComputeError {
  return badRequest(`Marker ${marker} could not be found.`);
}

/** The action a request recorded on a server (the newest, if it recorded several); undefined when none. */
export async function findAction(db: Db, instanceUuid: string, requestId: string): Promise<InstanceActionRow | undefined> {
  return db
    .selectFrom('instance_action')
    .selectAll()
    .where('instance_uuid', '=', instanceUuid)
    .where('request_id', '=', requestId)
    .orderBy('start_time', 'desc')
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

/** A server's actions, newest first, filtered and paged as `query` says; 400 when the marker is not one of them. */
export async function listActions(db: Db, instanceUuid: string, query: ActionQuery = {}): Promise<InstanceActionRow[]> {
  if (query.limit === 0) return [];
  let select = db.selectFrom('instance_action').selectAll().where('instance_uuid', '=', instanceUuid);
  if (query.since !== undefined) select = select.where('updated_at', '>=', query.since);
  if (query.before !== undefined) select = select.where('updated_at', '<=', query.before);
  if (query.marker !== undefined) {
    const marker = await findAction(db, instanceUuid, query.marker);
    if (!marker) throw markerNotFound(query.marker);
    select = select.where((eb) => eb.or([eb('start_time', '<', marker.start_time), eb.and([eb('start_time', '=', marker.start_time), eb('id', '<', marker.id)])]));
  }
  select = select.orderBy('start_time', 'desc').orderBy('id', 'desc');
  if (query.limit !== undefined) select = select.limit(query.limit);
  return select.execute();
}

/** The events of an action, newest first. */
export async function actionEvents(db: Db, actionId: string): Promise<InstanceActionEventRow[]> {
  return db.selectFrom('instance_action_event').selectAll().where('action_id', '=', actionId).orderBy('start_time', 'desc').orderBy('id', 'desc').execute();
}

/**
 * Nova's `hostId`: a host name hashed with the project (SHA-224), so that a
 * project can tell its servers' hosts apart without learning their names;
 * '' when there is no host.
 */
export function hostIdFor(host: string | null, projectId: string): string {
  if (!host) return '';
  return createHash('sha224').update(`${projectId}${host}`).digest('hex');
}
