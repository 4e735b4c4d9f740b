/**
 * Row types of the volume database (see migrations.ts). Booleans are
 * integers (0/1) and structured values JSON text, so that SQLite, PostgreSQL
 * and MySQL store them alike; times are ISO 8601 strings. Rows are deleted
 * for real when their resource goes (Cinder soft-deletes; we keep nothing a
 * user cannot see again).
 */
export interface VolumeSchema {
  service: ServiceRow;
  volume: VolumeRow;
  volume_metadata: { volume_id: string; key: string; value: string };
  /** Admin metadata (`readonly`, `attached_mode`, ...), never shown to users. */
  volume_admin_metadata: { volume_id: string; key: string; value: string };
  /** The image a volume came from (`volume_image_metadata`); on a snapshot's row, `snapshot_id` is set and `volume_id` is ''. */
  volume_glance_metadata: { volume_id: string; snapshot_id: string; key: string; value: string };
  snapshot: SnapshotRow;
  snapshot_metadata: { snapshot_id: string; key: string; value: string };
  volume_type: VolumeTypeRow;
  volume_type_extra_spec: { volume_type_id: string; key: string; value: string };
  volume_type_project: { volume_type_id: string; project_id: string };
  qos_specs: QosSpecsRow;
  qos_spec_item: { qos_specs_id: string; key: string; value: string };
  attachment: AttachmentRow;
  /** A project's own limits (Cinder's `quotas`). */
  quota: { project_id: string; resource: string; hard_limit: number };
  /** Class limits (`default` is the only class used). */
  quota_class: { class_name: string; resource: string; hard_limit: number };
  /** User messages (Block Storage 3.3 `/messages`): why an operation failed. */
  message: MessageRow;
  /** Volume transfers (`os-volume-transfer`, `volume-transfers`): pending until accepted or deleted. */
  transfer: TransferRow;
  /** A project's own default volume type (Block Storage 3.62 `/default-types`). */
  default_volume_type: { project_id: string; volume_type_id: string; created_at: string; updated_at: string | null };
  /** A volume type's encryption (`/types/{id}/encryption`). */
  volume_type_encryption: { volume_type_id: string; encryption_id: string; provider: string; cipher: string | null; key_size: number | null; control_location: string; created_at: string; updated_at: string | null };
  /** Group types (3.11 `/group_types`). */
  group_type: GroupTypeRow;
  group_type_spec: { group_type_id: string; key: string; value: string };
  /** Projects on a private group type's access list. */
  group_type_project: { group_type_id: string; project_id: string };
  /** Generic volume groups (3.13 `/groups`; `group` is an SQL keyword). */
  volume_group: GroupRow;
  /** The volume types a group takes. */
  group_volume_type: { group_id: string; volume_type_id: string };
  /** Group snapshots (3.14 `/group_snapshots`): one snapshot per volume of the group carries its id. */
  group_snapshot: GroupSnapshotRow;
  /** Volume backups (`/backups`), kept in object storage by the backup driver. */
  backup: BackupRow;
  /** A backup's metadata (3.43). */
  backup_metadata: { backup_id: string; key: string; value: string };
}

