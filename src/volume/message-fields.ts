/**
 * Cinder's user-message codes (`cinder/message/message_field.py`): a
 * message names a resource type, an action and a detail; its `event_id` is
 * `VOLUME_<resource>_<action>_<detail>` and its text is
 * `<action text>: <detail text>`.
 */
export const MessageResource = {
  VOLUME: 'VOLUME',
  VOLUME_SNAPSHOT: 'VOLUME_SNAPSHOT',
  VOLUME_BACKUP: 'VOLUME_BACKUP',
} as const;

export const MessageAction = {
  SCHEDULE_ALLOCATE_VOLUME: '001',
  ATTACH_VOLUME: '002',
  COPY_VOLUME_TO_IMAGE: '003',
  UPDATE_ATTACHMENT: '004',
  COPY_IMAGE_TO_VOLUME: '005',
  UNMANAGE_VOLUME: '006',
  EXTEND_VOLUME: '007',
  CREATE_VOLUME_FROM_BACKEND: '008',
  SNAPSHOT_CREATE: '009',
  SNAPSHOT_DELETE: '010',
  SNAPSHOT_UPDATE: '011',
  SNAPSHOT_METADATA_UPDATE: '012',
  BACKUP_CREATE: '013',
  BACKUP_DELETE: '014',
  BACKUP_RESTORE: '015',
} as const;

export const MessageDetail = {
  UNKNOWN_ERROR: '001',
  DRIVER_NOT_INITIALIZED: '002',
  NO_BACKEND_AVAILABLE: '003',
  FAILED_TO_UPLOAD_VOLUME: '004',
  VOLUME_ATTACH_MODE_INVALID: '005',
  QUOTA_EXCEED: '006',
  NOT_ENOUGH_SPACE_FOR_IMAGE: '007',
  UNMANAGE_ENC_NOT_SUPPORTED: '008',
  NOTIFY_COMPUTE_SERVICE_FAILED: '009',
  DRIVER_FAILED_EXTEND: '010',
  SIGNATURE_VERIFICATION_FAILED: '011',
  DRIVER_FAILED_CREATE: '012',
  SNAPSHOT_CREATE_ERROR: '013',
  SNAPSHOT_UPDATE_METADATA_FAILED: '014',
  SNAPSHOT_IS_BUSY: '015',
  SNAPSHOT_DELETE_ERROR: '016',
  BACKUP_INVALID_STATE: '017',
  BACKUP_SERVICE_DOWN: '018',
  BACKUP_CREATE_DEVICE_ERROR: '019',
  BACKUP_CREATE_DRIVER_ERROR: '020',
  ATTACH_ERROR: '021',
  DETACH_ERROR: '022',
  BACKUP_CREATE_CLEANUP_ERROR: '023',
  BACKUP_SCHEDULE_ERROR: '024',
  BACKUP_DELETE_DRIVER_ERROR: '025',
  BACKUP_RESTORE_ERROR: '026',
  VOLUME_INVALID_STATE: '027',
} as const;

/** The texts of the actions, by code. */
export const ACTION_TEXT: Record<string, string> = {
  '001': 'schedule allocate volume',
  '002': 'attach volume',
  '003': 'copy volume to image',
  '004': 'update attachment',
  '005': 'copy image to volume',
  '006': 'unmanage volume',
  '007': 'extend volume',
  '008': 'create volume from backend storage',
  '009': 'create snapshot',
  '010': 'delete snapshot',
  '011': 'update snapshot',
  '012': 'update snapshot metadata',
  '013': 'create backup',
  '014': 'delete backup',
  '015': 'restore backup',
};

/** The texts of the details, by code. */
export const DETAIL_TEXT: Record<string, string> = {
  '001': 'An unknown error occurred.',
  '002': 'Driver is not initialized at present.',
  '003': 'Could not find any available weighted backend.',
  '004': 'Failed to upload volume to image at backend.',
  '005': "Volume's attach mode is invalid.",
  '006': 'Not enough quota resource for operation.',
  '007': 'Image used for creating volume exceeds available space.',
  '008': 'Unmanaging encrypted volumes is not supported.',
  '009': 'Compute service failed to extend volume.',
  '010': 'Volume Driver failed to extend volume.',
  '011': 'Image signature verification failed.',
  '012': 'Driver failed to create the volume.',
  '013': 'Snapshot failed to create.',
  '014': 'Volume snapshot update metadata failed.',
  '015': 'Snapshot is busy.',
  '016': 'Snapshot failed to delete.',
  '017': 'Backup status is invalid.',
  '018': 'Backup service is down.',
  '019': 'Failed to get backup device from the volume service.',
  '020': 'Backup driver failed to create backup.',
  '021': 'Failed to attach volume.',
  '022': 'Failed to detach volume.',
  '023': 'Cleanup of temporary volume/snapshot failed.',
  '024': 'Backup failed to schedule. Service not found for creating backup.',
  '025': 'Backup driver failed to delete backup.',
  '026': 'Backup driver failed to restore backup.',
  '027': 'Volume status is invalid.',
};

/** Cinder's `event_id` of a message. */
export function messageEventId(resourceType: string, actionId: string, detailId: string): string {
  return `VOLUME_${resourceType}_${actionId}_${detailId}`;
}

/** The `user_message` Cinder shows: `<action>: <detail>`. */
export function userMessage(actionId: string, detailId: string): string {
  return `${ACTION_TEXT[actionId] ?? 'unknown action'}: ${DETAIL_TEXT[detailId] ?? DETAIL_TEXT['001']}`;
}
