import { invalidVolume, notFound } from '../errors.js';
import { uploadToImage } from '../volume-upload.js';
import { deleteImageMetadataItem, imageMetadata, setImageMetadata, volumeTarget } from '../volumes.js';
import { atLeast, authorize } from '../volume.js';
import { argsObject, type ActionHandler } from './volume-action-types.js';
import { booleanField, enumField, metadataField, stringField } from './volume-input.js';

/**
 * The image actions of `POST /volumes/{id}/action`: `os-volume_upload_image`
 * and the volume's image metadata (`os-set_image_metadata`,
 * `os-unset_image_metadata`, `os-show_image_metadata`).
 */

const DISK_FORMATS = ['raw', 'vmdk', 'vdi', 'qcow2', 'vhd', 'vhdx', 'ploop'] as const;
const VISIBILITIES = ['community', 'public', 'private', 'shared'] as const;

/** Cinder refuses image metadata changes of a volume in maintenance or being uploaded. */
function checkEditable(status: string, verb: 'Updating' | 'Deleting'): void {
  if (status === 'maintenance' || status === 'uploading') throw invalidVolume(`${verb} volume metadata is not allowed for volumes in ${status} status.`);
}

export const imageActions: Record<string, ActionHandler> = {
  async 'os-volume_upload_image'(volume, action) {
    const v31 = atLeast(action.req, '3.1');
    const args = argsObject(action, 'os-volume_upload_image', ['image_name', 'force', 'disk_format', 'container_format', ...(v31 ? ['visibility', 'protected'] : [])], ['image_name']);
    const name = stringField('image_name', args.image_name, { min: 1, max: 255 }) ?? '';
    if (args.force !== undefined) booleanField('force', args.force);
    const diskFormat = args.disk_format === undefined ? 'raw' : (enumField('disk_format', args.disk_format, DISK_FORMATS) ?? 'raw');
    const containerFormat = args.container_format === undefined || args.container_format === null ? 'bare' : (stringField('container_format', args.container_format, { max: 255, nullable: true }) ?? 'bare');
    const visibility = v31 ? (args.visibility === undefined ? 'private' : enumField('visibility', args.visibility, VISIBILITIES)) : null;
    const isProtected = v31 ? (args.protected === undefined ? false : booleanField('protected', args.protected)) : null;
    const row = await action.load();
    authorize(volume, action.ctx, 'volume_extension:volume_actions:upload_image');
    if (visibility === 'public') authorize(volume, action.ctx, 'volume_extension:volume_actions:upload_public');
    // `force` (uploading an in-use volume) is off, as Cinder's `enable_force_upload` default: the volume must be available.
    const body = await uploadToImage(volume, action.ctx, row, { name, diskFormat, containerFormat, visibility, protected: isProtected });
    return { status: 202, body: { 'os-volume_upload_image': body } };
  },

  async 'os-set_image_metadata'(volume, action) {
    const args = argsObject(action, 'os-set_image_metadata', ['metadata'], ['metadata']);
    const metadata = metadataField('metadata', args.metadata, { maxValue: 65535 });
    const row = await action.load();
    authorize(volume, action.ctx, 'volume_extension:volume_image_metadata:set', volumeTarget(row));
    checkEditable(row.status, 'Updating');
    return { status: 200, body: { metadata: await setImageMetadata(volume.db, row.id, metadata) } };
  },

  async 'os-unset_image_metadata'(volume, action) {
    const args = argsObject(action, 'os-unset_image_metadata', ['key'], ['key']);
    const key = stringField('key', args.key, { min: 1, max: 255 }) ?? '';
    const row = await action.load();
    authorize(volume, action.ctx, 'volume_extension:volume_image_metadata:remove', volumeTarget(row));
    const metadata = await imageMetadata(volume.db, row.id);
    if (!Object.hasOwn(metadata, key)) throw notFound(`Glance metadata for volume/snapshot ${row.id} cannot be found.`);
    checkEditable(row.status, 'Deleting');
    await deleteImageMetadataItem(volume.db, row.id, key);
    return { status: 200 };
  },

  async 'os-show_image_metadata'(volume, action) {
    const row = await action.load();
    authorize(volume, action.ctx, 'volume:get_volume_metadata', volumeTarget(row));
    return { status: 200, body: { metadata: await imageMetadata(volume.db, row.id) } };
  },
};
