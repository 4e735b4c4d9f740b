import type { Kysely } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { authorize, isAdmin, type ComputeService } from './compute.js';
import { isoNow, newUuid } from './common.js';
import type { ComputeSchema, InstanceRow } from './db/schema.js';
import { invalidState, serverNotFound } from './errors.js';
import { actionBlockedBy, type ServerAction } from './vm-states.js';

/**
 * Loads a server the caller may see and checks `rule` on it: another
 * project's server is 404 for a non-admin (never 403), as Nova answers; a
 * deleted server is 404 unless `deleted` is asked for.
 */
export async function loadInstanceFor(compute: ComputeService, ctx: RequestContext, uuid: string, rule: string, options: { deleted?: boolean; db?: Kysely<ComputeSchema> } = {}): Promise<InstanceRow> {
  const row = await (options.db ?? compute.db).selectFrom('instance').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!row || (row.deleted && !options.deleted)) throw serverNotFound(uuid);
  if (row.project_id !== ctx.projectId && !isAdmin(compute, ctx)) throw serverNotFound(uuid);
  authorize(compute, ctx, rule, { project_id: row.project_id, user_id: row.user_id });
  return row;
}

/** Throws Nova's 409 `Cannot '<action>' instance <id> while it is in vm_state X` when the state forbids `action`. */
export function checkActionState(instance: InstanceRow, action: ServerAction): void {
  const blocked = actionBlockedBy(action, instance.vm_state, instance.task_state);
  if (blocked) throw invalidState(blocked, blocked === 'vm_state' ? instance.vm_state : instance.task_state, action, instance.uuid);
}

/**
 * Records the start of an instance action (`os-instance-actions`): one row
 * per request; returns its id for the events the roles add.
 */
export async function recordAction(db: Kysely<ComputeSchema>, instance: Pick<InstanceRow, 'uuid' | 'project_id'>, action: string, ctx: { requestId: string; userId: string; projectId: string | null }): Promise<string> {
  const id = newUuid();
  const now = isoNow();
  await db
    .insertInto('instance_action')
    .values({ id, request_id: ctx.requestId, instance_uuid: instance.uuid, action, project_id: ctx.projectId ?? instance.project_id, user_id: ctx.userId, message: null, start_time: now, updated_at: now })
    .execute();
  return id;
}

/** Starts an event of an action (`compute_reboot_instance`, ...); returns its id. */
export async function startActionEvent(db: Kysely<ComputeSchema>, actionId: string, event: string, host: string | null): Promise<string> {
  const id = newUuid();
  await db.insertInto('instance_action_event').values({ id, action_id: actionId, event, start_time: isoNow(), finish_time: null, result: null, traceback: null, host, details: null }).execute();
  return id;
}

/** Ends an event: `Success`, or `Error` with the traceback and details; an error also marks the action's message `Error`. */
export async function finishActionEvent(db: Kysely<ComputeSchema>, eventId: string, error?: { message: string; traceback?: string }): Promise<void> {
  const now = isoNow();
  await db
    .updateTable('instance_action_event')
    .set({ finish_time: now, result: error ? 'Error' : 'Success', traceback: error?.traceback ?? null, details: error?.message ?? null })
    .where('id', '=', eventId)
    .execute();
  const event = await db.selectFrom('instance_action_event').select('action_id').where('id', '=', eventId).executeTakeFirst();
  if (event) await db.updateTable('instance_action').set({ updated_at: now, ...(error ? { message: 'Error' } : {}) }).where('id', '=', event.action_id).execute();
}
