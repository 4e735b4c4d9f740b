import { EndpointNotFound } from '../../core/auth/service-client.js';
import { BackupRpc } from '../backup/rpc.js';
import { DriverUserError, type DriverSnapshot, type DriverUpdate, type DriverVolume } from '../drivers/driver.js';
import { MessageAction, MessageDetail, MessageResource } from '../message-fields.js';
import type { AgentSnapshot, AgentVolume, CreateRequest, VolumeValues } from '../rpc.js';
import type { VolumeAgent } from './agent.js';
import { fetchImage, imageMetadata, openImageData, uploadImageData } from './images.js';

/**
 * What a volume agent does for each `AgentRpc` cast. Every operation ends by
 * recording its outcome through the conductor: success (with the `.end`
 * notification) or the error state Cinder uses for it, plus a user message.
 * The status is recorded last, so that whoever waits for it finds the rest
 * (user message, image metadata) in place. Once the agent is stopped an
 * operation stops reporting (as after a crash).
 */

/** The driver's view of a volume. */
export function toDriverVolume(v: Pick<AgentVolume, 'id' | 'size' | 'provider_location'>): DriverVolume {
  return { id: v.id, size: v.size, provider_location: v.provider_location };
}

/** The driver's view of a snapshot. */
export function toDriverSnapshot(s: AgentSnapshot): DriverSnapshot {
  return { id: s.id, volume_id: s.volume_id, volume_size: s.volume_size, provider_location: s.provider_location };
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function message(agent: VolumeAgent, projectId: string, resourceType: string, resourceId: string, actionId: string, detailId: string, requestId?: string): Promise<void> {
  await agent.conductor
    .addMessage({ project_id: projectId, resource_type: resourceType, resource_uuid: resourceId, action_id: actionId, detail_id: detailId, ...(requestId ? { request_id: requestId } : {}) })
    .catch((err: unknown) => agent.warn(err, 'could not record a user message', { resource_uuid: resourceId }));
}

/**
 * Creates a volume on this backend from its source. On failure the partial
 * volume is removed and the conductor told: rescheduled to another backend
 * unless the failure is the request's own (an image that does not fit or
 * cannot be read), which puts the volume in `error` with a user message.
 */
export async function createVolume(agent: VolumeAgent, req: CreateRequest & { host: string }): Promise<void> {
  const volume: DriverVolume = { id: req.volume_id, size: req.size, provider_location: null };
  const driver = agent.driver;
  const values: VolumeValues = {};
  try {
    let update: DriverUpdate;
    const source = req.source;
    switch (source.kind) {
      case 'empty':
        update = await driver.createVolume(volume);
        break;
      case 'image': {
        const image = await fetchImage(agent.options.client, source.image_id, req.request_id).catch((err: unknown) => {
          throw new DriverUserError(errorText(err));
        });
        update = await driver.createFromImage(volume, image, () => openImageData(agent.options.client, image.id));
        values.image_metadata = imageMetadata(image);
        values.bootable = true;
        break;
      }
      case 'snapshot':
        update = await driver.createFromSnapshot(volume, { id: source.snapshot_id, volume_id: source.volume_id, volume_size: req.size, provider_location: source.provider_location });
        break;
      case 'volume':
        update = await driver.createClone(volume, { id: source.volume_id, size: req.size, provider_location: source.provider_location });
        break;
      case 'backup': {
        // An empty volume, then this host's backup service restores into it and ends the create (the volume stays `creating` until then).
        update = await driver.createVolume(volume);
        const location = update.provider_location ?? null;
        if (!(await agent.updateVolume(req.volume_id, { host: req.host, provider_location: location }))) throw new Error(`Volume ${req.volume_id} is gone.`);
        await new BackupRpc(agent.options.bus).restoreBackup(agent.host.split('@')[0] ?? agent.host, {
          backup: source.backup,
          volume: { id: req.volume_id, size: req.size, host: req.host, provider_location: location, project_id: req.project_id },
          volume_is_new: true,
          user_token: source.user_token,
          ...(req.request_id ? { request_id: req.request_id } : {}),
        });
        return;
      }
      default: {
        const never: never = source;
        throw new Error(`unknown volume source ${JSON.stringify(never)}`);
      }
    }
    const applied = await agent.updateVolume(req.volume_id, { ...values, status: 'available', host: req.host, provider_location: update.provider_location ?? null, launched_at: new Date().toISOString() }, 'volume.create.end');
    if (!applied) {
      // Deleted or failed meanwhile (e.g. by a restart's recovery): what was made belongs to nobody.
      await driver.deleteVolume({ ...volume, provider_location: update.provider_location ?? null }).catch((err: unknown) => agent.warn(err, 'could not remove an unwanted volume', { volume_id: volume.id }));
    }
  } catch (err) {
    if (agent.isStopped) return;
    await driver.deleteVolume(volume).catch((e: unknown) => agent.warn(e, 'could not remove a partial volume', { volume_id: volume.id }));
    const reason = errorText(err);
    agent.warn(err, 'volume create failed', { volume_id: volume.id });
    if (err instanceof DriverUserError) {
      const detail = err.reason === 'image_too_big' ? MessageDetail.NOT_ENOUGH_SPACE_FOR_IMAGE : MessageDetail.UNKNOWN_ERROR;
      await message(agent, req.project_id, MessageResource.VOLUME, volume.id, MessageAction.COPY_IMAGE_TO_VOLUME, detail, req.request_id);
      await agent.conductor.createFailed(req, reason, false);
    } else {
      await agent.conductor.createFailed(req, reason, true);
    }
  } finally {
    agent.changed();
  }
}

/** Deletes a volume's data, then its record; `error_deleting` when the driver fails. */
export async function deleteVolume(agent: VolumeAgent, volume: AgentVolume): Promise<void> {
  try {
    await agent.driver.deleteVolume(toDriverVolume(volume));
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'volume delete failed', { volume_id: volume.id });
    await agent.conductor.volumeUpdate(volume.id, { status: 'error_deleting' });
    return;
  } finally {
    agent.changed();
  }
  await agent.conductor.volumeDeleted(volume.id);
}

