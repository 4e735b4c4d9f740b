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

/** Casts a notification to one agent's topic (`<topic>.<host>`); failures are logged. */
export function notifyAgent<M extends keyof AgentNotifications>(net: NetworkService, topic: string, host: string, method: M, args: Parameters<AgentNotifications[M]>[0]): void {
  net.bus.cast({ topic, server: host }, method, args).catch((err: unknown) => net.log.warn({ err, topic, host, method }, 'could not notify an agent'));
}

/** Casts a notification to every agent serving `topic`; failures are logged. */
function notifyAll<M extends keyof AgentNotifications>(net: NetworkService, topic: string, method: M, args: Parameters<AgentNotifications[M]>[0]): void {
  net.bus.fanout(topic, method, args).catch((err: unknown) => net.log.warn({ err, topic, method }, 'could not notify agents'));
}

async function candidates(net: NetworkService, agentType: string, table: 'network_dhcp_agent' | 'router_l3_agent'): Promise<AgentRow | null> {
  const agents = (await net.db.selectFrom('agent').selectAll().where('agent_type', '=', agentType).where('admin_state_up', '=', 1).execute()).filter((a) => isAlive(net, a.heartbeat_timestamp));
  if (agents.length === 0) return null;
  const loads = await net.db
    .selectFrom(table)
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

/** The DHCP agents hosting a network. */
export async function dhcpAgentsOf(net: NetworkService, networkId: string): Promise<AgentRow[]> {
  return net.db.selectFrom('network_dhcp_agent').innerJoin('agent', 'agent.id', 'network_dhcp_agent.agent_id').selectAll('agent').where('network_dhcp_agent.network_id', '=', networkId).execute();
}

/** The L3 agents hosting a router. */
export async function l3AgentsOf(net: NetworkService, routerId: string): Promise<AgentRow[]> {
  return net.db.selectFrom('router_l3_agent').innerJoin('agent', 'agent.id', 'router_l3_agent.agent_id').selectAll('agent').where('router_l3_agent.router_id', '=', routerId).execute();
}

/**
 * Schedules a network to a DHCP agent (`onlyAgent`, or the least loaded)
 * when it has a DHCP-enabled subnet and no agent yet; tells the hosting agents that it changed. Returns the agents
 * now hosting it. Idempotent; a network that vanished is left alone.
 */
export async function scheduleNetwork(net: NetworkService, networkId: string, options: { onlyAgent?: AgentRow } = {}): Promise<AgentRow[]> {
  const hosting = await dhcpAgentsOf(net, networkId);
  if (hosting.length > 0) return hosting;
  const dhcpSubnet = await net.db.selectFrom('subnet').select('id').where('network_id', '=', networkId).where('enable_dhcp', '=', 1).executeTakeFirst();
  if (!dhcpSubnet) return [];
  const agent = options.onlyAgent ?? (await candidates(net, AGENT_TYPES.dhcp, 'network_dhcp_agent'));
  if (!agent) return [];
  try {
    await net.db.insertInto('network_dhcp_agent').values({ network_id: networkId, agent_id: agent.id }).execute();
  } catch (err) {
    // Another request scheduled it first, or the network was deleted meanwhile (foreign key).
    net.log.debug({ err, network_id: networkId }, 'network not scheduled');
    return dhcpAgentsOf(net, networkId);
  }
  notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_create_end', { network: { id: networkId } });
  return [agent];
}

/**
 * Schedules a router to an L3 agent (`onlyAgent`, or the least loaded)
 * when no agent hosts it; tells the hosting agents it changed. Idempotent; a router that vanished is left alone.
 */
export async function scheduleRouter(net: NetworkService, routerId: string, options: { onlyAgent?: AgentRow } = {}): Promise<AgentRow[]> {
  const hosting = await l3AgentsOf(net, routerId);
  if (hosting.length > 0) {
    for (const agent of hosting) notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'routers_updated', { router_ids: [routerId] });
    return hosting;
  }
  const router = await net.db.selectFrom('router').select('id').where('id', '=', routerId).executeTakeFirst();
  if (!router) return [];
  const agent = options.onlyAgent ?? (await candidates(net, AGENT_TYPES.l3, 'router_l3_agent'));
  if (!agent) return [];
  try {
    await net.db.insertInto('router_l3_agent').values({ router_id: routerId, agent_id: agent.id }).execute();
  } catch (err) {
    // Another request scheduled it first, or the router was deleted meanwhile (foreign key).
    net.log.debug({ err, router_id: routerId }, 'router not scheduled');
    return l3AgentsOf(net, routerId);
  }
  notifyAgent(net, AGENT_TOPICS.l3, agent.host, 'router_added_to_agent', { router_ids: [routerId] });
  return [agent];
}

/**
 * Puts scheduling in front of a data plane: after a network, port or router
 * change (the API calls the driver once it committed) the network or router
 * is scheduled to an agent and its agents told, then the inner driver runs.
 * Scheduling failures are logged; the inner driver is called regardless.
 */
export class SchedulingDriver implements NetworkDriver {
  readonly name: string;

  constructor(
    private readonly net: () => NetworkService,
    readonly inner: NetworkDriver,
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
      for (const agent of await scheduleNetwork(net, network.id)) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'port_update_end', { port: { id: port.id, network_id: network.id } });
    });
    return this.inner.portUpdated(port, network);
  }

  async portDeleted(port: PortInfo): Promise<void> {
    await this.quietly('deleted port', async () => {
      const net = this.net();
      for (const agent of await dhcpAgentsOf(net, port.network_id)) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'port_delete_end', { port_id: port.id, network_id: port.network_id });
    });
    return this.inner.portDeleted(port);
  }

  async networkUpdated(network: NetworkInfo): Promise<void> {
    await this.quietly('network', async () => {
      const net = this.net();
      const before = (await dhcpAgentsOf(net, network.id)).map((a) => a.id);
      const hosting = await scheduleNetwork(net, network.id);
      // Agents that already hosted it hear that it changed (a new one heard network_create_end).
      for (const agent of hosting) if (before.includes(agent.id)) notifyAgent(net, AGENT_TOPICS.dhcp, agent.host, 'network_update_end', { network: { id: network.id } });
    });
    return this.inner.networkUpdated(network);
  }

  async networkDeleted(networkId: string): Promise<void> {
    // The bindings went with the network's row; every DHCP agent hears it.
    notifyAll(this.net(), AGENT_TOPICS.dhcp, 'network_delete_end', { network_id: networkId });
    return this.inner.networkDeleted(networkId);
  }

  async routerUpdated(routerId: string): Promise<void> {
    await this.quietly('router', () => scheduleRouter(this.net(), routerId));
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
