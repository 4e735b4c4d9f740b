import type { AgentAction, AgentBdm, AgentInstance } from '../rpc.js';
import { VolumeApi } from '../volume-api.js';
import type { ComputeAgent } from './agent.js';
import { hostConnector } from './block-devices.js';

/**
 * Hot-plugging on a server's host: network interfaces (ports from the
 * network service, plugged by the driver) and volumes (attachments from the
 * block storage service, connected by the driver). Neither has a task state
 * in Nova; each records its action event and undoes what it did on failure.
 */

type AttachmentAction = Extract<AgentAction, { kind: 'detach_interface' | 'attach_volume' | 'detach_volume' | 'swap_volume' }>;

const KINDS: ReadonlySet<string> = new Set(['detach_interface', 'attach_volume', 'detach_volume', 'swap_volume']);

export function isAttachmentAction(action: AgentAction): action is AttachmentAction {
  return KINDS.has(action.kind);
}

const order = (instance: AgentInstance): { portId: string; created: boolean; tag: string | null }[] => instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));

/**
 * Attaches a port to the server (the one given, or a new one on the
 * network): bound to this host, plugged by the driver, waited for
 * (`network-vif-plugged`, not fatal), recorded in the network info cache.
 * Returns the port id; on failure the port is released and the error thrown
 * to the caller (compute-api answers it).
 */
export async function attachInterface(agent: ComputeAgent, uuid: string, action: Extract<AgentAction, { kind: 'attach_interface' }>, actionId: string): Promise<string> {
  const event = await agent.eventStart(actionId, 'compute_attach_interface');
  let allocated: { portId: string; created: boolean; tag: string | null }[] = [];
  let plugged = false;
  try {
    const instance = await agent.instance(uuid);
    if (!instance) throw new Error(`Instance ${uuid} could not be found.`);
    const requested = action.port_id ? { port_id: action.port_id } : { network_id: action.network_id ?? '', ...(action.fixed_ip ? { fixed_ip: action.fixed_ip } : {}) };
    allocated = await agent.network.allocate(instance, [{ ...requested, ...(action.tag ? { tag: action.tag } : {}) }], action.port_id ? [] : (instance.request_spec.security_groups ?? []));
    const added = allocated[0];
    if (!added) throw new Error('no port was allocated');
    const networkInfo = await agent.network.networkInfo(uuid, [...order(instance), added]);
    const vif = networkInfo.find((v) => v.port_id === added.portId);
    if (!vif) throw new Error(`port ${added.portId} is not the server's`);
    await agent.driver.attachInterface(uuid, { portId: vif.port_id, networkId: vif.network_id, mac: vif.mac_address, devName: vif.devname, fixedIps: vif.fixed_ips.map((ip) => ip.ip_address) });
    plugged = true;
    const timeout = Math.min(agent.options.config.vif_plugging_timeout, 20);
    if (!vif.active && timeout > 0) await agent.events.waitFor(uuid, [`network-vif-plugged:${vif.port_id}`], timeout * 1000);
    await agent.update(uuid, { network_info: await agent.network.networkInfo(uuid, [...order(instance), added]) });
    agent.notify('compute.instance.interface_attach.end', { instance_id: uuid, port_id: added.portId });
    await agent.eventFinish(event);
    return added.portId;
  } catch (err) {
    if (plugged && allocated[0]) await agent.driver.detachInterface(uuid, allocated[0].portId).catch(() => undefined);
    await agent.network.release(allocated.map((a) => ({ port_id: a.portId, preserve_on_delete: !a.created }))).catch(() => undefined);
    await agent.eventFinish(event, err).catch(() => undefined);
    throw err;
  }
}

/** Runs a detach or a volume action on this host. */
export async function runAttachmentAction(agent: ComputeAgent, uuid: string, action: AttachmentAction, actionId: string): Promise<void> {
  const event = await agent.eventStart(actionId, `compute_${action.kind}`);
  try {
    const instance = await agent.instance(uuid);
    if (!instance) throw new Error('the server is gone');
    switch (action.kind) {
      case 'detach_interface':
        await detachInterface(agent, instance, action.port_id);
        break;
      case 'attach_volume':
        await attachVolume(agent, instance, action.bdm_id);
        break;
      case 'detach_volume':
        await detachVolume(agent, instance, action.bdm_id);
        break;
      case 'swap_volume':
        await swapVolume(agent, instance, action);
        break;
    }
    await agent.eventFinish(event);
  } catch (err) {
    agent.options.log.warn({ err, instance_uuid: uuid, action: action.kind }, 'attachment action failed');
    const message = err instanceof Error ? err.message : String(err);
    await agent.conductor.call('instance_fault', { uuid, code: 500, message, details: err instanceof Error ? (err.stack ?? '') : '', host: agent.host }).catch(() => undefined);
    await agent.eventFinish(event, err).catch(() => undefined);
  }
}

/** Unplugs the port, deletes it when compute made it (else unbinds it) and drops it from the cache. */
async function detachInterface(agent: ComputeAgent, instance: AgentInstance, portId: string): Promise<void> {
  const vif = instance.network_info.find((v) => v.port_id === portId);
  if (!vif) throw new Error(`Port ${portId} is not attached`);
  await agent.driver.detachInterface(instance.uuid, portId);
  await agent.network.release([vif]);
  const remaining = order(instance).filter((o) => o.portId !== portId);
  await agent.update(instance.uuid, { network_info: await agent.network.networkInfo(instance.uuid, remaining) });
  agent.notify('compute.instance.interface_detach.end', { instance_id: instance.uuid, port_id: portId });
}

