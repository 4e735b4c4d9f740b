import { Readable } from 'node:stream';
import type { AgentAction, AgentInstance, AgentMigration, InstanceValues, MigrationValues } from '../rpc.js';
import { AgentRpc } from '../rpc.js';
import { VolumeApi } from '../volume-api.js';
import type { ComputeAgent } from './agent.js';
import { completeBlockDevices, disconnectBlockDevices, moveBlockDevicesHere, prepareBlockDevices, releaseBlockDevices, volumeMappings } from './block-devices.js';

/**
 * The agents' half of moving a server between hosts (Nova's
 * `resize_instance`/`finish_resize`, confirm and revert, shelve, offload,
 * unshelve, live migration). Each step records its action event, moves
 * the task state on only from the state it expects (a server deleted or
 * reset meanwhile is left alone), and on failure gives back what the move
 * took: placement usage, port bindings, the guest on the other host.
 */

type MoveAction = Extract<AgentAction, { kind: 'resize' | 'finish_resize' | 'confirm_resize' | 'revert_resize' | 'finish_revert_resize' | 'shelve' | 'shelve_offload' | 'unshelve' | 'live_migrate' }>;

const MOVE_KINDS: ReadonlySet<string> = new Set(['resize', 'finish_resize', 'confirm_resize', 'revert_resize', 'finish_revert_resize', 'shelve', 'shelve_offload', 'unshelve', 'live_migrate']);

/** True for the actions this module runs. */
export function isMoveAction(action: AgentAction): action is MoveAction {
  return MOVE_KINDS.has(action.kind);
}

const EVENTS: Record<MoveAction['kind'], string> = {
  resize: 'compute_resize_instance',
  finish_resize: 'compute_finish_resize',
  confirm_resize: 'compute_confirm_resize',
  revert_resize: 'compute_revert_resize',
  finish_revert_resize: 'compute_finish_revert_resize',
  shelve: 'compute_shelve_instance',
  shelve_offload: 'compute_shelve_offload_instance',
  unshelve: 'compute_unshelve_instance',
  live_migrate: 'compute_live_migration',
};

/** The move was overtaken (the server was deleted or its task changed): stop quietly. */
class Overtaken extends Error {}

async function migrationOf(agent: ComputeAgent, uuid: string): Promise<AgentMigration> {
  const migration = await agent.conductor.call<AgentMigration | null>('get_migration', { uuid });
  if (!migration) throw new Error(`Migration ${uuid} could not be found.`);
  return migration;
}

function setMigration(agent: ComputeAgent, uuid: string, values: MigrationValues): Promise<void> {
  return agent.conductor.call('update_migration', { uuid, values });
}

function setSystemMetadata(agent: ComputeAgent, uuid: string, values: Record<string, string | null>): Promise<void> {
  return agent.conductor.call('set_system_metadata', { uuid, values });
}

/** Records a change only from the expected task states; a refusal means someone else took the server. */
async function advance(agent: ComputeAgent, uuid: string, values: InstanceValues, expected: (string | null)[]): Promise<void> {
  if (!(await agent.update(uuid, values, expected))) throw new Overtaken();
}

async function powerOf(agent: ComputeAgent, uuid: string): Promise<number> {
  const guests = await agent.driver.listGuests();
  return guests.find((g) => g.uuid === uuid)?.powerState ?? 0;
}

async function hasGuest(agent: ComputeAgent, uuid: string): Promise<boolean> {
  return (await agent.driver.listGuests()).some((g) => g.uuid === uuid);
}

async function fault(agent: ComputeAgent, uuid: string, err: unknown): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  await agent.conductor.call('instance_fault', { uuid, code: 500, message, details: err instanceof Error ? (err.stack ?? '') : '', host: agent.host });
}

/** Runs one step of a move on this host (see `isMoveAction`). */
export async function runMoveAction(agent: ComputeAgent, uuid: string, action: MoveAction, actionId: string): Promise<void> {
  const event = await agent.eventStart(actionId, action.kind === 'unshelve' && action.destination === null ? 'compute_start_instance' : EVENTS[action.kind]);
  const instance = await agent.instance(uuid);
  if (!instance) {
    await agent.eventFinish(event, new Error('the server is gone'));
    return;
  }
  try {
    await STEPS[action.kind](agent, instance, action as never, actionId);
    await agent.eventFinish(event);
  } catch (err) {
    if (err instanceof Overtaken) {
      await agent.eventFinish(event);
      return;
    }
    agent.options.log.warn({ err, instance_uuid: uuid, action: action.kind }, 'server move failed');
    await fault(agent, uuid, err).catch(() => undefined);
    await agent.eventFinish(event, err).catch(() => undefined);
  }
}

