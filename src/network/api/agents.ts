import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { hostingAgents, notifyAgent } from '../agent-scheduler.js';
import { agentView, findAgent } from '../agent-store.js';
import { AGENT_TOPICS, AGENT_TYPES } from '../agents/interfaces.js';
import { bool, isRecord, nullableStr, readBody, uuid } from '../common.js';
import type { AgentRow } from '../db/schema.js';
import { badRequest, conflict, NeutronError, notFound } from '../errors.js';
import { listResponse, parseListQuery, selectFields, showFields, type ListSpec } from '../lists.js';
import { allowed, authorize, type NetworkService } from '../network.js';
import { findNetwork } from '../networks.js';
import { routerViews } from '../routers.js';
import { networkViews } from './networks.js';

/**
 * Agents (`agent`), and which agents host which networks and routers
 * (`dhcp_agent_scheduler`, `l3_agent_scheduler`). Agents appear by
 * heartbeat (see agent-rpc.ts); here admins list, show, enable, describe
 * and delete them, and move networks and routers between them.
 */

const SPEC: ListSpec = {
  collection: 'agents',
  resource: 'agent',
  attributes: ['id', 'agent_type', 'binary', 'topic', 'host', 'admin_state_up', 'alive', 'description', 'availability_zone', 'created_at', 'started_at', 'heartbeat_timestamp', 'resources_synced'],
};

const UPDATE_ATTRS = {
  admin_state_up: { put: true, convert: bool },
  description: { put: true, convert: (v: unknown, n: string) => nullableStr(v, n, 255) },
};

/** Neutron hides what the caller may not read behind a plain 404. */
function hidden(): NeutronError {
  return new NeutronError(404, 'HTTPNotFound', 'The resource could not be found.');
}

/** Checks `action` on an agent: 404 when the caller may not even see it, else Neutron's 403. */
function authorizeOnAgent(net: NetworkService, ctx: RequestContext, action: string, row: AgentRow, attributes: string[] = []): void {
  const target = { id: row.id, agent_type: row.agent_type, host: row.host };
  if (!allowed(net, ctx, 'get_agent', target) && !allowed(net, ctx, action, target)) throw hidden();
  authorize(net, ctx, action, target, attributes);
}

/** The topic an agent listens on for the server (none for agents that report `N/A`, but the bridge agent). */
function listeningTopic(row: AgentRow): string | null {
  if (row.topic !== AGENT_TOPICS.none) return row.topic;
  return row.agent_type === AGENT_TYPES.bridge ? AGENT_TOPICS.bridgeNotifier : null;
}

/** `{"<key>": "<uuid>"}` of a scheduler POST. */
function readId(body: unknown, key: string): string {
  if (!isRecord(body)) throw badRequest('Resource body required');
  if (body[key] === undefined) throw badRequest(`Failed to parse request. Required attribute '${key}' not specified`);
  return uuid(body[key], key);
}

export function registerAgents(app: FastifyInstance, net: NetworkService): void {
  const views = (rows: AgentRow[]): Record<string, unknown>[] => {
    const now = Date.now();
    return rows.map((row) => agentView(net, row, now));
  };

  app.get('/v2.0/agents', async (req) => {
    const query = parseListQuery(req, SPEC, net.config.network.pagination_max_limit);
    // Agents are admin-only: others get an empty list, as Neutron answers.
    const rows = (await net.db.selectFrom('agent').selectAll().execute()).filter((row) => allowed(net, req.ctx, 'get_agent', { id: row.id, agent_type: row.agent_type, host: row.host }));
    return listResponse(req, SPEC, views(rows), query);
  });

  app.get<{ Params: { id: string } }>('/v2.0/agents/:id', async (req) => {
    const row = await findAgent(net.db, req.params.id);
    if (!allowed(net, req.ctx, 'get_agent', { id: row.id, agent_type: row.agent_type, host: row.host })) throw hidden();
    return { agent: selectFields(agentView(net, row), showFields(req)) };
  });

  app.put<{ Params: { id: string } }>('/v2.0/agents/:id', async (req) => {
    const changes = readBody(req.body, 'agent', UPDATE_ATTRS, 'update');
    const row = await findAgent(net.db, req.params.id);
    authorizeOnAgent(net, req.ctx, 'update_agent', row, Object.keys(changes));
    const set: Partial<AgentRow> = {};
    if (changes.admin_state_up !== undefined) set.admin_state_up = changes.admin_state_up ? 1 : 0;
    if (changes.description !== undefined) set.description = (changes.description as string | null) ?? '';
    if (Object.keys(set).length > 0) await net.db.updateTable('agent').set(set).where('id', '=', row.id).execute();
    const updated = { ...row, ...set };
    const view = agentView(net, updated);
    net.notify('agent.update.end', { agent: view }, req.ctx);
    const topic = listeningTopic(updated);
    if (topic && updated.admin_state_up !== row.admin_state_up) notifyAgent(net, topic, updated.host, 'agent_updated', { admin_state_up: updated.admin_state_up === 1 });
    return { agent: view };
  });

  app.delete<{ Params: { id: string } }>('/v2.0/agents/:id', async (req, reply) => {
    const row = await findAgent(net.db, req.params.id);
    authorizeOnAgent(net, req.ctx, 'delete_agent', row);
    // Its network and router bindings go with it (foreign keys cascade).
    await net.db.deleteFrom('agent').where('id', '=', row.id).execute();
    net.notify('agent.delete.end', { agent_id: row.id, agent: agentView(net, row) }, req.ctx);
    return reply.code(204).send();
  });

  registerDhcpScheduling(app, net, views);
  registerL3Scheduling(app, net, views);
}

