import type { DriverCallbacks, NetworkDriver, NetworkInfo, PortBinding, PortInfo } from './driver.js';

/** One thing the fake driver was asked to do. */
export interface FakeCall {
  method: string;
  args: unknown[];
}

/**
 * The `fake` data plane: no packets move. It records every call (tests read
 * {@link FakeDriver.calls}), binds every port to any host as `ovs`-like
 * `tap` VIFs, and reports a bound port `ACTIVE` at once (`DOWN` when its
 * admin state is down), as an agent that plugged it would.
 */
export class FakeDriver implements NetworkDriver {
  readonly name = 'fake';
  readonly calls: FakeCall[] = [];
  private callbacks: DriverCallbacks | null = null;
  /** Status reports still being delivered, so that tests can wait for them. */
  private readonly pending = new Set<Promise<void>>();

  async start(callbacks: DriverCallbacks): Promise<void> {
    this.callbacks = callbacks;
  }

  async stop(): Promise<void> {
    await this.settled();
    this.callbacks = null;
  }

  /** Resolves once every status report made so far has been delivered. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  async bindPort(port: PortInfo, network: NetworkInfo): Promise<PortBinding | null> {
    this.record('bindPort', port, network);
    return { vif_type: 'tap', vif_details: { port_filter: true, connectivity: 'l2', bridge_name: `brq${network.id.slice(0, 11)}` } };
  }

  async portUpdated(port: PortInfo, network: NetworkInfo): Promise<void> {
    this.record('portUpdated', port, network);
    if (!port.host) return;
    this.report(port.id, port.admin_state_up && network.admin_state_up ? 'ACTIVE' : 'DOWN');
  }

  async portDeleted(port: PortInfo): Promise<void> {
    this.record('portDeleted', port);
  }

  async networkUpdated(network: NetworkInfo): Promise<void> {
    this.record('networkUpdated', network);
  }

  async networkDeleted(networkId: string): Promise<void> {
    this.record('networkDeleted', networkId);
  }

  async routerUpdated(routerId: string): Promise<void> {
    this.record('routerUpdated', routerId);
  }

  async routerDeleted(routerId: string): Promise<void> {
    this.record('routerDeleted', routerId);
  }

  async securityGroupsUpdated(groupIds: string[]): Promise<void> {
    this.record('securityGroupsUpdated', groupIds);
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args: structuredClone(args) });
    // Bounded, so that a long-running fake cloud does not grow without end.
    if (this.calls.length > 10_000) this.calls.splice(0, this.calls.length - 10_000);
  }

  private report(portId: string, status: 'ACTIVE' | 'DOWN'): void {
    const callbacks = this.callbacks;
    if (!callbacks) return;
    const done = callbacks.portStatus(portId, status).catch(() => undefined);
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }
}
