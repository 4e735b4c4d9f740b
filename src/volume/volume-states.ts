/**
 * The statuses of volumes and snapshots, written down once: which ones an
 * operation may start from, as Cinder's API checks them.
 */

/** Every volume status (Cinder's `VolumeStatus.ALL`), the values `os-reset_status` accepts. */
export const VOLUME_STATUSES = [
  'creating',
  'available',
  'deleting',
  'error',
  'error_deleting',
  'error_managing',
  'managing',
  'attaching',
  'in-use',
  'detaching',
  'maintenance',
  'restoring-backup',
  'error_restoring',
  'reserved',
  'awaiting-transfer',
  'backing-up',
  'error_backing-up',
  'error_extending',
  'downloading',
  'uploading',
  'retyping',
  'extending',
] as const;

/** The attach statuses `os-reset_status` accepts. */
export const RESET_ATTACH_STATUSES = ['attached', 'detached'] as const;

/** Every migration status (Cinder's `VolumeMigrationStatus.ALL`). */
export const MIGRATION_STATUSES = ['migrating', 'error', 'success', 'completing', 'none', 'starting'] as const;

/** Every snapshot status (Cinder's `SnapshotStatus.ALL`). */
export const SNAPSHOT_STATUSES = ['error', 'available', 'creating', 'deleting', 'deleted', 'updating', 'error_deleting', 'unmanaging', 'backing-up', 'restoring'] as const;

/** A volume may be deleted (without `force`) from these. */
export const DELETABLE = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];

/** With `cascade`, the volume's snapshots must be in these (without `force`). */
export const CASCADE_SNAPSHOT_STATUSES = ['available', 'error', 'deleting'];

/** A snapshot may be deleted (without `force`) from these. */
export const SNAPSHOT_DELETABLE = ['available', 'error'];

/** A snapshot may be taken of a volume in these (`in-use` with `force`, or from 3.66). */
export const SNAPSHOTTABLE = ['available'];
export const SNAPSHOTTABLE_IN_USE = ['available', 'in-use'];

/** `os-update_snapshot_status`: from a status, the ones a snapshot may be moved to. */
export const SNAPSHOT_STATUS_UPDATES: Record<string, string[]> = {
  creating: ['creating', 'available', 'error'],
  deleting: ['deleting', 'error_deleting'],
};

/** A volume may be cloned (source) from these. */
export const CLONABLE = ['available', 'in-use'];

/**
 * A new attachment (3.27) may reserve a volume in these: `available`,
 * `downloading` (boot from volume while the image is copied), and
 * `in-use` for a multiattach volume.
 */
export function reservable(multiattach: boolean): string[] {
  return multiattach ? ['available', 'in-use', 'downloading'] : ['available', 'downloading'];
}

/** The legacy `os-reserve` takes a volume from these to `attaching`. */
export function legacyReservable(multiattach: boolean): string[] {
  return multiattach ? ['available', 'in-use'] : ['available'];
}

/**
 * A volume's status and attach status from its remaining attachments (Cinder's
 * `_get_statuses_from_attachments`): attached > attaching > detaching >
 * reserved, errors ignored; none left is `available`/`detached`.
 */
export function statusFromAttachments(attachStatuses: string[]): { status: string; attach_status: string } {
  const order = ['attached', 'attaching', 'detaching', 'reserved'];
  const present = attachStatuses.filter((s) => !s.startsWith('error_')).sort();
  const first = present.length > 0 ? order.find((s) => present.includes(s)) ?? present[0] ?? 'detached' : 'detached';
  const status = ({ attached: 'in-use', detached: 'available' } as Record<string, string>)[first] ?? first;
  return { status, attach_status: first };
}
