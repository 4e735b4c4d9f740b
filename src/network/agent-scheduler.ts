import { AGENT_TOPICS, AGENT_TYPES, type AgentNotifications } from './agents/interfaces.js';
import { isAlive } from './agent-store.js';
import type { AgentRow } from './db/schema.js';
import type { DriverCallbacks, NetworkDriver, NetworkInfo, PortBinding, PortInfo } from './drivers/driver.js';
import type { NetworkService } from './network.js';

/**
 * Which agent serves what: networks with DHCP-enabled subnets go to one DHCP
 * agent (`network_dhcp_agent`), routers to one L3 agent (`router_l3_agent`),
 * each to the alive, enabled agent of its type that hosts the fewest (as
 * Neutron's default schedulers, one agent per network and per router).
 * Agents are told over the bus; a failed notification is logged, never thrown.
 */

/** Networks are hosted by DHCP agents, routers by L3 agents. */
export type HostedKind = 'dhcp' | 'l3';

/** Casts a notification to one agent's topic (`<topic>.<host>`); failures are logged. */
export function notifyAgent<M extends keyof AgentNotifications>(net: NetworkService, topic: string, host: string, method: M, args: Parameters<AgentNotifications[M]>[0]): void {
  net.bus.cast({ topic, server: host }, method, args).catch((err: unknown) => net.log.warn({ err, topic, host, method }, 'could not notify an agent'));
}

/** Casts a notification to every agent serving `topic`; failures are logged. */
function notifyAll<M extends keyof AgentNotifications>(net: NetworkService, topic: string, method: M, args: Parameters<AgentNotifications[M]>[0]): void {
  net.bus.fanout(topic, method, args).catch((err: unknown) => net.log.warn({ err, topic, method }, 'could not notify agents'));
}

/** The agents hosting a network (`dhcp`) or a router (`l3`), by id. */
export async function hostingAgents(net: NetworkService, kind: HostedKind, id: string): Promise<AgentRow[]> {
  if (kind === 'dhcp') return net.db.selectFrom('network_dhcp_agent').innerJoin('agent', 'agent.id', 'network_dhcp_agent.agent_id').selectAll('agent').where('network_dhcp_agent.network_id', '=', id).orderBy('agent.id').execute();
  return net.db.selectFrom('router_l3_agent').innerJoin('agent', 'agent.id', 'router_l3_agent.agent_id').selectAll('agent').where('router_l3_agent.router_id', '=', id).orderBy('agent.id').execute();
}

/** The alive, enabled agent of the kind that hosts the fewest, or null when there is none. */
async function leastLoaded(net: NetworkService, kind: HostedKind): Promise<AgentRow | null> {
  const agentType = kind === 'dhcp' ? AGENT_TYPES.dhcp : AGENT_TYPES.l3;
  const agents = (await net.db.selectFrom('agent').selectAll().where('agent_type', '=', agentType).where('admin_state_up', '=', 1).execute()).filter((a) => isAlive(net, a.heartbeat_timestamp));
  if (agents.length === 0) return null;
  const loads = await net.db
    .selectFrom(kind === 'dhcp' ? 'network_dhcp_agent' : 'router_l3_agent')
    .select(['agent_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where(
      'agent_id',
      'in',
      agents.map((a) => a.id),
    )
    .groupBy('agent_id')
    .execute();
  const load = new Map(loads.map((l) => [l.agent_id, Number(l.n)]));
  return [...agents].sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0) || a.id.localeCompare(b.id))[0] ?? null;
}

/** The agents hosting a network or router after scheduling, and the one it was just scheduled to (null: it was hosted already, or could not be). */
interface Scheduled {
  agents: AgentRow[];
  added: AgentRow | null;
}

/**
 * Schedules a network (`dhcp`) or router (`l3`) no agent hosts, when `needsAgent`
 * says so, to the least loaded agent of its kind, and tells that agent
 * (`network_create_end`, `router_added_to_agent`). Idempotent; one that
 * vanished meanwhile is left alone.
 */
async function schedule(net: NetworkService, kind: HostedKind, id: string, needsAgent: () => Promise<boolean>): Promise<Scheduled> {
  const hosting = await hostingAgents(net, kind, id);
  if (hosting.length > 0 || !(await needsAgent())) return { agents: hosting, added: null };
  const agent = await leastLoaded(net, kind);
  if (!agent) return { agents: [], added: null };
  try {
    if (kind === 'dhcp') await net.db.insertInto('network_dhcp_agent').values({ network_id: id, agent_id: agent.id }).execute();
    else await net.db.insertInto('router_l3_agent').values({ router_id: id, agent_id: agent.id }).execute();
  } catch (err) {
    // Another request scheduled it first, or it was deleted meanwhile (foreign key).
    net.log.debug({ err, kind, id }, 'not scheduled to an agent');
    return { agents: await hostingAgents(net, kind, id), added: null };
  }
  if (kind === 'dhcp') notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_create_end', { network: { id } });
  else notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'router_added_to_agent', { router_ids: [id] });
  return { agents: [agent], added: agent };
}

/** Schedules a network that has a DHCP-enabled subnet and no DHCP agent yet (see {@link schedule}). */
function scheduleNetwork(net: NetworkService, networkId: string): Promise<Scheduled> {
  const hasDhcpSubnet = async (): Promise<boolean> => (await net.db.selectFrom('subnet').select('id').where('network_id', '=', networkId).where('enable_dhcp', '=', 1).executeTakeFirst()) !== undefined;
  return schedule(net, 'dhcp', networkId, hasDhcpSubnet);
}