/**
 * Grows a volume. When it is attached, compute is told afterwards
 * (`volume-extended` for each server), so the guest sees the new size.
 */
export async function extendVolume(agent: VolumeAgent, volume: AgentVolume, newSize: number, attached: boolean): Promise<void> {
  try {
    await agent.driver.extendVolume(toDriverVolume(volume), newSize);
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'volume extend failed', { volume_id: volume.id });
    await message(agent, volume.project_id, MessageResource.VOLUME, volume.id, MessageAction.EXTEND_VOLUME, MessageDetail.DRIVER_FAILED_EXTEND);
    await agent.conductor.volumeUpdate(volume.id, { status: 'error_extending' });
    return;
  } finally {
    agent.changed();
  }
  await agent.conductor.volumeUpdate(volume.id, { status: attached ? 'in-use' : 'available', size: newSize }, 'volume.resize.end');
  if (attached) await notifyCompute(agent, volume);
}

/** `POST /os-server-external-events` `volume-extended` for every server the volume is attached to (when the cloud has compute). */
async function notifyCompute(agent: VolumeAgent, volume: AgentVolume): Promise<void> {
  const servers = await agent.attachedInstances(volume.id);
  if (servers.length === 0) return;
  try {
    const res = await agent.options.client.request('compute', 'POST', '/os-server-external-events', {
      body: { events: servers.map((server) => ({ name: 'volume-extended', server_uuid: server, tag: volume.id })) },
      headers: { 'OpenStack-API-Version': 'compute 2.51', 'X-OpenStack-Nova-API-Version': '2.51' },
    });
    if (res.status >= 400) throw new Error(`compute answered ${res.status}`);
  } catch (err) {
    if (err instanceof EndpointNotFound) return;
    if (agent.isStopped) return;
    agent.warn(err, 'could not tell compute that a volume was extended', { volume_id: volume.id });
    await message(agent, volume.project_id, MessageResource.VOLUME, volume.id, MessageAction.EXTEND_VOLUME, MessageDetail.NOTIFY_COMPUTE_SERVICE_FAILED);
  }
}