type Step<K extends MoveAction['kind']> = (agent: ComputeAgent, instance: AgentInstance, action: Extract<MoveAction, { kind: K }>, actionId: string) => Promise<void>;

/**
 * A cold move failed on a host: the usage the migration held goes back to
 * the server (replacing the destination's claim), the migration is `error`
 * and the server ERROR on the host that still has it, as Nova leaves it.
 */
async function moveFailed(agent: ComputeAgent, instance: AgentInstance, migrationUuid: string, host: string, err: unknown): Promise<void> {
  agent.options.log.warn({ err, instance_uuid: instance.uuid }, 'resize failed');
  await agent.options.placement.moveAllocations(migrationUuid, instance.uuid, instance.project_id, instance.user_id).catch(() => undefined);
  await setMigration(agent, migrationUuid, { status: 'error' });
  await agent.update(instance.uuid, { vm_state: 'error', task_state: null, host, power_state: await powerOf(agent, instance.uuid) });
}

/** Source host of a resize or cold migration: powers the guest off and hands the server to the destination. */
const resize: Step<'resize'> = async (agent, instance, action, actionId) => {
  const uuid = instance.uuid;
  try {
    await advance(agent, uuid, { task_state: 'resize_migrating' }, ['resize_prep']);
    await setMigration(agent, action.migration_uuid, { status: 'migrating' });
    agent.notify('compute.instance.resize.start', { instance_id: uuid, host: agent.host });
    if (!action.same_host) await agent.driver.powerOff(uuid);
    await setMigration(agent, action.migration_uuid, { status: 'post-migrating' });
    await advance(agent, uuid, { task_state: 'resize_migrated' }, ['resize_migrating']);
    agent.notify('compute.instance.resize.end', { instance_id: uuid, host: agent.host });
  } catch (err) {
    if (!(err instanceof Overtaken)) {
      if (!action.same_host && instance.vm_state === 'active') await agent.driver.powerOn(uuid).catch(() => undefined);
      await moveFailed(agent, instance, action.migration_uuid, agent.host, err);
    }
    throw err;
  }
  await new AgentRpc(agent.options.bus).runAction(action.destination.host, {
    instance_uuid: uuid,
    action: { kind: 'finish_resize', migration_uuid: action.migration_uuid, new_flavor: action.new_flavor, destination: action.destination, source_host: agent.host, old_vm_state: action.old_vm_state ?? instance.vm_state },
    action_id: actionId,
  });
};

/** Destination host: builds the guest with the new flavor (powered off when it was) and puts the server in VERIFY_RESIZE. */
const finishResize: Step<'finish_resize'> = async (agent, instance, action) => {
  const uuid = instance.uuid;
  const sameHost = action.source_host === agent.host;
  const ports = instance.network_info.map((v) => v.port_id);
  let spawned = false;
  try {
    await advance(agent, uuid, { task_state: 'resize_finish' }, ['resize_migrated']);
    if (!sameHost) await agent.network.bindPorts(ports, agent.host);
    const blockDevices = !sameHost && volumeMappings(instance.block_devices).length > 0 ? await moveBlockDevicesHere(agent, uuid) : undefined;
    const guest = agent.guestSpec({ ...instance, flavor: action.new_flavor }, instance.network_info, blockDevices);
    if (sameHost) await agent.driver.resize(uuid, guest);
    else {
      await agent.driver.spawn(guest);
      spawned = true;
    }
    if (action.old_vm_state === 'stopped') await agent.driver.powerOff(uuid);
    const order = instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));
    const networkInfo = await agent.network.networkInfo(uuid, order);
    // The migration first: whoever sees VERIFY_RESIZE may confirm at once.
    await setMigration(agent, action.migration_uuid, { status: 'finished' });
    await advance(
      agent,
      uuid,
      { vm_state: 'resized', task_state: null, host: agent.host, node: action.destination.node, flavor: action.new_flavor, old_flavor: instance.flavor, new_flavor: action.new_flavor, power_state: await powerOf(agent, uuid), network_info: networkInfo },
      ['resize_finish'],
    );
    agent.notify('compute.instance.finish_resize.end', { instance_id: uuid, host: agent.host });
  } catch (err) {
    if (!(err instanceof Overtaken)) {
      if (spawned) await agent.driver.destroy(uuid).catch(() => undefined);
      if (!sameHost) await agent.network.bindPorts(ports, action.source_host).catch(() => undefined);
      await moveFailed(agent, instance, action.migration_uuid, action.source_host, err);
    } else if (spawned) await agent.driver.destroy(uuid).catch(() => undefined);
    throw err;
  }
};

