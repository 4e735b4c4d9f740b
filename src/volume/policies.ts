import type { RuleDefault } from '../core/policy/index.js';

/**
 * The volume service's default policy: Cinder's current defaults (Zed,
 * `enforce_new_defaults`): an administrator anywhere, a project member, a
 * project reader. Every rule name Cinder registers is here, with its
 * default, so that a Cinder `policy.yaml` applies unchanged
 * (policy_files.volume). Targets carry the resource's `project_id`.
 *
 * Cinder's `admin_api` also admits `is_admin_project:True` tokens; Stratus
 * has no admin project, so it is the admin role, as `context_is_admin`.
 */
const ADMIN = 'rule:admin_api';
const MEMBER_OR_ADMIN = 'rule:xena_system_admin_or_project_member';
const READER_OR_ADMIN = 'rule:xena_system_admin_or_project_reader';

const base: Record<string, string> = {
  context_is_admin: 'role:admin',
  admin_api: 'is_admin:True or rule:context_is_admin',
  xena_system_admin_or_project_reader: '(rule:context_is_admin) or (role:reader and project_id:%(project_id)s)',
  xena_system_admin_or_project_member: '(rule:context_is_admin) or (role:member and project_id:%(project_id)s)',
  // Cinder's legacy names, still referenced by older policy files.
  admin_or_owner: 'is_admin:True or rule:context_is_admin or project_id:%(project_id)s',
  system_or_domain_or_project_admin: '(role:admin and system_scope:all) or (role:admin and domain_id:%(domain_id)s) or (role:admin and project_id:%(project_id)s)',
  default: ADMIN,
};