export interface BackupRow {
  id: string;
  project_id: string;
  user_id: string;
  /** The volume backed up (`00000000-0000-0000-0000-000000000000` for an imported record). */
  volume_id: string;
  /** The snapshot backed up, when the backup was made from one. */
  snapshot_id: string | null;
  /** The backup service host (`<host>`) that made it, or last worked on it. */
  host: string | null;
  availability_zone: string | null;
  display_name: string | null;
  display_description: string | null;
  /** The object storage container. */
  container: string | null;
  /** creating, available, deleting, error, error_deleting, restoring. */
  status: string;
  fail_reason: string | null;
  /** What the driver needs to find the backup's objects again (JSON: account and object prefix). */
  service_metadata: string | null;
  /** The backup driver that made it (`cinder.backup.drivers.swift.SwiftBackupDriver`, ...). */
  service: string | null;
  /** GiB of the volume when backed up. */
  size: number;
  /** Data objects this backup wrote. */
  object_count: number;
  /** The backup an incremental backup builds on. */
  parent_id: string | null;
  /** Incremental backups built on this one (it cannot be deleted while they exist). */
  num_dependent_backups: number;
  /** When the data was as backed up (the snapshot's creation for a backup of a snapshot). */
  data_timestamp: string | null;
  /** The volume a restore in progress writes to. */
  restore_volume_id: string | null;
  encryption_key_id: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface GroupTypeRow {
  id: string;
  name: string;
  description: string | null;
  is_public: number;
  created_at: string;
  updated_at: string | null;
}

export interface GroupRow {
  id: string;
  project_id: string;
  user_id: string;
  /** `host@backend#pool` its volumes go to, once scheduled. */
  host: string | null;
  availability_zone: string;
  name: string | null;
  description: string | null;
  /** creating, available, updating, deleting, error, error_deleting, in-use. */
  status: string;
  group_type_id: string;
  group_snapshot_id: string | null;
  source_group_id: string | null;
  replication_status: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface GroupSnapshotRow {
  id: string;
  group_id: string;
  project_id: string;
  user_id: string;
  name: string | null;
  description: string | null;
  /** creating, available, deleting, error, error_deleting. */
  status: string;
  group_type_id: string;
  created_at: string;
  updated_at: string | null;
}

export interface TransferRow {
  id: string;
  volume_id: string;
  /** The giving project. */
  project_id: string;
  display_name: string | null;
  salt: string;
  /** HMAC-SHA1 of the auth key keyed with the salt, hex (as Cinder keeps it); the key itself is never stored. */
  crypt_hash: string;
  /** 3.55: the volume goes without its snapshots, which stay with the giver. */
  no_snapshots: number;
  created_at: string;
  updated_at: string | null;
}

export interface ServiceRow {
  id: number;
  /** `<host>` for the scheduler, `<host>@<backend>` for a volume agent. */
  host: string;
  /** `cinder-volume` or `cinder-scheduler`. */
  binary: string;
  topic: string;
  availability_zone: string;
  disabled: number;
  disabled_reason: string | null;
  frozen: number;
  /** The backend's last report (JSON: capacity and capabilities of each pool), for the scheduler. */
  capabilities: string | null;
  last_seen_up: string | null;
  report_count: number;
  created_at: string;
  updated_at: string | null;
}

export interface VolumeRow {
  id: string;
  project_id: string;
  user_id: string;
  /** `<host>@<backend>#<pool>` once scheduled. */
  host: string | null;
  size: number;
  availability_zone: string;
  /** creating, available, reserved, attaching, in-use, detaching, deleting, error, error_deleting, extending, error_extending, retyping, uploading, downloading, maintenance, backing-up, restoring-backup, awaiting-transfer. */
  status: string;
  /** detached, attaching, attached, detaching, error_attaching, error_detaching. */
  attach_status: string;
  migration_status: string | null;
  display_name: string | null;
  display_description: string | null;
  volume_type_id: string;
  source_volid: string | null;
  snapshot_id: string | null;
  /** The image a create from image copies (null otherwise). */
  image_id: string | null;
  bootable: number;
  multiattach: number;
  encryption_key_id: string | null;
  /** Where the driver keeps the volume (the file's path for `file`). */
  provider_location: string | null;
  previous_status: string | null;
  replication_status: string | null;
  group_id: string | null;
  /** Each attempted backend of a create (JSON list), so a reschedule does not try one twice. */
  scheduling_attempts: string | null;
  created_at: string;
  updated_at: string | null;
  launched_at: string | null;
}

export interface SnapshotRow {
  id: string;
  volume_id: string;
  project_id: string;
  user_id: string;
  /** creating, available, deleting, error, error_deleting, restoring, backing-up, unmanaging. */
  status: string;
  progress: string;
  volume_size: number;
  display_name: string | null;
  display_description: string | null;
  volume_type_id: string;
  provider_location: string | null;
  group_snapshot_id: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface VolumeTypeRow {
  id: string;
  name: string;
  description: string | null;
  is_public: number;
  qos_specs_id: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface QosSpecsRow {
  id: string;
  name: string;
  /** `front-end`, `back-end` or `both`. */
  consumer: string;
  created_at: string;
  updated_at: string | null;
}

export interface AttachmentRow {
  id: string;
  volume_id: string;
  project_id: string;
  instance_uuid: string | null;
  attached_host: string | null;
  mountpoint: string | null;
  /** reserved, attaching, attached, detaching, detached, error_attaching, error_detaching. */
  attach_status: string;
  /** `rw` or `ro`. */
  attach_mode: string;
  /** The host's connector (JSON), once the attachment is connected. */
  connector: string | null;
  /** What the driver handed out for the connector (JSON). */
  connection_info: string | null;
  attach_time: string | null;
  detach_time: string | null;
  created_at: string;
  updated_at: string | null;
}

export interface MessageRow {
  id: string;
  project_id: string;
  request_id: string | null;
  /** VOLUME, SNAPSHOT, ... */
  resource_type: string;
  resource_uuid: string | null;
  /** Cinder's event id, e.g. `VOLUME_VOLUME_001_002`. */
  event_id: string;
  message_level: string;
  /** Cinder's action and detail codes (`001`, `002`, ...). */
  action_id: string;
  detail_id: string;
  created_at: string;
  expires_at: string;
}