/** Source host of a confirmed resize: the old guest and the usage the migration held go. */
const confirmResize: Step<'confirm_resize'> = async (agent, instance, action) => {
  const migration = await migrationOf(agent, action.migration_uuid);
  if (migration.source_compute !== migration.dest_compute) await agent.driver.destroy(instance.uuid);
  await agent.options.placement.deleteAllocations(migration.uuid);
  await setMigration(agent, migration.uuid, { status: 'confirmed' });
  const stopped = instance.system_metadata?.old_vm_state === 'stopped';
  await setSystemMetadata(agent, instance.uuid, { old_vm_state: null });
  await advance(agent, instance.uuid, { vm_state: stopped ? 'stopped' : 'active', task_state: null, old_flavor: null, new_flavor: null }, ['resize_confirming', null]);
  agent.notify('compute.instance.resize.confirm.end', { instance_id: instance.uuid, host: agent.host });
};

/** Destination host of a reverted resize: removes its guest, then the source takes the server back. */
const revertResize: Step<'revert_resize'> = async (agent, instance, action, actionId) => {
  const migration = await migrationOf(agent, action.migration_uuid);
  if (migration.source_compute !== migration.dest_compute) await agent.driver.destroy(instance.uuid);
  agent.notify('compute.instance.resize.revert.start', { instance_id: instance.uuid, host: agent.host });
  await new AgentRpc(agent.options.bus).runAction(migration.source_compute ?? agent.host, { instance_uuid: instance.uuid, action: { kind: 'finish_revert_resize', migration_uuid: migration.uuid }, action_id: actionId });
};

/** Source host of a reverted resize: the old flavor, ports, usage and state come back here. */
const finishRevertResize: Step<'finish_revert_resize'> = async (agent, instance, action) => {
  const uuid = instance.uuid;
  const migration = await migrationOf(agent, action.migration_uuid);
  const old = instance.old_flavor ?? instance.flavor;
  const stopped = instance.system_metadata?.old_vm_state === 'stopped';
  await agent.options.placement.moveAllocations(migration.uuid, uuid, instance.project_id, instance.user_id);
  if (migration.source_compute !== migration.dest_compute) await agent.network.bindPorts(instance.network_info.map((v) => v.port_id), agent.host);
  const blockDevices = migration.source_compute !== migration.dest_compute && volumeMappings(instance.block_devices).length > 0 ? await moveBlockDevicesHere(agent, uuid) : undefined;
  const guest = agent.guestSpec({ ...instance, flavor: old }, instance.network_info, blockDevices);
  if (migration.source_compute === migration.dest_compute || !(await hasGuest(agent, uuid))) {
    if (await hasGuest(agent, uuid)) await agent.driver.resize(uuid, guest);
    else await agent.driver.spawn(guest);
  }
  if (stopped) await agent.driver.powerOff(uuid);
  else await agent.driver.powerOn(uuid);
  const order = instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));
  await setMigration(agent, migration.uuid, { status: 'reverted' });
  await setSystemMetadata(agent, uuid, { old_vm_state: null });
  await advance(
    agent,
    uuid,
    { vm_state: stopped ? 'stopped' : 'active', task_state: null, host: agent.host, node: migration.source_node ?? agent.host, flavor: old, old_flavor: null, new_flavor: null, power_state: await powerOf(agent, uuid), network_info: await agent.network.networkInfo(uuid, order) },
    ['resize_reverting'],
  );
  agent.notify('compute.instance.resize.revert.end', { instance_id: uuid, host: agent.host });
};

