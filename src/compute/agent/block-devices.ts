import type { AgentBdm, AgentInstance } from '../rpc.js';
import type { GuestBlockDevice } from '../virt/driver.js';
import { VolumeApi, type VolumeConnector } from '../volume-api.js';
import type { ComputeAgent } from './agent.js';

/**
 * A server's volumes on its host (Nova's `virt/block_device.py`, small):
 * before a build spawns, volumes to be made (from an image, a snapshot, or
 * blank) are created in the user's project and waited for, each volume is
 * reserved when it is not yet, connected to this host and, once the guest
 * runs, its attachment completed (`in-use`). When a server goes, its
 * attachments are deleted and the volumes marked `delete_on_termination`
 * with them.
 */

/** How long a new volume may take to become `available` (Nova's `block_device_allocate_retries` x interval). */
const CREATE_TIMEOUT_MS = 180_000;

/** This host's connector (os-brick's, small). */
export function hostConnector(agent: ComputeAgent, mountpoint?: string | null): VolumeConnector {
  return { host: agent.host, platform: process.arch, os_type: process.platform, multipath: false, ...(mountpoint ? { mountpoint } : {}) };
}

/** The mappings that are volumes, root first. */
export function volumeMappings(bdms: AgentBdm[] | undefined): AgentBdm[] {
  return (bdms ?? []).filter((b) => b.destination_type === undefined || b.destination_type === 'volume');
}

/** The connected volumes of a server as its driver gets them. */
export function guestBlockDevices(bdms: AgentBdm[] | undefined): GuestBlockDevice[] {
  return volumeMappings(bdms)
    .filter((b) => b.volume_id && b.connection_info)
    .map((b) => ({ volumeId: b.volume_id ?? '', device: b.device_name ?? '', bootIndex: b.boot_index ?? null, connectionInfo: parseInfo(b.connection_info) }));
}

function parseInfo(text: string | null): Record<string, unknown> {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for a new volume to leave `creating`/`downloading`; throws Nova's `VolumeNotCreated` unless it is `available`. */
async function waitCreated(volumes: VolumeApi, volumeId: string): Promise<void> {
  const start = Date.now();
  let attempts = 0;
  let status = 'creating';
  for (let delay = 20; Date.now() - start < CREATE_TIMEOUT_MS; delay = Math.min(delay * 2, 1000)) {
    attempts++;
    status = (await volumes.get(volumeId)).status;
    if (status === 'available') return;
    if (status !== 'creating' && status !== 'downloading') break;
    await sleep(delay);
  }
  const seconds = Math.round((Date.now() - start) / 1000);
  throw new Error(`Volume ${volumeId} did not finish being created even after we waited ${seconds} seconds or ${attempts} attempts. And its status is ${status}.`);
}

/** Makes the volume of a mapping that has none yet (`image`, `snapshot` or `blank` source) in the user's project, and records it. */
async function createVolume(agent: ComputeAgent, volumes: VolumeApi, instance: AgentInstance, bdm: AgentBdm, userToken: string | undefined): Promise<string> {
  if (!userToken) throw new Error(`block device mapping ${bdm.id} needs a new volume, and no user token came with the request to make it`);
  const size = bdm.volume_size ?? 0;
  const spec =
    bdm.source_type === 'image'
      ? { size, name: '', imageRef: bdm.image_id ?? '' }
      : bdm.source_type === 'snapshot'
        ? { size, name: '', snapshot_id: bdm.snapshot_id ?? '' }
        : { size, name: `${instance.uuid}-blank-vol` };
  const volumeId = await volumes.createVolume({ ...spec, ...(bdm.volume_type ? { volume_type: bdm.volume_type } : {}) }, userToken);
  // Recorded at once, so that a delete meanwhile (or a failure) finds the volume to clean up.
  await agent.conductor.call('update_bdm', { id: bdm.id, values: { volume_id: volumeId } });
  bdm.volume_id = volumeId;
  await waitCreated(volumes, volumeId);
  return volumeId;
}

/**
 * Prepares a server's volumes on this host before it spawns: each missing
 * volume made and waited for, each volume reserved (when a previous host
 * released it) and connected to this host. Returns what the driver attaches;
 * `completeBlockDevices` finishes the attachments once the guest runs. On
 * failure what was connected here stays recorded for `releaseBlockDevices`.
 */
export async function prepareBlockDevices(agent: ComputeAgent, instance: AgentInstance, userToken: string | undefined): Promise<GuestBlockDevice[]> {
  const volumes = new VolumeApi(agent.options.client);
  const bdms = volumeMappings(await agent.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: instance.uuid }));
  const devices: GuestBlockDevice[] = [];
  for (const bdm of bdms) {
    const volumeId = bdm.volume_id ?? (await createVolume(agent, volumes, instance, bdm, userToken));
    if (!bdm.attachment_id) {
      bdm.attachment_id = await volumes.createAttachment(volumeId, instance.uuid, userToken);
      await agent.conductor.call('update_bdm', { id: bdm.id, values: { attachment_id: bdm.attachment_id } });
    }
    const info = await volumes.updateAttachment(bdm.attachment_id, hostConnector(agent, bdm.device_name));
    await agent.conductor.call('update_bdm', { id: bdm.id, values: { connection_info: JSON.stringify(info) } });
    devices.push({ volumeId, device: bdm.device_name ?? '', bootIndex: bdm.boot_index ?? null, connectionInfo: info });
  }
  return devices;
}