/** Takes a snapshot; `error` (partial data removed) with a user message on failure. */
export async function createSnapshot(agent: VolumeAgent, volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
  let update: DriverUpdate;
  try {
    update = await agent.driver.createSnapshot(toDriverSnapshot(snapshot), toDriverVolume(volume));
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'snapshot create failed', { snapshot_id: snapshot.id });
    await agent.driver.deleteSnapshot(toDriverSnapshot(snapshot)).catch(() => undefined);
    await message(agent, volume.project_id, MessageResource.VOLUME_SNAPSHOT, snapshot.id, MessageAction.SNAPSHOT_CREATE, MessageDetail.SNAPSHOT_CREATE_ERROR);
    await agent.conductor.snapshotUpdate(snapshot.id, { status: 'error' });
    return;
  } finally {
    agent.changed();
  }
  await agent.conductor.snapshotUpdate(snapshot.id, { status: 'available', progress: '100%', provider_location: update.provider_location ?? null }, 'snapshot.create.end');
}

/** Deletes a snapshot's data, then its record; `error_deleting` when the driver fails. */
export async function deleteSnapshot(agent: VolumeAgent, volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
  try {
    await agent.driver.deleteSnapshot(toDriverSnapshot(snapshot));
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'snapshot delete failed', { snapshot_id: snapshot.id });
    await message(agent, volume.project_id, MessageResource.VOLUME_SNAPSHOT, snapshot.id, MessageAction.SNAPSHOT_DELETE, MessageDetail.SNAPSHOT_DELETE_ERROR);
    await agent.conductor.snapshotUpdate(snapshot.id, { status: 'error_deleting' });
    return;
  } finally {
    agent.changed();
  }
  await agent.conductor.snapshotDeleted(snapshot.id);
}

/** Puts a snapshot's content back into its volume; on failure the volume is `error` and the snapshot `available` again (as Cinder). */
export async function revertToSnapshot(agent: VolumeAgent, volume: AgentVolume, snapshot: AgentSnapshot): Promise<void> {
  try {
    await agent.driver.revertToSnapshot(toDriverVolume(volume), toDriverSnapshot(snapshot));
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'revert to snapshot failed', { volume_id: volume.id, snapshot_id: snapshot.id });
    await agent.conductor.volumeUpdate(volume.id, { status: 'error' });
    await agent.conductor.snapshotUpdate(snapshot.id, { status: 'available' });
    return;
  }
  await agent.conductor.volumeUpdate(volume.id, { status: 'available' }, 'volume.revert.end');
  await agent.conductor.snapshotUpdate(snapshot.id, { status: 'available' });
}

/**
 * Streams the volume's content (converted to the image's disk format) into
 * an image that waits in `queued`. The volume goes back to `restoreStatus`
 * either way; on failure a user message is recorded and the image deleted.
 */
export async function copyVolumeToImage(agent: VolumeAgent, volume: AgentVolume, image: { id: string; disk_format: string; container_format: string }, restoreStatus: string): Promise<void> {
  try {
    const data = await agent.driver.copyToImage(toDriverVolume(volume), image.disk_format);
    try {
      await uploadImageData(agent.options.client, image.id, data);
    } finally {
      data.destroy();
    }
  } catch (err) {
    if (agent.isStopped) return;
    agent.warn(err, 'upload to image failed', { volume_id: volume.id, image_id: image.id });
    await message(agent, volume.project_id, MessageResource.VOLUME, volume.id, MessageAction.COPY_VOLUME_TO_IMAGE, MessageDetail.FAILED_TO_UPLOAD_VOLUME);
    await agent.options.client.request('image', 'DELETE', `/v2/images/${encodeURIComponent(image.id)}`).catch(() => undefined);
    await agent.conductor.volumeUpdate(volume.id, { status: restoreStatus });
    return;
  }
  await agent.conductor.volumeUpdate(volume.id, { status: restoreStatus });
}
