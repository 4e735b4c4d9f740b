import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { isAdmin, type ComputeService } from '../compute.js';
import { isoNow } from '../common.js';
import type { InstanceRow } from '../db/schema.js';
import { conflict } from '../errors.js';
import { checkActionState, recordAction } from '../instances.js';
import type { ComputePlacement } from '../placement.js';
import { AgentRpc, type AgentAction } from '../rpc.js';
import type { ServerAction, TaskState } from '../vm-states.js';

/** What a server action answers. */
export interface ActionResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One action of `POST /servers/{id}/action`, given the loaded server and the action's member of the body. */
export type ActionHandler = (compute: ComputeService, placement: ComputePlacement, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, arg: unknown) => Promise<ActionResult>;

/** Nova's 409 `Instance <id> is locked` for a non-admin acting on a locked server. */
export function checkLock(compute: ComputeService, ctx: RequestContext, instance: InstanceRow): void {
  if (instance.locked && !isAdmin(compute, ctx)) throw conflict(`Instance ${instance.uuid} is locked`);
}

/**
 * Moves a server into a task state, but only from the vm and task states the
 * action allows, in one conditional update: a concurrent action that got
 * there first makes this one a 409, never a lost update.
 */
export async function beginTask(compute: ComputeService, ctx: RequestContext, instance: InstanceRow, action: ServerAction, task: TaskState, extra: Partial<InstanceRow> = {}): Promise<void> {
  if (action !== 'delete') checkLock(compute, ctx, instance);
  checkActionState(instance, action);
  const result = await compute.db
    .updateTable('instance')
    .set({ task_state: task, updated_at: isoNow(), ...extra })
    .where('uuid', '=', instance.uuid)
    .where('vm_state', '=', instance.vm_state)
    .where((eb) => (instance.task_state === null ? eb('task_state', 'is', null) : eb('task_state', '=', instance.task_state)))
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw conflict(`Cannot '${action}' instance ${instance.uuid} while it is in task_state ${instance.task_state ?? 'None'}`);
}

/** Puts a server's task state back after its action could not be sent (the request fails, nothing else changed). */
export async function endTask(compute: ComputeService, instance: InstanceRow, task: TaskState): Promise<void> {
  await compute.db.updateTable('instance').set({ task_state: null, updated_at: isoNow() }).where('uuid', '=', instance.uuid).where('task_state', '=', task).execute();
}

/** Records the action of this request (`os-instance-actions`) and returns its id. */
export function recordFor(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, name: string): Promise<string> {
  return recordAction(compute.db, instance, name, { requestId: req.requestId, userId: ctx.userId, projectId: ctx.projectId });
}

/** Records the action and sends it to an agent (the server's host unless `host` says otherwise). */
export async function toAgent(compute: ComputeService, req: FastifyRequest, ctx: RequestContext, instance: InstanceRow, name: string, action: AgentAction, host: string | null = instance.host): Promise<void> {
  if (!host) throw conflict(`Instance ${instance.uuid} is not ready: it has no host.`);
  const actionId = await recordFor(compute, req, ctx, instance, name);
  await new AgentRpc(compute.bus).runAction(host, { instance_uuid: instance.uuid, action, action_id: actionId });
}

/** Sets (string) or removes (null) keys of a server's system metadata. */
export async function setSystemMetadata(compute: ComputeService, uuid: string, values: Record<string, string | null>): Promise<void> {
  await compute.db.transaction().execute(async (trx) => {
    for (const [key, value] of Object.entries(values)) {
      await trx.deleteFrom('instance_system_metadata').where('instance_uuid', '=', uuid).where('key', '=', key).execute();
      if (value !== null) await trx.insertInto('instance_system_metadata').values({ instance_uuid: uuid, key, value }).execute();
    }
  });
}

/** A server's system metadata. */
export async function systemMetadata(compute: ComputeService, uuid: string): Promise<Record<string, string>> {
  const rows = await compute.db.selectFrom('instance_system_metadata').select(['key', 'value']).where('instance_uuid', '=', uuid).execute();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/** True when a host runs a compute service (has a hypervisor record). */
export async function computeHostExists(compute: ComputeService, host: string): Promise<boolean> {
  return (await compute.db.selectFrom('compute_node').select('uuid').where('host', '=', host).executeTakeFirst()) !== undefined;
}
