import type { ServiceClient } from '../../core/auth/service-client.js';
import type { Bus, Consumer } from '../../core/bus/index.js';
import type { ComputeConfig } from '../../core/config.js';
import type { Logger } from '../../core/logging.js';
import type { HostRecord, HostReport } from '../conductor/hosts.js';
import { AgentRpc, ConductorRpc, COMPUTE_TOPIC, type AgentAction, type AgentBdm, type AgentInstance, type BuildRequest, type ExternalEvent, type InstanceValues, type NetworkInfo, type RequestedNetwork } from '../rpc.js';
import type { GuestBlockDevice, GuestSpec, VirtDriver } from '../virt/driver.js';
import { removeServerVolumes, VolumeApi } from '../volume-api.js';
import { runAgentAction } from './actions.js';
import { attachInterface, extendVolume } from './attachments.js';
import { completeBlockDevices, guestBlockDevices, prepareBlockDevices, releaseBlockDevices, volumeMappings } from './block-devices.js';
import { offloadExpiredShelved, receiveLiveMigration } from './moves.js';
import { InstanceEvents } from './events.js';
import { lifecycleListener } from './lifecycle.js';
import { AgentNetworkApi } from './network-api.js';

/** What an agent asks of placement: its host's resource provider and inventory. */
export interface AgentPlacement {
  /** Creates the provider when missing (idempotent). */
  ensureProvider(uuid: string, name: string): Promise<unknown>;
  /** Sets the provider's inventory of VCPU, MEMORY_MB and DISK_GB. */
  setInventory(uuid: string, inventories: Record<string, { total: number; reserved: number; allocation_ratio: number; max_unit: number }>): Promise<unknown>;
  /** Sets the provider's traits. */
  setTraits(uuid: string, traits: string[]): Promise<unknown>;
  /** Removes a consumer's allocations (an offloaded server, a confirmed migration). Succeeds when there are none. */
  deleteAllocations(consumer: string): Promise<void>;
  /** Moves every allocation of `from` to `to`, replacing `to`'s (a reverted or failed move gives the source's usage back). */
  moveAllocations(from: string, to: string, projectId: string, userId: string): Promise<unknown>;
}

export interface AgentOptions {
  host: string;
  driver: VirtDriver;
  bus: Bus;
  config: ComputeConfig;
  /** Calls the network and image services as the `nova` user. */
  client: ServiceClient;
  placement: AgentPlacement;
  log: Logger;
}

/** Task states a build or an action leaves behind when its agent stops halfway. */
const BUILD_TASKS = ['scheduling', 'networking', 'block_device_mapping', 'spawning'];

/**
 * A compute agent (nova-compute): one per hypervisor host. It serves
 * `compute.<host>`, runs its driver, reports its resources to placement and
 * heartbeats through the conductor, syncs power states, and on start
 * resolves the servers a previous run left in a transient state. It has no
 * database: everything it records goes through the conductor.
 */
