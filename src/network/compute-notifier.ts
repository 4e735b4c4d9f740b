import { EndpointNotFound } from '../core/auth/service-client.js';
import type { NetworkService } from './network.js';

/**
 * Tells compute what happened to its servers' ports, through compute's
 * `POST /os-server-external-events` (Neutron's nova notifier): a port wired
 * (`network-vif-plugged`), unwired (`network-vif-unplugged`), deleted
 * (`network-vif-deleted`), or whose addresses changed (`network-changed`).
 * Only ports whose `device_owner` starts with `compute:` and that have a
 * `device_id` (the server's id) concern compute.
 *
 * Events that come close together (within {@link BATCH_MS}) go in one
 * request. Sending never fails the caller: when the catalog has no compute
 * endpoint the events are dropped (logged at debug), other failures are
 * logged.
 */

/** How long events are gathered before one request carries them. */
const BATCH_MS = 200;

export type ComputeEventName = 'network-vif-plugged' | 'network-vif-unplugged' | 'network-vif-deleted' | 'network-changed';

/** One event as compute's API takes it. */
export interface ComputeEvent {
  name: ComputeEventName;
  server_uuid: string;
  /** The port's id. */
  tag: string;
  status?: 'completed' | 'failed';
}

/** The port fields the notifier looks at. */
export interface ComputePort {
  id: string;
  device_id: string;
  device_owner: string;
}

/** True for a port of a compute server (`compute:*` with a device id). */
function isComputePort(port: ComputePort): boolean {
  return port.device_owner.startsWith('compute:') && port.device_id !== '';
}

/** Gathers events and sends them in batches. One per network service. */
export class ComputeNotifier {
  private queue: ComputeEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly sending = new Set<Promise<void>>();

  constructor(private readonly net: NetworkService) {}

  /** Queues an event; it is sent with the others of its batch. */
  queueEvent(event: ComputeEvent): void {
    if (!this.net.config.network.notify_compute) return;
    if (!this.queue.some((e) => e.name === event.name && e.server_uuid === event.server_uuid && e.tag === event.tag && e.status === event.status)) this.queue.push(event);
    this.timer ??= setTimeout(() => {
      this.timer = null;
      this.flush();
    }, BATCH_MS);
  }

  /** Sends what is queued now (in the background); see {@link ComputeNotifier.settled}. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.queue.length === 0) return;
    const events = this.queue;
    this.queue = [];
    const sent = this.send(events).finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }

  /** Sends what is queued and resolves once every request made so far has finished. */
  async settled(): Promise<void> {
    this.flush();
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }

  private async send(events: ComputeEvent[]): Promise<void> {
    const { client, log } = this.net;
    try {
      const res = await client.request<{ events?: { code?: number; server_uuid?: string; name?: string }[] }>('compute', 'POST', '/os-server-external-events', { body: { events } });
      if (res.status === 404) log.debug({ events }, 'compute knows none of these servers');
      else if (res.status >= 400) log.warn({ status: res.status, events, body: res.body }, 'compute refused port events');
      else {
        for (const answer of res.body?.events ?? []) {
          if (answer.code !== undefined && answer.code !== 200) log.debug({ event: answer }, 'compute did not take a port event');
        }
      }
    } catch (err) {
      if (err instanceof EndpointNotFound) log.debug({ events }, 'no compute endpoint in the catalog; port events dropped');
      else log.warn({ err, events }, 'could not send port events to compute');
    }
  }
}

const notifiers = new WeakMap<NetworkService, ComputeNotifier>();

/** The network service's notifier (made on first use). */
export function computeNotifier(net: NetworkService): ComputeNotifier {
  let notifier = notifiers.get(net);
  if (!notifier) {
    notifier = new ComputeNotifier(net);
    notifiers.set(net, notifier);
  }
  return notifier;
}

/**
 * A port's status changed from `previous` to `current`: compute hears
 * `network-vif-plugged` when it comes up (`completed`) or fails (`failed`)
 * from DOWN or BUILD, `network-vif-unplugged` when it goes from ACTIVE to
 * DOWN; other transitions, and ports not of a server, say nothing.
 */
export function notifyPortStatus(net: NetworkService, port: ComputePort, previous: string, current: string): void {
  if (!isComputePort(port)) return;
  if (previous === 'ACTIVE' && current === 'DOWN') {
    computeNotifier(net).queueEvent({ name: 'network-vif-unplugged', server_uuid: port.device_id, tag: port.id, status: 'completed' });
  } else if ((previous === 'DOWN' || previous === 'BUILD') && (current === 'ACTIVE' || current === 'ERROR')) {
    computeNotifier(net).queueEvent({ name: 'network-vif-plugged', server_uuid: port.device_id, tag: port.id, status: current === 'ACTIVE' ? 'completed' : 'failed' });
  }
}

/**
 * For the ports API: a server's port was deleted (call after the delete
 * committed, with the port as it was). Compute hears `network-vif-deleted`.
 * Never throws.
 */
export function notifyComputePortDeleted(net: NetworkService, port: ComputePort): void {
  if (isComputePort(port)) computeNotifier(net).queueEvent({ name: 'network-vif-deleted', server_uuid: port.device_id, tag: port.id });
}

/**
 * For the ports and floating IP APIs: a server's port changed in a way the
 * server's network info shows (fixed IPs; a floating IP associated or
 * disassociated). Compute hears `network-changed` and refreshes its cache.
 * Call after the change committed; never throws.
 */
export function notifyComputeNetworkChanged(net: NetworkService, port: ComputePort): void {
  if (isComputePort(port)) computeNotifier(net).queueEvent({ name: 'network-changed', server_uuid: port.device_id, tag: port.id });
}

/** Sends pending events and waits for requests under way (at stop, and in tests). */
export async function settleComputeNotifier(net: NetworkService): Promise<void> {
  await notifiers.get(net)?.settled();
}