/** Schedules a router that no L3 agent hosts yet (see {@link schedule}). */
function scheduleRouter(net: NetworkService, routerId: string): Promise<Scheduled> {
  const exists = async (): Promise<boolean> => (await net.db.selectFrom('router').select('id').where('id', '=', routerId).executeTakeFirst()) !== undefined;
  return schedule(net, 'l3', routerId, exists);
}

/**
 * Neutron's auto-scheduling, as an agent asks for its work: binds to `agent`
 * every network with a DHCP-enabled subnet (`dhcp`), or every router (`l3`),
 * that no agent hosts, in one statement; one that another request binds
 * meanwhile is skipped. The agent is not notified: its answer lists them.
 */
export async function scheduleUnhosted(net: NetworkService, kind: HostedKind, agent: AgentRow): Promise<void> {
  const insert =
    kind === 'dhcp'
      ? net.db
          .insertInto('network_dhcp_agent')
          .columns(['network_id', 'agent_id'])
          .expression((eb) =>
            eb
              .selectFrom('network')
              .select((sb) => ['network.id', sb.val(agent.id).as('agent_id')])
              .where(({ exists, selectFrom }) => exists(selectFrom('subnet').select('subnet.id').whereRef('subnet.network_id', '=', 'network.id').where('subnet.enable_dhcp', '=', 1)))
              .where(({ not, exists, selectFrom }) => not(exists(selectFrom('network_dhcp_agent').select('network_dhcp_agent.agent_id').whereRef('network_dhcp_agent.network_id', '=', 'network.id')))),
          )
      : net.db
          .insertInto('router_l3_agent')
          .columns(['router_id', 'agent_id'])
          .expression((eb) =>
            eb
              .selectFrom('router')
              .select((sb) => ['router.id', sb.val(agent.id).as('agent_id')])
              .where(({ not, exists, selectFrom }) => not(exists(selectFrom('router_l3_agent').select('router_l3_agent.agent_id').whereRef('router_l3_agent.router_id', '=', 'router.id')))),
          );
  await (net.dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.doNothing())).execute();
}

/**
 * Puts scheduling in front of a data plane: after a network, port or router
 * change (the API calls the driver once it committed) the network or router
 * is scheduled to an agent and its agents told, then the inner driver runs.
 * Scheduling failures are logged; the inner driver is called regardless.
 * A port change reads its network's DHCP agents (as Neutron's DHCP notifier
 * does, to know whom to tell); only a network no agent hosts costs more.
 */
export class SchedulingDriver implements NetworkDriver {
  readonly name: string;

  constructor(
    private readonly net: () => NetworkService,
    private readonly inner: NetworkDriver,
  ) {
    this.name = inner.name;
  }

  private async quietly(what: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.net().log.warn({ err }, `agent scheduling failed: ${what}`);
    }
  }

  start(callbacks: DriverCallbacks): Promise<void> {
    return this.inner.start(callbacks);
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  bindPort(port: PortInfo, network: NetworkInfo): Promise<PortBinding | null> {
    return this.inner.bindPort(port, network);
  }

  async portUpdated(port: PortInfo, network: NetworkInfo): Promise<void> {
    await this.quietly('network of a port', async () => {
      const net = this.net();
      for (const agent of (await scheduleNetwork(net, network.id)).agents) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'port_update_end', { port: { id: port.id, network_id: network.id } });
    });
    return this.inner.portUpdated(port, network);
  }

  async portDeleted(port: PortInfo): Promise<void> {
    await this.quietly('deleted port', async () => {
      const net = this.net();
      for (const agent of await hostingAgents(net, 'dhcp', port.network_id)) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'port_delete_end', { port_id: port.id, network_id: port.network_id });
    });
    return this.inner.portDeleted(port);
  }

  async networkUpdated(network: NetworkInfo): Promise<void> {
    await this.quietly('network', async () => {
      const net = this.net();
      const { agents, added } = await scheduleNetwork(net, network.id);
      // Agents that already hosted it hear that it changed (a new one heard network_create_end).
      for (const agent of agents) if (agent !== added) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_update_end', { network: { id: network.id } });
    });
    return this.inner.networkUpdated(network);
  }

  async networkDeleted(networkId: string): Promise<void> {
    // The bindings went with the network's row; every DHCP agent hears it.
    notifyAll(this.net(), AGENT_TOPICS.dhcp, 'network_delete_end', { network_id: networkId });
    return this.inner.networkDeleted(networkId);
  }

  async routerUpdated(routerId: string): Promise<void> {
    await this.quietly('router', async () => {
      const net = this.net();
      const { agents, added } = await scheduleRouter(net, routerId);
      for (const agent of agents) if (agent !== added) notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'routers_updated', { router_ids: [routerId] });
    });
    return this.inner.routerUpdated(routerId);
  }

  async routerDeleted(routerId: string): Promise<void> {
    notifyAll(this.net(), AGENT_TOPICS.l3, 'router_removed_from_agent', { router_id: routerId });
    return this.inner.routerDeleted(routerId);
  }

  securityGroupsUpdated(groupIds: string[]): Promise<void> {
    return this.inner.securityGroupsUpdated(groupIds);
  }
}