export class ComputeAgent {
  readonly conductor: ConductorRpc;
  readonly network: AgentNetworkApi;
  readonly events = new InstanceEvents();
  private consumer: Consumer | null = null;
  private timers: NodeJS.Timeout[] = [];
  private record: HostRecord | null = null;
  /** Work in progress, awaited by `stop`. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(readonly options: AgentOptions) {
    this.conductor = new ConductorRpc(options.bus);
    this.network = new AgentNetworkApi(options.client, options.host);
  }

  get host(): string {
    return this.options.host;
  }

  get driver(): VirtDriver {
    return this.options.driver;
  }

  /** Reports the host, sets up its resource provider, serves its topic and starts the periodic tasks. */
  async start(): Promise<void> {
    await this.report();
    this.driver.onLifecycle(lifecycleListener(this));
    await this.recover();
    this.consumer = await this.options.bus.serve(COMPUTE_TOPIC, this.host, {
      build_and_run_instance: (req: BuildRequest) => this.track(this.build(req)),
      terminate_instance: (args: { instance_uuid: string }) => this.track(this.terminate(args.instance_uuid)),
      run_action: (args: { instance_uuid: string; action: AgentAction; action_id: string }) => this.track(runAgentAction(this, args.instance_uuid, args.action, args.action_id)),
      external_instance_event: (args: { events: ExternalEvent[] }) => this.externalEvents(args.events),
      get_console_output: (args: { instance_uuid: string; length: number | null }) => this.driver.consoleOutput(args.instance_uuid, args.length ?? undefined),
      get_vnc_console: (args: { instance_uuid: string }) => this.driver.vncConsole(args.instance_uuid),
      attach_interface: (args: Parameters<AgentRpc['attachInterface']>[1]) => this.track(attachInterface(this, args.instance_uuid, args.action, args.action_id)),
      receive_live_migration: (args: { instance_uuid: string; migration_uuid: string; action_id: string }) => this.track(receiveLiveMigration(this, args.instance_uuid, args.action_id)),
      destroy_guest: (args: { instance_uuid: string }) => this.track(this.driver.destroy(args.instance_uuid)),
    });
    const { report_interval, sync_power_state_interval } = this.options.config;
    if (report_interval > 0) this.timers.push(setInterval(() => void this.report().catch((err: unknown) => this.options.log.warn({ err }, 'heartbeat failed')), report_interval * 1000));
    const offloadAfter = this.options.config.shelved_offload_time;
    if (offloadAfter > 0) this.timers.push(setInterval(() => void this.track(offloadExpiredShelved(this)).catch((err: unknown) => this.options.log.warn({ err }, 'shelved offload failed')), Math.min(offloadAfter, 60) * 1000));
    if (sync_power_state_interval > 0) this.timers.push(setInterval(() => void this.syncPowerStates().catch((err: unknown) => this.options.log.warn({ err }, 'power state sync failed')), sync_power_state_interval * 1000));
  }

  /** Stops taking work, waits for what runs, stops the timers. Guests keep running. */
  async stop(): Promise<void> {
    for (const t of this.timers.splice(0)) clearInterval(t);
    await this.consumer?.stop();
    this.consumer = null;
    await Promise.allSettled([...this.running]);
    await this.driver.close();
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    void work.finally(() => this.running.delete(work)).catch(() => undefined);
    return work;
  }

  /** Heartbeat; on the first one (or after the node changed) also the provider and inventory in placement. */
  async report(): Promise<void> {
    const resources = await this.driver.hostResources();
    const report: HostReport = { host: this.host, binary: 'nova-compute', resources, ...(this.record?.node_uuid ? { node_uuid: this.record.node_uuid } : {}) };
    const first = this.record === null;
    this.record = await this.conductor.call<HostRecord>('host_report', report);
    if (first && this.record.node_uuid) {
      const c = this.options.config;
      const uuid = this.record.node_uuid;
      await this.options.placement.ensureProvider(uuid, resources.hypervisorHostname);
      await this.options.placement.setInventory(uuid, {
        VCPU: { total: resources.vcpus, reserved: 0, allocation_ratio: c.cpu_allocation_ratio, max_unit: resources.vcpus },
        MEMORY_MB: { total: resources.memoryMb, reserved: Math.min(c.reserved_host_memory_mb, resources.memoryMb - 1), allocation_ratio: c.ram_allocation_ratio, max_unit: resources.memoryMb },
        DISK_GB: { total: resources.localGb, reserved: Math.ceil(c.reserved_host_disk_mb / 1024), allocation_ratio: c.disk_allocation_ratio, max_unit: resources.localGb },
      });
      if (resources.traits.length > 0) await this.options.placement.setTraits(uuid, resources.traits);
    }
  }

  /** Records changes on a server; false when it was deleted meanwhile or another task took it. */
  async update(uuid: string, values: InstanceValues, expected?: (string | null)[]): Promise<boolean> {
    const res = await this.conductor.call<{ updated: boolean }>('update_instance', { uuid, values, ...(expected ? { expected_task_state: expected } : {}) });
    return res.updated;
  }

