import type { Bus, Handler } from '../../core/bus/index.js';
import type { Logger } from '../../core/logging.js';
import { Agent, type AgentIdentity } from './agent.js';
import { AGENT_TOPICS, AGENT_TYPES, type AgentNotifications } from './interfaces.js';

/** One notification a fake agent received. */
export interface FakeAgentCall {
  method: keyof AgentNotifications;
  args: unknown;
}

const NOTIFICATIONS: (keyof AgentNotifications)[] = [
  'agent_updated',
  'network_create_end',
  'network_update_end',
  'network_delete_end',
  'port_update_end',
  'port_delete_end',
  'router_added_to_agent',
  'routers_updated',
  'router_removed_from_agent',
  'port_update',
  'port_delete',
  'network_delete',
  'security_groups_updated',
];

/**
 * An agent of the `fake` driver's mode: it heartbeats like a real one (so
 * `openstack network agent list` shows it) and records every notification
 * the server sends it, doing nothing else.
 */
export class FakeAgent extends Agent {
  readonly calls: FakeAgentCall[] = [];

  protected override handlers(): Partial<Record<keyof AgentNotifications, Handler>> {
    const handlers: Partial<Record<keyof AgentNotifications, Handler>> = {};
    for (const method of NOTIFICATIONS) {
      handlers[method] = (args: unknown) => {
        this.calls.push({ method, args });
        if (this.calls.length > 1000) this.calls.splice(0, this.calls.length - 1000);
      };
    }
    return handlers;
  }
}

export interface FakeAgentsOptions {
  host: string;
  availabilityZone: string;
  reportInterval: number;
  logger: Logger;
}

/** The four agents of one host, as a Neutron host with Linux bridge has them. */
function fakeAgentIdentities(host: string, availabilityZone: string): AgentIdentity[] {
  return [
    {
      agentType: AGENT_TYPES.bridge,
      binary: 'stratus-bridge-agent',
      topic: AGENT_TOPICS.none,
      serveTopic: AGENT_TOPICS.bridgeNotifier,
      host,
      configurations: { bridge_mappings: {}, interface_mappings: {}, tunnel_types: ['vxlan'], l2_population: false, devices: 0, extensions: [] },
    },
    {
      agentType: AGENT_TYPES.dhcp,
      binary: 'stratus-dhcp-agent',
      topic: AGENT_TOPICS.dhcp,
      host,
      availabilityZone,
      configurations: { dhcp_driver: 'fake', dhcp_lease_duration: 86400, networks: 0, subnets: 0, ports: 0 },
    },
    {
      agentType: AGENT_TYPES.l3,
      binary: 'stratus-l3-agent',
      topic: AGENT_TOPICS.l3,
      host,
      availabilityZone,
      configurations: { agent_mode: 'legacy', interface_driver: 'fake', routers: 0, ex_gw_ports: 0, interfaces: 0, floating_ips: 0 },
    },
    {
      agentType: AGENT_TYPES.metadata,
      binary: 'stratus-metadata-agent',
      topic: AGENT_TOPICS.none,
      serveTopic: '',
      host,
      configurations: { metadata_proxy_socket: '', log_agent_heartbeats: false },
    },
  ];
}

/** Starts the fake agents of one host; each has sent its first heartbeat when this resolves. */
export async function startFakeAgents(bus: Bus, options: FakeAgentsOptions): Promise<{ agents: FakeAgent[]; stop(): Promise<void> }> {
  const agents = fakeAgentIdentities(options.host, options.availabilityZone).map(
    (identity) => new FakeAgent(bus, identity, { reportInterval: options.reportInterval, logger: options.logger }),
  );
  const stop = async (): Promise<void> => {
    await Promise.all(agents.map((agent) => agent.stop()));
  };
  // Side by side: each start waits for the answer to its first heartbeat.
  const failed = (await Promise.allSettled(agents.map((agent) => agent.start()))).find((r) => r.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  return { agents, stop };
}
