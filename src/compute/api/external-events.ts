import type { FastifyInstance } from 'fastify';
import { authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest } from '../errors.js';
import { recordAction } from '../instances.js';
import { AgentRpc, type ExternalEvent } from '../rpc.js';
import { isObject } from './nova-input.js';

/** Events that name what they are about in `tag` (a volume id, a power state, an accelerator request). */
const TAG_REQUIRED = ['volume-extended', 'power-update', 'accelerator-request-bound'];
const NAMES = ['network-changed', 'network-vif-plugged', 'network-vif-unplugged', 'network-vif-deleted', 'volume-extended', 'power-update', 'accelerator-request-bound', 'volume-reimaged'];

/**
 * `POST /os-server-external-events` (other services tell compute what
 * happened to a server's port or volume): each event goes to the agent of
 * the server's host. Per event `code` 200 (sent), 404 (no such server),
 * 422 (the server has no host yet); the reply is 200 when all were sent,
 * 207 when some were, 404 when none was.
 */
export function registerExternalEvents(app: FastifyInstance, compute: ComputeService): void {
  app.post('/v2.1/os-server-external-events', async (req, reply) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-server-external-events:create', {});
    const body = req.body;
    if (!isObject(body) || !Array.isArray(body.events) || body.events.length === 0) throw badRequest("Invalid input for field/attribute events. Value: None. 'events' is a required property");
    const events: (ExternalEvent & { code?: number })[] = [];
    for (const e of body.events) {
      if (!isObject(e) || typeof e.server_uuid !== 'string' || typeof e.name !== 'string' || !NAMES.includes(e.name)) throw badRequest(`Invalid input for field/attribute events. Value: ${JSON.stringify(e)}.`);
      const status = e.status === undefined ? 'completed' : e.status;
      if (status !== 'completed' && status !== 'failed' && status !== 'in-progress') throw badRequest(`Invalid input for field/attribute status. Value: ${String(status)}.`);
      events.push({ name: e.name, server_uuid: e.server_uuid, status, ...(typeof e.tag === 'string' ? { tag: e.tag } : {}) });
    }
    const uuids = [...new Set(events.map((e) => e.server_uuid))];
    const rows = await compute.db.selectFrom('instance').select(['uuid', 'host', 'project_id']).where('uuid', 'in', uuids).where('deleted', '=', 0).execute();
    const projects = new Map(rows.map((r) => [r.uuid, r.project_id]));
    const hosts = new Map(rows.map((r) => [r.uuid, r.host]));
    const byHost = new Map<string, ExternalEvent[]>();
    for (const e of events) {
      if (!hosts.has(e.server_uuid)) e.code = 404;
      else if (TAG_REQUIRED.includes(e.name) && e.tag === undefined) e.code = 400;
      else if (!hosts.get(e.server_uuid)) e.code = 422;
      else {
        e.code = 200;
        const host = hosts.get(e.server_uuid) ?? '';
        // A volume's extend is the user's operation: an `extend_volume` action (whose `compute_extend_volume` event the host records) lets them follow it, as in Nova.
        const actionId =
          e.name === 'volume-extended' ? await recordAction(compute.db, { uuid: e.server_uuid, project_id: projects.get(e.server_uuid) ?? '' }, 'extend_volume', { requestId: req.globalRequestId ?? req.requestId, userId: ctx.userId, projectId: projects.get(e.server_uuid) ?? null }) : undefined;
        byHost.set(host, [...(byHost.get(host) ?? []), { name: e.name, server_uuid: e.server_uuid, status: e.status, ...(e.tag ? { tag: e.tag } : {}), ...(actionId ? { action_id: actionId } : {}) }]);
      }
    }
    const agents = new AgentRpc(compute.bus);
    for (const [host, list] of byHost) await agents.externalEvents(host, list);
    const sent = events.filter((e) => e.code === 200).length;
    const status = sent === events.length ? 200 : sent === 0 ? 404 : 207;
    return reply.code(status).send({ events });
  });
}