/** Shelve: powers off, uploads the snapshot (when the root disk is local), SHELVED; offloads at once when configured so. */
const shelve: Step<'shelve'> = async (agent, instance, action) => {
  const uuid = instance.uuid;
  try {
    agent.notify('compute.instance.shelve.start', { instance_id: uuid, host: agent.host });
    await agent.driver.powerOff(uuid);
    if (action.image_id) {
      await advance(agent, uuid, { task_state: 'shelving_image_pending_upload' }, ['shelving']);
      await advance(agent, uuid, { task_state: 'shelving_image_uploading' }, ['shelving_image_pending_upload']);
      await uploadDisk(agent, uuid, action.image_id);
      await setSystemMetadata(agent, uuid, { shelved_at: new Date().toISOString(), shelved_image_id: action.image_id, shelved_host: agent.host });
    } else await setSystemMetadata(agent, uuid, { shelved_at: new Date().toISOString(), shelved_host: agent.host });
    await advance(agent, uuid, { vm_state: 'shelved', task_state: action.offload ? 'shelving_offloading' : null, power_state: await powerOf(agent, uuid) }, ['shelving', 'shelving_image_uploading']);
    agent.notify('compute.instance.shelve.end', { instance_id: uuid, host: agent.host });
  } catch (err) {
    if (!(err instanceof Overtaken)) {
      if (instance.vm_state === 'active') await agent.driver.powerOn(uuid).catch(() => undefined);
      await agent.update(uuid, { task_state: null, power_state: await powerOf(agent, uuid) });
    }
    throw err;
  }
  if (action.offload) await offload(agent, { ...instance, vm_state: 'shelved' }, ['shelving_offloading']);
};

/** Offload: the guest goes, the ports are unbound, the claim freed; SHELVED_OFFLOADED with no host. */
async function offload(agent: ComputeAgent, instance: AgentInstance, expected: string[]): Promise<void> {
  const uuid = instance.uuid;
  try {
    agent.notify('compute.instance.shelve_offload.start', { instance_id: uuid, host: agent.host });
    await agent.driver.destroy(uuid);
    await agent.network.bindPorts(
      instance.network_info.map((v) => v.port_id),
      '',
    );
    if (volumeMappings(instance.block_devices).length > 0) await disconnectBlockDevices(agent, uuid);
    // Freed before the state changes, so that whoever sees SHELVED_OFFLOADED also sees the room.
    await agent.options.placement.deleteAllocations(uuid);
    await advance(agent, uuid, { vm_state: 'shelved_offloaded', task_state: null, host: null, node: null, power_state: 4 }, expected);
    agent.notify('compute.instance.shelve_offload.end', { instance_id: uuid });
  } catch (err) {
    if (!(err instanceof Overtaken)) await agent.update(uuid, { task_state: null });
    throw err;
  }
}

const shelveOffload: Step<'shelve_offload'> = (agent, instance) => offload(agent, instance, ['shelving_offloading', 'shelving']);

/**
 * Unshelve on this host: a SHELVED server is powered on; an offloaded one
 * is built from its snapshot with its ports bound here. The snapshot is
 * deleted either way. A failed build leaves the server offloaded.
 */