  async instance(uuid: string): Promise<AgentInstance | null> {
    return this.conductor.call<AgentInstance | null>('get_instance', { uuid });
  }

  async eventStart(actionId: string, event: string): Promise<string | null> {
    if (!actionId) return null;
    return this.conductor.call<string>('action_event_start', { action_id: actionId, event, host: this.host });
  }

  async eventFinish(eventId: string | null, error?: unknown): Promise<void> {
    if (!eventId) return;
    const failure = error === undefined ? undefined : { message: error instanceof Error ? error.message : String(error), traceback: error instanceof Error ? (error.stack ?? '') : '' };
    await this.conductor.call('action_event_finish', { event_id: eventId, ...(failure ? { error: failure } : {}) });
  }

  notify(eventType: string, payload: unknown): void {
    void this.conductor.call('notify', { event_type: eventType, payload }).catch(() => undefined);
  }

  /** The driver's view of a server. */
  guestSpec(instance: AgentInstance, networkInfo: NetworkInfo = instance.network_info, blockDevices: GuestBlockDevice[] = guestBlockDevices(instance.block_devices)): GuestSpec {
    const f = instance.flavor;
    return {
      uuid: instance.uuid,
      name: instance.display_name,
      vcpus: f.vcpus,
      memoryMb: f.memory_mb,
      rootGb: f.root_gb,
      ephemeralGb: f.ephemeral_gb,
      swapMb: f.swap,
      imageRef: instance.image_ref,
      imageProperties: instance.image_properties,
      blockDevices,
      vifs: networkInfo.map((v) => ({ portId: v.port_id, networkId: v.network_id, mac: v.mac_address, devName: v.devname, fixedIps: v.fixed_ips.map((ip) => ip.ip_address) })),
      userData: instance.user_data,
      keyData: instance.key_data,
      configDrive: instance.config_drive,
      metadata: instance.metadata,
      metadataInfo: {
        uuid: instance.uuid,
        name: instance.display_name,
        hostname: instance.hostname,
        projectId: instance.project_id,
        availabilityZone: instance.availability_zone,
        launchIndex: instance.launch_index,
        reservationId: instance.reservation_id,
        flavorName: f.name,
        imageRef: instance.image_ref,
        keyName: instance.key_name,
        keyData: instance.key_data,
        userData: instance.user_data,
        metadata: instance.metadata,
        vifs: networkInfo.map((v) => ({ portId: v.port_id, networkId: v.network_id, mac: v.mac_address, mtu: null, fixedIps: v.fixed_ips.map((ip) => ({ address: ip.ip_address, version: ip.version, subnetId: ip.subnet_id })) })),
        createdAt: instance.created_at,
      },
    };
  }