async function bdmOf(agent: ComputeAgent, id: string): Promise<AgentBdm> {
  const bdm = await agent.conductor.call<AgentBdm | null>('get_bdm', { id });
  if (!bdm) throw new Error(`No volume Block Device Mapping with id ${id}.`);
  return bdm;
}

/** Connects the reserved attachment to this host, has the driver attach it, completes it; on failure the attachment and the record go. */
async function attachVolume(agent: ComputeAgent, instance: AgentInstance, bdmId: string): Promise<void> {
  const bdm = await bdmOf(agent, bdmId);
  const volumes = new VolumeApi(agent.options.client);
  try {
    if (!bdm.attachment_id || !bdm.volume_id) throw new Error(`block device mapping ${bdmId} has no attachment`);
    const info = await volumes.updateAttachment(bdm.attachment_id, hostConnector(agent, bdm.device_name));
    await agent.driver.attachVolume(instance.uuid, bdm.volume_id, info, bdm.device_name ?? '');
    await volumes.completeAttachment(bdm.attachment_id);
    await agent.conductor.call('update_bdm', { id: bdmId, values: { connection_info: JSON.stringify(info) } });
    agent.notify('compute.instance.volume.attach', { instance_id: instance.uuid, volume_id: bdm.volume_id });
  } catch (err) {
    if (bdm.volume_id) await agent.driver.detachVolume(instance.uuid, bdm.volume_id).catch(() => undefined);
    if (bdm.attachment_id) await volumes.deleteAttachment(bdm.attachment_id).catch(() => undefined);
    await agent.conductor.call('delete_bdm', { id: bdmId });
    throw err;
  }
}

/** Has the driver detach the volume, ends its attachment and removes the record. */
async function detachVolume(agent: ComputeAgent, instance: AgentInstance, bdmId: string): Promise<void> {
  const bdm = await bdmOf(agent, bdmId);
  if (bdm.volume_id && instance.host === agent.host) await agent.driver.detachVolume(instance.uuid, bdm.volume_id);
  if (bdm.attachment_id) await new VolumeApi(agent.options.client).deleteAttachment(bdm.attachment_id);
  await agent.conductor.call('delete_bdm', { id: bdmId });
  agent.notify('compute.instance.volume.detach', { instance_id: instance.uuid, volume_id: bdm.volume_id });
}

/**
 * Moves the guest from the old volume to the new one (Nova's swap, called
 * by the block storage service's migration), then tells the service the
 * swap is over. On failure the new attachment goes, the guest keeps the old
 * volume and the service hears of the error.
 */
async function swapVolume(agent: ComputeAgent, instance: AgentInstance, action: Extract<AgentAction, { kind: 'swap_volume' }>): Promise<void> {
  const bdm = await bdmOf(agent, action.bdm_id);
  const volumes = new VolumeApi(agent.options.client);
  const oldId = bdm.volume_id ?? '';
  let info: Record<string, unknown>;
  try {
    info = await volumes.updateAttachment(action.new_attachment_id, hostConnector(agent, bdm.device_name));
    await agent.driver.attachVolume(instance.uuid, action.new_volume_id, info, bdm.device_name ?? '');
    if (oldId) await agent.driver.detachVolume(instance.uuid, oldId);
    await volumes.completeAttachment(action.new_attachment_id);
  } catch (err) {
    await agent.driver.detachVolume(instance.uuid, action.new_volume_id).catch(() => undefined);
    await volumes.deleteAttachment(action.new_attachment_id).catch(() => undefined);
    if (oldId) await volumes.migrateVolumeCompletion(oldId, action.new_volume_id, true).catch(() => undefined);
    throw err;
  }
  if (bdm.attachment_id) await volumes.deleteAttachment(bdm.attachment_id);
  const kept = oldId ? await volumes.migrateVolumeCompletion(oldId, action.new_volume_id, false) : action.new_volume_id;
  await agent.conductor.call('update_bdm', { id: action.bdm_id, values: { volume_id: kept, attachment_id: action.new_attachment_id, connection_info: JSON.stringify(info) } });
}

/**
 * The `volume-extended` event: the block storage service grew an attached
 * volume; the driver tells the guest its new size. Failures are logged (the
 * volume is extended regardless; the guest sees it after a reboot).
 */
export async function extendVolume(agent: ComputeAgent, uuid: string, volumeId: string, actionId: string): Promise<void> {
  const event = await agent.eventStart(actionId, 'compute_extend_volume').catch(() => null);
  try {
    const instance = await agent.instance(uuid);
    if (!instance || instance.host !== agent.host) return;
    if (!(instance.block_devices ?? []).some((b) => b.volume_id === volumeId)) throw new Error(`Volume ${volumeId} is not attached to ${uuid}`);
    const volume = await new VolumeApi(agent.options.client).get(volumeId);
    await agent.driver.extendVolume(uuid, volumeId, volume.size);
    agent.notify('compute.instance.volume.extend', { instance_id: uuid, volume_id: volumeId, size: volume.size });
    await agent.eventFinish(event);
  } catch (err) {
    agent.options.log.warn({ err, instance_uuid: uuid, volume_id: volumeId }, 'could not extend a volume in its guest');
    await agent.eventFinish(event, err).catch(() => undefined);
  }
}