const unshelve: Step<'unshelve'> = async (agent, instance, action) => {
  const uuid = instance.uuid;
  const snapshot = instance.system_metadata?.shelved_image_id;
  const done = async (values: InstanceValues, expected: string[]): Promise<void> => {
    await advance(agent, uuid, { ...values, vm_state: 'active', task_state: null, power_state: await powerOf(agent, uuid) }, expected);
    if (snapshot) await agent.options.client.request('image', 'DELETE', `/v2/images/${snapshot}`).catch((err: unknown) => agent.options.log.warn({ err, instance_uuid: uuid }, 'could not delete the shelved image'));
    await setSystemMetadata(agent, uuid, { shelved_at: null, shelved_image_id: null, shelved_host: null });
    agent.notify('compute.instance.unshelve.end', { instance_id: uuid, host: agent.host });
  };
  if (action.destination === null) {
    await advance(agent, uuid, { task_state: 'powering-on' }, ['unshelving']);
    await agent.driver.powerOn(uuid);
    await done({}, ['powering-on']);
    return;
  }
  const ports = instance.network_info.map((v) => v.port_id);
  let spawned = false;
  try {
    agent.notify('compute.instance.unshelve.start', { instance_id: uuid, host: agent.host });
    await advance(agent, uuid, { task_state: 'spawning' }, ['unshelving']);
    await agent.network.bindPorts(ports, agent.host);
    const order = instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));
    const networkInfo = await agent.network.networkInfo(uuid, order);
    const withVolumes = volumeMappings(instance.block_devices).length > 0;
    // The volumes are connected to this host again (the offload left them reserved).
    const blockDevices = withVolumes ? await prepareBlockDevices(agent, instance, undefined) : [];
    await agent.driver.spawn(agent.guestSpec({ ...instance, image_ref: snapshot ?? instance.image_ref }, networkInfo, blockDevices));
    spawned = true;
    if (withVolumes) await completeBlockDevices(agent, uuid);
    await done({ network_info: networkInfo, host: agent.host, node: action.destination.node }, ['spawning']);
  } catch (err) {
    if (spawned) await agent.driver.destroy(uuid).catch(() => undefined);
    if (volumeMappings(instance.block_devices).length > 0) {
      await releaseBlockDevices(agent, uuid);
      await reserveAgain(agent, uuid);
    }
    if (!(err instanceof Overtaken)) {
      await agent.network.bindPorts(ports, '').catch(() => undefined);
      await agent.options.placement.deleteAllocations(uuid).catch(() => undefined);
      await agent.update(uuid, { task_state: null, host: null, node: null });
    }
    throw err;
  }
};

/** After a failed unshelve: each volume reserved for the server again (it stays offloaded with its volumes). */
async function reserveAgain(agent: ComputeAgent, uuid: string): Promise<void> {
  const volumes = new VolumeApi(agent.options.client);
  for (const bdm of volumeMappings((await agent.instance(uuid))?.block_devices)) {
    if (!bdm.volume_id || bdm.attachment_id) continue;
    const reservation = await volumes.createAttachment(bdm.volume_id, uuid).catch(() => null);
    if (reservation) await agent.conductor.call('update_bdm', { id: bdm.id, values: { attachment_id: reservation } });
  }
}

/**
 * Source host of a live migration: binds the ports to the destination,
 * has the destination start the guest, removes it here and frees the
 * source usage the migration held. On failure the server stays here,
 * running, with its usage and ports back.
 */
const liveMigrate: Step<'live_migrate'> = async (agent, instance, action, actionId) => {
  const uuid = instance.uuid;
  const dest = action.destination;
  const ports = instance.network_info.map((v) => v.port_id);
  try {
    await setMigration(agent, action.migration_uuid, { status: 'preparing' });
    agent.notify('compute.instance.live_migration.pre.start', { instance_id: uuid, host: agent.host, destination: dest.host });
    await agent.network.bindPorts(ports, dest.host);
    await setMigration(agent, action.migration_uuid, { status: 'running' });
    await new AgentRpc(agent.options.bus).receiveLiveMigration(dest.host, { instance_uuid: uuid, migration_uuid: action.migration_uuid, action_id: actionId });
  } catch (err) {
    await agent.network.bindPorts(ports, agent.host).catch(() => undefined);
    await agent.options.placement.moveAllocations(action.migration_uuid, uuid, instance.project_id, instance.user_id).catch(() => undefined);
    await setMigration(agent, action.migration_uuid, { status: 'error' });
    await agent.update(uuid, { task_state: null }, ['migrating']);
    throw err;
  }
  await setMigration(agent, action.migration_uuid, { status: 'post-migrating' });
  await agent.driver.destroy(uuid);
  await agent.options.placement.deleteAllocations(action.migration_uuid);
  const order = instance.network_info.map((v) => ({ portId: v.port_id, created: !v.preserve_on_delete, tag: v.tag }));
  const networkInfo = await agent.network.networkInfo(uuid, order);
  await setMigration(agent, action.migration_uuid, { status: 'completed' });
  await agent.update(uuid, { host: dest.host, node: dest.node, task_state: null, network_info: networkInfo }, ['migrating']);
  agent.notify('compute.instance.live_migration._post.end', { instance_id: uuid, host: dest.host });
};