  /**
   * Builds a server: networking (ports, then waiting for
   * `network-vif-plugged`), block devices, spawning. A failure undoes what
   * was done here and hands the server back to the conductor, which
   * reschedules it or puts it in ERROR.
   */
  private async build(req: BuildRequest): Promise<void> {
    const uuid = req.instance_uuid;
    const event = await this.eventStart(req.action_id, 'compute_build_and_run_instance');
    let allocated: { portId: string; created: boolean; tag: string | null }[] = [];
    let spawned = false;
    let volumesTouched = false;
    try {
      const instance = await this.instance(uuid);
      if (!instance || !(await this.update(uuid, { task_state: 'networking' }, ['scheduling']))) {
        await this.eventFinish(event);
        return;
      }
      this.notify('compute.instance.create.start', { instance_id: uuid, host: this.host });
      const requested: RequestedNetwork[] = Array.isArray(req.spec.requested_networks) ? req.spec.requested_networks : [];
      allocated = await this.network.allocate(instance, requested, req.spec.security_groups);
      const networkInfo = await this.network.networkInfo(uuid, allocated);
      if (!(await this.update(uuid, { task_state: 'block_device_mapping', network_info: networkInfo }, ['networking']))) throw new Gone();
      let blockDevices: GuestBlockDevice[] = [];
      if (volumeMappings(instance.block_devices).length > 0) {
        volumesTouched = true;
        blockDevices = await prepareBlockDevices(this, instance, req.user_token).catch((err: unknown) => {
          throw new BlockDeviceFailure(err);
        });
      }
      if (!(await this.update(uuid, { task_state: 'spawning' }, ['block_device_mapping']))) throw new Gone();
      const waitKeys = networkInfo.filter((v) => !v.active).map((v) => `network-vif-plugged:${v.port_id}`);
      await this.driver.spawn(this.guestSpec(instance, networkInfo, blockDevices));
      spawned = true;
      const { vif_plugging_timeout: timeout, vif_plugging_is_fatal: fatal } = this.options.config;
      const plugged = await this.events.waitFor(uuid, waitKeys, timeout * 1000);
      if (plugged.failed.length > 0 || (!plugged.complete && fatal && timeout > 0)) throw new Error(`Virtual Interface creation failed${plugged.failed.length ? ` for ports ${plugged.failed.join(', ')}` : ' (timed out waiting for network-vif-plugged)'}`);
      const fresh = await this.network.networkInfo(uuid, allocated);
      if (volumesTouched) await completeBlockDevices(this, uuid);
      const active = await this.update(uuid, { vm_state: 'active', task_state: null, power_state: 1, launched_at: new Date().toISOString(), network_info: fresh }, ['spawning']);
      if (!active) throw new Gone();
      this.events.clear(uuid);
      this.notify('compute.instance.create.end', { instance_id: uuid, host: this.host, state: 'active' });
      await this.eventFinish(event);
    } catch (err) {
      this.events.clear(uuid);
      if (spawned) await this.driver.destroy(uuid).catch(() => undefined);
      await this.network.release(allocated.map((a) => ({ port_id: a.portId, preserve_on_delete: !a.created }))).catch((e: unknown) => this.options.log.warn({ err: e, instance_uuid: uuid }, 'could not release ports'));
      if (err instanceof Gone) {
        // Deleted while building: the delete finishes here, on the host that had it.
        if (volumesTouched) await this.removeVolumes(uuid);
        await this.conductor.call('instance_destroyed', { uuid });
        await this.eventFinish(event);
        return;
      }
      if (volumesTouched) await releaseBlockDevices(this, uuid);
      this.options.log.warn({ err, instance_uuid: uuid, host: this.host }, 'build failed');
      // As Nova's BuildAbortException: a volume that could not be made or connected is no host's fault, so no reschedule.
      const cause = err instanceof BlockDeviceFailure ? err.cause : err;
      await this.eventFinish(event, cause);
      const message = cause instanceof Error ? cause.message : String(cause);
      const details = cause instanceof Error ? (cause.stack ?? '') : '';
      if (err instanceof BlockDeviceFailure) {
        await this.conductor.call('build_failed', { request: req, message: `Build of instance ${uuid} aborted: Failure prepping block device. ${message}`, details, reschedule: false });
      } else {
        await this.conductor.call('build_failed', { request: req, message: `Build of instance ${uuid} aborted: ${message}`, details, reschedule: true });
      }
    }
  }

  /** Destroys a server on this host, releases its ports, and tells the conductor it is gone. */
  async terminate(uuid: string): Promise<void> {
    const instance = await this.instance(uuid);
    await this.driver.destroy(uuid);
    if (instance) await this.network.release(instance.network_info);
    if (instance && volumeMappings(instance.block_devices).length > 0) await this.removeVolumes(uuid);
    // A shelved server's snapshot goes with it (Nova deletes it on delete).
    const shelvedImage = instance?.system_metadata?.shelved_image_id;
    if (shelvedImage) await this.options.client.request('image', 'DELETE', `/v2/images/${shelvedImage}`).catch((err: unknown) => this.options.log.warn({ err, instance_uuid: uuid }, 'could not delete the shelved image'));
    this.events.clear(uuid);
    await this.conductor.call('instance_destroyed', { uuid });
  }