/** The API's rules, by Cinder's policy module. */
const api: Record<string, string> = {
  // attachments
  'volume:attachment_create': MEMBER_OR_ADMIN,
  'volume:attachment_update': MEMBER_OR_ADMIN,
  'volume:attachment_delete': MEMBER_OR_ADMIN,
  'volume:attachment_complete': MEMBER_OR_ADMIN,
  'volume:multiattach_bootable_volume': MEMBER_OR_ADMIN,
  // messages
  'message:get_all': READER_OR_ADMIN,
  'message:get': READER_OR_ADMIN,
  'message:delete': MEMBER_OR_ADMIN,
  // clusters
  'clusters:get_all': ADMIN,
  'clusters:get': ADMIN,
  'clusters:update': ADMIN,
  // workers
  'workers:cleanup': ADMIN,
  // snapshot-metadata
  'volume:get_snapshot_metadata': READER_OR_ADMIN,
  'volume:update_snapshot_metadata': MEMBER_OR_ADMIN,
  'volume:delete_snapshot_metadata': MEMBER_OR_ADMIN,
  // snapshots
  'volume:get_all_snapshots': READER_OR_ADMIN,
  'volume_extension:extended_snapshot_attributes': READER_OR_ADMIN,
  'volume:create_snapshot': MEMBER_OR_ADMIN,
  'volume:get_snapshot': READER_OR_ADMIN,
  'volume:update_snapshot': MEMBER_OR_ADMIN,
  'volume:delete_snapshot': MEMBER_OR_ADMIN,
  // snapshot-actions
  'volume_extension:snapshot_admin_actions:reset_status': ADMIN,
  'snapshot_extension:snapshot_actions:update_snapshot_status': MEMBER_OR_ADMIN,
  'volume_extension:snapshot_admin_actions:force_delete': ADMIN,
  // manageable-snapshots
  'snapshot_extension:list_manageable': ADMIN,
  'snapshot_extension:snapshot_manage': ADMIN,
  'snapshot_extension:snapshot_unmanage': ADMIN,
  // backups
  'backup:get_all': READER_OR_ADMIN,
  'backup:backup_project_attribute': ADMIN,
  'backup:create': MEMBER_OR_ADMIN,
  'backup:get': READER_OR_ADMIN,
  'backup:update': MEMBER_OR_ADMIN,
  'backup:delete': MEMBER_OR_ADMIN,
  'backup:restore': MEMBER_OR_ADMIN,
  'backup:backup-import': ADMIN,
  'backup:export-import': ADMIN,
  // backup-actions
  'volume_extension:backup_admin_actions:reset_status': ADMIN,
  'volume_extension:backup_admin_actions:force_delete': ADMIN,
  // groups
  'group:get_all': READER_OR_ADMIN,
  'group:create': MEMBER_OR_ADMIN,
  'group:get': READER_OR_ADMIN,
  'group:update': MEMBER_OR_ADMIN,
  'group:group_project_attribute': ADMIN,
  // group-types
  'group:group_types:create': ADMIN,
  'group:group_types:update': ADMIN,
  'group:group_types:delete': ADMIN,
  'group:access_group_types_specs': ADMIN,
  'group:group_types_specs:get': ADMIN,
  'group:group_types_specs:get_all': ADMIN,
  'group:group_types_specs:create': ADMIN,
  'group:group_types_specs:update': ADMIN,
  'group:group_types_specs:delete': ADMIN,
  // group-snapshots
  'group:get_all_group_snapshots': READER_OR_ADMIN,
  'group:create_group_snapshot': MEMBER_OR_ADMIN,
  'group:get_group_snapshot': READER_OR_ADMIN,
  'group:delete_group_snapshot': MEMBER_OR_ADMIN,
  'group:update_group_snapshot': MEMBER_OR_ADMIN,
  'group:group_snapshot_project_attribute': ADMIN,
  // group-snapshot-actions
  'group:reset_group_snapshot_status': ADMIN,
  // group-actions
  'group:delete': MEMBER_OR_ADMIN,
  'group:reset_status': ADMIN,
  'group:enable_replication': MEMBER_OR_ADMIN,
  'group:disable_replication': MEMBER_OR_ADMIN,
  'group:failover_replication': MEMBER_OR_ADMIN,
  'group:list_replication_targets': MEMBER_OR_ADMIN,
  // qos-specs
  'volume_extension:qos_specs_manage:get_all': ADMIN,
  'volume_extension:qos_specs_manage:get': ADMIN,
  'volume_extension:qos_specs_manage:create': ADMIN,
  'volume_extension:qos_specs_manage:update': ADMIN,
  'volume_extension:qos_specs_manage:delete': ADMIN,
  // quota-class
  'volume_extension:quota_classes:get': ADMIN,
  'volume_extension:quota_classes:update': ADMIN,
  // quotas
  'volume_extension:quotas:show': READER_OR_ADMIN,
  'volume_extension:quotas:update': ADMIN,
  'volume_extension:quotas:delete': ADMIN,
  // capabilities
  'volume_extension:capabilities': ADMIN,
  // services
  'volume_extension:services:index': ADMIN,
  'volume_extension:services:update': ADMIN,
  'volume:freeze_host': ADMIN,
  'volume:thaw_host': ADMIN,
  'volume:failover_host': ADMIN,
  // scheduler-stats
  'scheduler_extension:scheduler_stats:get_pools': ADMIN,
  // hosts
  'volume_extension:hosts': ADMIN,
  // limits
  'limits_extension:used_limits': READER_OR_ADMIN,
  // manageable-volumes
  'volume_extension:list_manageable': ADMIN,
  'volume_extension:volume_manage': ADMIN,
  'volume_extension:volume_unmanage': ADMIN,
  // volume-type
  'volume_extension:type_create': ADMIN,
  'volume_extension:type_update': ADMIN,
  'volume_extension:type_delete': ADMIN,
  'volume_extension:type_get': READER_OR_ADMIN,
  'volume_extension:type_get_all': READER_OR_ADMIN,
  'volume_extension:access_types_extra_specs': READER_OR_ADMIN,
  'volume_extension:access_types_qos_specs_id': ADMIN,
  'volume_extension:volume_type_encryption': ADMIN,
  'volume_extension:volume_type_encryption:create': ADMIN,
  'volume_extension:volume_type_encryption:get': ADMIN,
  'volume_extension:volume_type_encryption:update': ADMIN,
  'volume_extension:volume_type_encryption:delete': ADMIN,
  // volume-access
  'volume_extension:volume_type_access': MEMBER_OR_ADMIN,
  'volume_extension:volume_type_access:addProjectAccess': ADMIN,
  'volume_extension:volume_type_access:removeProjectAccess': ADMIN,
  'volume_extension:volume_type_access:get_all_for_type': ADMIN,
  // volume-actions
  'volume:extend': MEMBER_OR_ADMIN,
  'volume:extend_attached_volume': MEMBER_OR_ADMIN,
  'volume_extension:volume_admin_actions:extend_volume_completion': ADMIN,
  'volume:revert_to_snapshot': MEMBER_OR_ADMIN,
  'volume_extension:volume_admin_actions:reset_status': ADMIN,
  'volume:retype': MEMBER_OR_ADMIN,
  'volume:update_readonly_flag': MEMBER_OR_ADMIN,
  'volume_extension:volume_admin_actions:force_delete': ADMIN,
  'volume_extension:volume_actions:upload_public': ADMIN,
  'volume_extension:volume_actions:upload_image': MEMBER_OR_ADMIN,
  'volume_extension:volume_admin_actions:force_detach': ADMIN,
  'volume_extension:volume_admin_actions:migrate_volume': ADMIN,
  'volume_extension:volume_admin_actions:migrate_volume_completion': ADMIN,
  'volume_extension:volume_actions:initialize_connection': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:terminate_connection': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:roll_detaching': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:reserve': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:unreserve': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:begin_detaching': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:attach': MEMBER_OR_ADMIN,
  'volume_extension:volume_actions:detach': MEMBER_OR_ADMIN,
  'volume:reimage': MEMBER_OR_ADMIN,
  'volume:reimage_reserved': MEMBER_OR_ADMIN,
  // volume-transfer
  'volume:get_all_transfers': READER_OR_ADMIN,
  'volume:create_transfer': MEMBER_OR_ADMIN,
  'volume:get_transfer': READER_OR_ADMIN,
  'volume:accept_transfer': MEMBER_OR_ADMIN,
  'volume:delete_transfer': MEMBER_OR_ADMIN,
  // volume-metadata
  'volume:get_volume_metadata': READER_OR_ADMIN,
  'volume:create_volume_metadata': MEMBER_OR_ADMIN,
  'volume:update_volume_metadata': MEMBER_OR_ADMIN,
  'volume:delete_volume_metadata': MEMBER_OR_ADMIN,
  'volume_extension:volume_image_metadata:show': READER_OR_ADMIN,
  'volume_extension:volume_image_metadata:set': MEMBER_OR_ADMIN,
  'volume_extension:volume_image_metadata:remove': MEMBER_OR_ADMIN,
  'volume:update_volume_admin_metadata': ADMIN,
  // type-extra-specs
  'volume_extension:types_extra_specs:index': READER_OR_ADMIN,
  'volume_extension:types_extra_specs:create': ADMIN,
  'volume_extension:types_extra_specs:show': READER_OR_ADMIN,
  'volume_extension:types_extra_specs:read_sensitive': ADMIN,
  'volume_extension:types_extra_specs:update': ADMIN,
  'volume_extension:types_extra_specs:delete': ADMIN,
  // volumes
  'volume:create': MEMBER_OR_ADMIN,
  'volume:create_from_image': MEMBER_OR_ADMIN,
  'volume:get': READER_OR_ADMIN,
  'volume:get_all': READER_OR_ADMIN,
  'volume:update': MEMBER_OR_ADMIN,
  'volume:delete': MEMBER_OR_ADMIN,
  'volume:force_delete': ADMIN,
  'volume_extension:volume_host_attribute': ADMIN,
  'volume_extension:volume_tenant_attribute': READER_OR_ADMIN,
  'volume_extension:volume_mig_status_attribute': ADMIN,
  'volume_extension:volume_encryption_metadata': READER_OR_ADMIN,
  'volume:multiattach': MEMBER_OR_ADMIN,
  // default-types
  'volume_extension:default_set_or_update': ADMIN,
  'volume_extension:default_get': ADMIN,
  'volume_extension:default_get_all': ADMIN,
  'volume_extension:default_unset': ADMIN,
  // rules Cinder deprecated in favour of finer ones (still honoured in policy files that name them)
  'volume_extension:types_manage': ADMIN,
  'volume_extension:quota_classes': ADMIN,
  'volume_extension:volume_image_metadata': MEMBER_OR_ADMIN,
  'group:group_types_manage': ADMIN,
  'group:group_types_specs': ADMIN,
};

/** Every default rule of the volume service, for the `PolicyEnforcer`. */
export const volumePolicyDefaults: RuleDefault[] = [
  ...Object.entries(base).map(([name, checkStr]) => ({ name, checkStr })),
  ...Object.entries(api).map(([name, checkStr]) => ({ name, checkStr })),
];
