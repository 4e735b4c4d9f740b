import type { Bus } from '../../core/bus/index.js';
import type { Logger } from '../../core/logging.js';
import type { Kysely } from 'kysely';
import { AGENT_TOPICS, AGENT_TYPES, type AgentNotifications } from '../agents/interfaces.js';
import { bridgeName } from '../linux/names.js';
import type { NetworkSchema } from '../db/schema.js';
import type { DriverCallbacks, NetworkDriver, NetworkInfo, PortBinding, PortInfo } from './driver.js';

/**
 * The server side of the Linux data plane (ML2 with the Linux bridge
 * mechanism driver): ports bind as `bridge` VIFs on hosts whose bridge agent
 * is alive, and every change reaches the hosts' bridge agents as a fanout on
 * `q-agent-notifier` (DHCP and L3 agents hear theirs from the scheduling in
 * front of every driver). Ports go ACTIVE when a bridge agent has wired
 * them (`update_device_up`), not here.
 */
export class LinuxDriver implements NetworkDriver {
  readonly name = 'linux';

  constructor(
    private readonly bus: Bus,
    private readonly db: () => Kysely<NetworkSchema>,
    private readonly log: Logger,
    /** Seconds without a heartbeat after which a host's bridge agent is dead (`agent_down_time`). */
    private readonly agentDownTime: number,
  ) {}

  async start(_callbacks: DriverCallbacks): Promise<void> {}

  async stop(): Promise<void> {}

  /** Binds when `port.host` has an alive bridge agent (else the port's binding fails, as Neutron's). */
  async bindPort(port: PortInfo, network: NetworkInfo): Promise<PortBinding | null> {
    const agent = await this.db().selectFrom('agent').select(['heartbeat_timestamp', 'admin_state_up']).where('agent_type', '=', AGENT_TYPES.bridge).where('host', '=', port.host).executeTakeFirst();
    const at = agent ? Date.parse(agent.heartbeat_timestamp) : NaN;
    if (!agent || !Number.isFinite(at) || Date.now() - at > this.agentDownTime * 1000) {
      this.log.warn({ port: port.id, host: port.host }, 'no alive bridge agent on the host: the port cannot be bound');
      return null;
    }
    return { vif_type: 'bridge', vif_details: { port_filter: true, connectivity: 'l2', bridge_name: bridgeName(network.id) } };
  }

  async portUpdated(port: PortInfo, network: NetworkInfo): Promise<void> {
    if (port.host) this.fanout('port_update', { port: { id: port.id, network_id: network.id } });
  }

  async portDeleted(port: PortInfo): Promise<void> {
    this.fanout('port_delete', { port_id: port.id });
  }

  async networkUpdated(_network: NetworkInfo): Promise<void> {}

  async networkDeleted(networkId: string): Promise<void> {
    this.fanout('network_delete', { network_id: networkId });
  }

  async routerUpdated(_routerId: string): Promise<void> {}

  async routerDeleted(_routerId: string): Promise<void> {}

  async securityGroupsUpdated(groupIds: string[]): Promise<void> {
    if (groupIds.length > 0) this.fanout('security_groups_updated', { security_group_ids: groupIds });
  }

  private fanout<M extends keyof AgentNotifications>(method: M, args: Parameters<AgentNotifications[M]>[0]): void {
    this.bus.fanout(AGENT_TOPICS.bridgeNotifier, method, args).catch((err: unknown) => this.log.warn({ err, method }, 'could not notify the bridge agents'));
  }
}