function registerDhcpScheduling(app: FastifyInstance, net: NetworkService, views: (rows: AgentRow[]) => Record<string, unknown>[]): void {
  app.get<{ Params: { id: string } }>('/v2.0/agents/:id/dhcp-networks', async (req) => {
    authorize(net, req.ctx, 'get_dhcp_networks', {});
    const agent = await findAgent(net.db, req.params.id);
    const rows = await net.db.selectFrom('network_dhcp_agent').innerJoin('network', 'network.id', 'network_dhcp_agent.network_id').selectAll('network').where('network_dhcp_agent.agent_id', '=', agent.id).orderBy('network.id').execute();
    return { networks: await networkViews(net, rows) };
  });

  app.post<{ Params: { id: string } }>('/v2.0/agents/:id/dhcp-networks', async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
    authorize(net, req.ctx, 'create_dhcp_network', {});
    const networkId = readId(req.body, 'network_id');
    if (!(await findNetwork(net.db, networkId))) throw notFound('network', networkId);
    const agent = await findAgent(net.db, req.params.id);
    if (agent.agent_type !== AGENT_TYPES.dhcp || agent.admin_state_up !== 1) throw new NeutronError(404, 'InvalidDHCPAgent', `Agent ${agent.id} is not a valid DHCP Agent or has been disabled.`);
    const hosted = () => conflict('NetworkHostedByDHCPAgent', `The network ${networkId} has been already hosted by the DHCP Agent ${agent.id}.`);
    const existing = await net.db.selectFrom('network_dhcp_agent').select('agent_id').where('network_id', '=', networkId).where('agent_id', '=', agent.id).executeTakeFirst();
    if (existing) throw hosted();
    try {
      await net.db.insertInto('network_dhcp_agent').values({ network_id: networkId, agent_id: agent.id }).execute();
    } catch (err) {
      if (await net.db.selectFrom('network_dhcp_agent').select('agent_id').where('network_id', '=', networkId).where('agent_id', '=', agent.id).executeTakeFirst()) throw hosted();
      if (!(await findNetwork(net.db, networkId))) throw notFound('network', networkId);
      throw err;
    }
    notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_create_end', { network: { id: networkId } });
    net.notify('dhcp_agent.network.add', { agent: { id: agent.id, network_id: networkId } }, req.ctx);
    return reply.code(201).send();
  });

  app.delete<{ Params: { id: string; networkId: string } }>('/v2.0/agents/:id/dhcp-networks/:networkId', async (req, reply) => {
    authorize(net, req.ctx, 'delete_dhcp_network', {});
    const agent = await findAgent(net.db, req.params.id);
    const networkId = req.params.networkId;
    const result = await net.db.deleteFrom('network_dhcp_agent').where('network_id', '=', networkId).where('agent_id', '=', agent.id).executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) throw conflict('NetworkNotHostedByDhcpAgent', `The network ${networkId} is not hosted by the DHCP Agent ${agent.id}.`);
    notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_delete_end', { network_id: networkId });
    net.notify('dhcp_agent.network.remove', { agent: { id: agent.id, network_id: networkId } }, req.ctx);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v2.0/networks/:id/dhcp-agents', async (req) => {
    authorize(net, req.ctx, 'get_dhcp_agents_hosting_networks', {});
    return { agents: views(await hostingAgents(net, 'dhcp', req.params.id)) };
  });
}