/** Destination host of a live migration: the guest starts here in the state it had (the fake and QEMU drivers copy nothing yet). */
export async function receiveLiveMigration(agent: ComputeAgent, uuid: string, actionId: string): Promise<void> {
  const event = await agent.eventStart(actionId, 'compute_post_live_migration_at_destination');
  try {
    const instance = await agent.instance(uuid);
    if (!instance) throw new Error('the server is gone');
    const blockDevices = volumeMappings(instance.block_devices).length > 0 ? await moveBlockDevicesHere(agent, uuid) : undefined;
    await agent.driver.spawn(agent.guestSpec(instance, instance.network_info, blockDevices));
    if (instance.vm_state === 'paused') await agent.driver.pause(uuid);
    await agent.update(uuid, { power_state: await powerOf(agent, uuid) });
    await agent.eventFinish(event);
  } catch (err) {
    await agent.driver.destroy(uuid).catch(() => undefined);
    await agent.eventFinish(event, err);
    throw err;
  }
}

const STEPS: { [K in MoveAction['kind']]: Step<K> } = {
  resize,
  finish_resize: finishResize,
  confirm_resize: confirmResize,
  revert_resize: revertResize,
  finish_revert_resize: finishRevertResize,
  shelve,
  shelve_offload: shelveOffload,
  unshelve,
  live_migrate: liveMigrate,
};

/** Offloads this host's servers shelved longer than `shelved_offload_time` (Nova's `_poll_shelved_instances`). */
export async function offloadExpiredShelved(agent: ComputeAgent): Promise<void> {
  const after = agent.options.config.shelved_offload_time;
  if (after <= 0) return;
  const instances = await agent.conductor.call<AgentInstance[]>('instances_on_host', { host: agent.host });
  for (const instance of instances) {
    const at = instance.system_metadata?.shelved_at;
    if (instance.vm_state !== 'shelved' || instance.task_state !== null || !at || Date.parse(at) + after * 1000 > Date.now()) continue;
    if (!(await agent.update(instance.uuid, { task_state: 'shelving_offloading' }, [null]))) continue;
    await offload(agent, instance, ['shelving_offloading']).catch((err: unknown) => agent.options.log.warn({ err, instance_uuid: instance.uuid }, 'offload failed'));
  }
}

/**
 * Uploads the guest's disk to the (queued) image, streamed (never whole in
 * memory), with the image's disk_format set to what the driver captured.
 * A driver without disk data (fake) uploads an empty raw disk. What the
 * capture left on the host is removed whatever the outcome.
 */
export async function uploadDisk(agent: ComputeAgent, uuid: string, imageId: string): Promise<void> {
  const disk = await agent.driver.snapshot(uuid);
  const client = agent.options.client;
  try {
    const patch = await client.request('image', 'PATCH', `/v2/images/${imageId}`, {
      body: JSON.stringify([{ op: 'replace', path: '/disk_format', value: disk?.diskFormat ?? 'raw' }]),
      raw: true,
      headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
    });
    if (patch.status >= 400) throw new Error(`could not prepare snapshot image ${imageId}: ${patch.status}`);
    if (!disk) {
      const res = await client.request('image', 'PUT', `/v2/images/${imageId}/file`, { body: new Uint8Array(0), raw: true, headers: { 'Content-Type': 'application/octet-stream' } });
      if (res.status >= 400) throw new Error(`could not upload snapshot image ${imageId}: ${res.status}`);
      return;
    }
    const base = await client.endpoint('image');
    const res = await fetch(`${base}/v2/images/${encodeURIComponent(imageId)}/file`, {
      method: 'PUT',
      headers: { 'X-Auth-Token': await client.token(), 'Content-Type': 'application/octet-stream', 'User-Agent': 'stratus-compute-agent' },
      body: Readable.toWeb(disk.data) as unknown as RequestInit['body'],
      duplex: 'half',
    } as RequestInit & { duplex: 'half' });
    const text = await res.text().catch(() => '');
    if (res.status >= 400) throw new Error(`could not upload snapshot image ${imageId}: ${res.status} ${text.slice(0, 200)}`);
  } finally {
    disk?.data.destroy();
    await disk?.cleanup().catch((err: unknown) => agent.options.log.warn({ err, instance_uuid: uuid }, 'could not remove the snapshot file'));
  }
}