/** Marks the connected volumes `in-use` (the guest has them). */
export async function completeBlockDevices(agent: ComputeAgent, uuid: string): Promise<void> {
  const volumes = new VolumeApi(agent.options.client);
  for (const bdm of volumeMappings(await agent.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: uuid }))) {
    if (bdm.attachment_id && bdm.connection_info) await volumes.completeAttachment(bdm.attachment_id);
  }
}

/**
 * Undoes `prepareBlockDevices` after a failed build: each attachment
 * deleted (the volume is free again; a host that builds the server next
 * reserves it anew) and forgotten. Volumes stay, for the server's delete to
 * remove those marked `delete_on_termination`. Never throws.
 */
export async function releaseBlockDevices(agent: ComputeAgent, uuid: string): Promise<void> {
  const volumes = new VolumeApi(agent.options.client);
  try {
    for (const bdm of volumeMappings(await agent.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: uuid }))) {
      if (!bdm.attachment_id) continue;
      await volumes.deleteAttachment(bdm.attachment_id);
      await agent.conductor.call('update_bdm', { id: bdm.id, values: { attachment_id: null, connection_info: null } });
    }
  } catch (err) {
    agent.options.log.warn({ err, instance_uuid: uuid }, 'could not release the volumes of a failed build');
  }
}

/**
 * A server leaves this host without another (shelve offload): each
 * connected attachment is replaced by a reservation without a host (the
 * volume stays the server's, `reserved`), as Nova's
 * `_terminate_volume_connections` does. The next host connects it again.
 * Failures are logged, not thrown.
 */
export async function disconnectBlockDevices(agent: ComputeAgent, uuid: string): Promise<void> {
  const volumes = new VolumeApi(agent.options.client);
  for (const bdm of volumeMappings(await agent.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: uuid }))) {
    if (!bdm.volume_id || !bdm.attachment_id) continue;
    try {
      const reservation = await volumes.createAttachment(bdm.volume_id, uuid);
      await volumes.deleteAttachment(bdm.attachment_id);
      await agent.conductor.call('update_bdm', { id: bdm.id, values: { attachment_id: reservation, connection_info: null } });
    } catch (err) {
      // The offload goes on: the volume stays connected to this host until the server is unshelved or deleted.
      agent.options.log.warn({ err, instance_uuid: uuid, volume_id: bdm.volume_id }, 'could not disconnect a volume of an offloaded server');
    }
  }
}

/**
 * A server's volumes follow it to this host (a resize or migration, its
 * revert, a live migration): as Nova does, each connected attachment is
 * first replaced by a reservation (the block storage service connects a
 * volume that is not multiattach to one host at a time), which is then
 * connected here and completed. Returns what the driver attaches; a failure
 * is thrown (the move fails) with the volume still reserved for the server.
 */
export async function moveBlockDevicesHere(agent: ComputeAgent, uuid: string): Promise<GuestBlockDevice[]> {
  const volumes = new VolumeApi(agent.options.client);
  const devices: GuestBlockDevice[] = [];
  for (const bdm of volumeMappings(await agent.conductor.call<AgentBdm[]>('get_bdms', { instance_uuid: uuid }))) {
    if (!bdm.volume_id) continue;
    const fresh = await volumes.createAttachment(bdm.volume_id, uuid);
    if (bdm.attachment_id) await volumes.deleteAttachment(bdm.attachment_id);
    await agent.conductor.call('update_bdm', { id: bdm.id, values: { attachment_id: fresh, connection_info: null } });
    const info = await volumes.updateAttachment(fresh, hostConnector(agent, bdm.device_name));
    await volumes.completeAttachment(fresh);
    await agent.conductor.call('update_bdm', { id: bdm.id, values: { connection_info: JSON.stringify(info) } });
    devices.push({ volumeId: bdm.volume_id, device: bdm.device_name ?? '', bootIndex: bdm.boot_index ?? null, connectionInfo: info });
  }
  return devices;
}