  /** Detaches a server's volumes and deletes those marked `delete_on_termination` (its delete). */
  private async removeVolumes(uuid: string): Promise<void> {
    const bdms = await this.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: uuid });
    await removeServerVolumes(new VolumeApi(this.options.client), bdms, this.options.log);
  }

  private externalEvents(events: ExternalEvent[]): void {
    for (const e of events) {
      this.events.deliver(e.server_uuid, e.name, e.tag, e.status);
      if (e.name === 'network-changed' || e.name === 'network-vif-deleted') this.track(this.refreshNetworkInfo(e.server_uuid));
      if (e.name === 'volume-extended' && e.tag) this.track(extendVolume(this, e.server_uuid, e.tag, e.action_id ?? ''));
    }
  }

  /** Rebuilds a server's network info cache (a floating IP came or went, a port was deleted). */
  async refreshNetworkInfo(uuid: string): Promise<void> {
    const instance = await this.instance(uuid);
    if (!instance || instance.host !== this.host) return;
    const order = instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));
    await this.update(uuid, { network_info: await this.network.networkInfo(uuid, order) });
  }

  /** Makes the database's power state follow the driver's (a guest that stopped by itself shows SHUTOFF). */
  async syncPowerStates(): Promise<void> {
    const guests = new Map((await this.driver.listGuests()).map((g) => [g.uuid, g.powerState]));
    const instances = await this.conductor.call<AgentInstance[]>('instances_on_host', { host: this.host });
    for (const instance of instances) {
      if (instance.task_state !== null) continue;
      const power = guests.get(instance.uuid) ?? 4;
      if (power === instance.power_state) continue;
      const values: InstanceValues = { power_state: power };
      if (instance.vm_state === 'active' && (power === 4 || power === 6)) values.vm_state = 'stopped';
      await this.update(instance.uuid, values, [null]);
    }
  }

  /**
   * Resolves servers a previous run left halfway (Nova's `init_host`): a
   * build that never finished goes to ERROR (its claim and ports freed by
   * the conductor's failure path), a delete is finished, any other task
   * is cleared.
   */
  private async recover(): Promise<void> {
    const instances = await this.conductor.call<AgentInstance[]>('instances_on_host', { host: this.host });
    const guests = new Map((await this.driver.listGuests()).map((g) => [g.uuid, g.powerState]));
    for (const instance of instances) {
      if (instance.task_state === null) continue;
      if (instance.task_state === 'deleting') {
        await this.terminate(instance.uuid);
      } else if (instance.vm_state === 'building' || BUILD_TASKS.includes(instance.task_state)) {
        await this.driver.destroy(instance.uuid).catch(() => undefined);
        await this.network.release(instance.network_info).catch(() => undefined);
        await this.conductor.call('build_failed', {
          request: { instance_uuid: instance.uuid, spec: instance.request_spec, destination: { host: this.host, node: instance.node ?? this.host, node_uuid: '', allocation: {} }, alternates: [], attempts: [this.host], action_id: '' },
          message: 'The compute agent restarted while the server was being built.',
          details: '',
          reschedule: false,
        });
      } else {
        const power = guests.get(instance.uuid) ?? 4;
        await this.update(instance.uuid, { task_state: null, power_state: power });
      }
    }
  }
}

/** A build failed while preparing the server's volumes (not rescheduled). */
class BlockDeviceFailure extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'BlockDeviceFailure';
  }
}

/** The server was deleted (or taken by another task) while this agent worked on it. */
export class Gone extends Error {
  constructor() {
    super('the server was deleted meanwhile');
    this.name = 'Gone';
  }
}