function registerL3Scheduling(app: FastifyInstance, net: NetworkService, views: (rows: AgentRow[]) => Record<string, unknown>[]): void {
  app.get<{ Params: { id: string } }>('/v2.0/agents/:id/l3-routers', async (req) => {
    authorize(net, req.ctx, 'get_l3_routers', {});
    const agent = await findAgent(net.db, req.params.id);
    const rows = await net.db.selectFrom('router_l3_agent').innerJoin('router', 'router.id', 'router_l3_agent.router_id').selectAll('router').where('router_l3_agent.agent_id', '=', agent.id).orderBy('router.id').execute();
    return { routers: await routerViews(net, req.ctx, rows) };
  });

  app.post<{ Params: { id: string } }>('/v2.0/agents/:id/l3-routers', async (req, reply) => {
    authorize(net, req.ctx, 'create_l3_router', {});
    const routerId = readId(req.body, 'router_id');
    const router = await net.db.selectFrom('router').select('id').where('id', '=', routerId).executeTakeFirst();
    if (!router) throw notFound('router', routerId);
    const agent = await findAgent(net.db, req.params.id);
    if (agent.agent_type !== AGENT_TYPES.l3 || agent.admin_state_up !== 1) throw new NeutronError(404, 'InvalidL3Agent', `Agent ${agent.id} is not a L3 Agent or has been disabled`);
    const bindings = await net.db.selectFrom('router_l3_agent').select('agent_id').where('router_id', '=', routerId).execute();
    // Already there: nothing to do. Elsewhere: a (non-HA) router has one agent.
    if (bindings.some((b) => b.agent_id === agent.id)) return reply.code(201).send();
    const other = bindings[0];
    const hostedElsewhere = (agentId: string) => conflict('RouterHostedByL3Agent', `The router ${routerId} has been already hosted by the L3 Agent ${agentId}.`);
    if (other) throw hostedElsewhere(other.agent_id);
    try {
      await net.db.insertInto('router_l3_agent').values({ router_id: routerId, agent_id: agent.id }).execute();
    } catch (err) {
      const winner = await net.db.selectFrom('router_l3_agent').select('agent_id').where('router_id', '=', routerId).executeTakeFirst();
      if (winner && winner.agent_id === agent.id) return reply.code(201).send();
      if (winner) throw hostedElsewhere(winner.agent_id);
      throw new NeutronError(409, 'RouterSchedulingFailed', `Failed scheduling router ${routerId} to the L3 Agent ${agent.id}.`);
    }
    notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'router_added_to_agent', { router_ids: [routerId] });
    net.notify('l3_agent.router.add', { agent: { id: agent.id, router_id: routerId } }, req.ctx);
    return reply.code(201).send();
  });

  app.delete<{ Params: { id: string; routerId: string } }>('/v2.0/agents/:id/l3-routers/:routerId', async (req, reply) => {
    authorize(net, req.ctx, 'delete_l3_router', {});
    const agent = await findAgent(net.db, req.params.id);
    const routerId = req.params.routerId;
    await net.db.deleteFrom('router_l3_agent').where('router_id', '=', routerId).where('agent_id', '=', agent.id).execute();
    const router = await net.db.selectFrom('router').select('id').where('id', '=', routerId).executeTakeFirst();
    if (!router) throw notFound('router', routerId);
    // No agent routes for it now: its floating IPs answer nothing until an agent hosts it again and says so.
    const hosted = await net.db.selectFrom('router_l3_agent').select('agent_id').where('router_id', '=', routerId).executeTakeFirst();
    if (!hosted) await net.db.updateTable('floatingip').set({ status: 'DOWN' }).where('router_id', '=', routerId).where('fixed_port_id', 'is not', null).execute();
    notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'router_removed_from_agent', { router_id: routerId });
    net.notify('l3_agent.router.remove', { agent: { id: agent.id, router_id: routerId } }, req.ctx);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v2.0/routers/:id/l3-agents', async (req) => {
    authorize(net, req.ctx, 'get_l3_agents_hosting_routers', {});
    return { agents: views(await hostingAgents(net, 'l3', req.params.id)) };
  });
}
