import type { Kysely, Migration } from 'kysely';

const uuid = 'varchar(36)';
const time = 'varchar(32)';
const name = 'varchar(255)';

/**
 * The compute service's schema (Nova's API and cell databases in one), as
 * versioned migrations. Never edit a shipped one: add the next.
 *
 * Integer ids that the API shows (services, hypervisors, aggregates,
 * migrations) are handed out by the code (`nextId`), so that every dialect
 * behaves alike.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('service')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('uuid', uuid, (c) => c.notNull().unique())
        .addColumn('host', name, (c) => c.notNull())
        .addColumn('binary', 'varchar(64)', (c) => c.notNull())
        .addColumn('topic', 'varchar(64)', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('disabled_reason', name)
        .addColumn('forced_down', 'integer', (c) => c.notNull())
        .addColumn('last_seen_up', time)
        .addColumn('report_count', 'integer', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .addUniqueConstraint('service_host_binary', ['host', 'binary'])
        .execute();
      await db.schema
        .createTable('compute_node')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('uuid', uuid, (c) => c.notNull().unique())
        .addColumn('service_id', 'integer', (c) => c.notNull())
        .addColumn('host', name, (c) => c.notNull())
        .addColumn('hypervisor_hostname', name, (c) => c.notNull().unique())
        .addColumn('hypervisor_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('hypervisor_version', 'integer', (c) => c.notNull())
        .addColumn('host_ip', 'varchar(64)', (c) => c.notNull())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('local_gb', 'integer', (c) => c.notNull())
        .addColumn('cpu_info', 'text', (c) => c.notNull())
        .addColumn('capabilities', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('flavor')
        .addColumn('flavorid', name, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull().unique())
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('root_gb', 'integer', (c) => c.notNull())
        .addColumn('ephemeral_gb', 'integer', (c) => c.notNull())
        .addColumn('swap', 'integer', (c) => c.notNull())
        .addColumn('rxtx_factor', 'real', (c) => c.notNull())
        .addColumn('is_public', 'integer', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('flavor_extra_spec')
        .addColumn('flavorid', name, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('flavor_extra_spec_pk', ['flavorid', 'key'])
        .execute();
      await db.schema
        .createTable('flavor_project')
        .addColumn('flavorid', name, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('flavor_project_pk', ['flavorid', 'project_id'])
        .execute();
      await db.schema
        .createTable('key_pair')
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('type', 'varchar(16)', (c) => c.notNull())
        .addColumn('fingerprint', name, (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('key_pair_pk', ['user_id', 'name'])
        .execute();
      await db.schema
        .createTable('instance')
        .addColumn('uuid', uuid, (c) => c.primaryKey())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('display_name', name, (c) => c.notNull())
        .addColumn('display_description', 'text')
        .addColumn('hostname', name, (c) => c.notNull())
        .addColumn('host', name)
        .addColumn('node', name)
        .addColumn('availability_zone', name)
        .addColumn('vm_state', 'varchar(32)', (c) => c.notNull())
        .addColumn('task_state', 'varchar(64)')
        .addColumn('power_state', 'integer', (c) => c.notNull())
        .addColumn('flavor', 'text', (c) => c.notNull())
        .addColumn('old_flavor', 'text')
        .addColumn('new_flavor', 'text')
        .addColumn('vcpus', 'integer', (c) => c.notNull())
        .addColumn('memory_mb', 'integer', (c) => c.notNull())
        .addColumn('image_ref', name, (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('key_name', name)
        .addColumn('key_data', 'text')
        .addColumn('user_data', 'text')
        .addColumn('config_drive', 'varchar(8)', (c) => c.notNull())
        .addColumn('access_ip_v4', 'varchar(64)')
        .addColumn('access_ip_v6', 'varchar(64)')
        .addColumn('locked', 'integer', (c) => c.notNull())
        .addColumn('locked_by', 'varchar(16)')
        .addColumn('locked_reason', 'text')
        .addColumn('progress', 'integer', (c) => c.notNull())
        .addColumn('reservation_id', 'varchar(32)', (c) => c.notNull())
        .addColumn('launch_index', 'integer', (c) => c.notNull())
        .addColumn('root_device_name', name)
        .addColumn('security_groups', 'text', (c) => c.notNull())
        .addColumn('network_info', 'text', (c) => c.notNull())
        .addColumn('request_spec', 'text', (c) => c.notNull())
        .addColumn('trusted_certs', 'text')
        .addColumn('launched_at', time)
        .addColumn('terminated_at', time)
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull())
        .addColumn('deleted_at', time)
        .execute();
      await db.schema.createIndex('instance_project').on('instance').columns(['project_id', 'deleted']).execute();
      await db.schema.createIndex('instance_host').on('instance').columns(['host', 'deleted']).execute();
      await db.schema.createIndex('instance_updated').on('instance').columns(['updated_at']).execute();
      await db.schema
        .createTable('instance_metadata')
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('instance_metadata_pk', ['instance_uuid', 'key'])
        .execute();
      await db.schema
        .createTable('instance_tag')
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('tag', 'varchar(80)', (c) => c.notNull())
        .addPrimaryKeyConstraint('instance_tag_pk', ['instance_uuid', 'tag'])
        .execute();
      await db.schema
        .createTable('instance_fault')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('code', 'integer', (c) => c.notNull())
        .addColumn('message', name, (c) => c.notNull())
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('host', name)
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instance_fault_instance').on('instance_fault').columns(['instance_uuid']).execute();
      await db.schema
        .createTable('instance_action')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('request_id', name, (c) => c.notNull())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('action', 'varchar(64)', (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('message', name)
        .addColumn('start_time', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('instance_action_instance').on('instance_action').columns(['instance_uuid', 'request_id']).execute();
      await db.schema
        .createTable('instance_action_event')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('action_id', uuid, (c) => c.notNull())
        .addColumn('event', 'varchar(64)', (c) => c.notNull())
        .addColumn('start_time', time, (c) => c.notNull())
        .addColumn('finish_time', time)
        .addColumn('result', 'varchar(32)')
        .addColumn('traceback', 'text')
        .addColumn('host', name)
        .addColumn('details', 'text')
        .execute();
      await db.schema.createIndex('instance_action_event_action').on('instance_action_event').columns(['action_id']).execute();
      await db.schema
        .createTable('instance_group')
        .addColumn('uuid', uuid, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('policy', 'varchar(32)', (c) => c.notNull())
        .addColumn('rules', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('instance_group_member')
        .addColumn('group_uuid', uuid, (c) => c.notNull())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addPrimaryKeyConstraint('instance_group_member_pk', ['group_uuid', 'instance_uuid'])
        .execute();
      await db.schema.createIndex('instance_group_member_instance').on('instance_group_member').columns(['instance_uuid']).execute();
      await db.schema
        .createTable('quota')
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('resource', 'varchar(64)', (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_pk', ['project_id', 'user_id', 'resource'])
        .execute();
      await db.schema
        .createTable('quota_class')
        .addColumn('class_name', name, (c) => c.notNull())
        .addColumn('resource', 'varchar(64)', (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_class_pk', ['class_name', 'resource'])
        .execute();
      await db.schema
        .createTable('aggregate')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('uuid', uuid, (c) => c.notNull().unique())
        .addColumn('name', name, (c) => c.notNull().unique())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('aggregate_host')
        .addColumn('aggregate_id', 'integer', (c) => c.notNull())
        .addColumn('host', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('aggregate_host_pk', ['aggregate_id', 'host'])
        .execute();
      await db.schema
        .createTable('aggregate_metadata')
        .addColumn('aggregate_id', 'integer', (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('aggregate_metadata_pk', ['aggregate_id', 'key'])
        .execute();
      await db.schema
        .createTable('migration')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('uuid', uuid, (c) => c.notNull().unique())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('migration_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('source_compute', name)
        .addColumn('source_node', name)
        .addColumn('dest_compute', name)
        .addColumn('dest_node', name)
        .addColumn('dest_host', name)
        .addColumn('old_flavorid', name)
        .addColumn('new_flavorid', name)
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('migration_instance').on('migration').columns(['instance_uuid']).execute();
      await db.schema
        .createTable('block_device_mapping')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('source_type', 'varchar(16)', (c) => c.notNull())
        .addColumn('destination_type', 'varchar(16)', (c) => c.notNull())
        .addColumn('boot_index', 'integer')
        .addColumn('device_name', name)
        .addColumn('device_type', 'varchar(16)')
        .addColumn('disk_bus', 'varchar(16)')
        .addColumn('guest_format', 'varchar(16)')
        .addColumn('image_id', uuid)
        .addColumn('volume_id', uuid)
        .addColumn('snapshot_id', uuid)
        .addColumn('volume_size', 'integer')
        .addColumn('volume_type', name)
        .addColumn('delete_on_termination', 'integer', (c) => c.notNull())
        .addColumn('tag', name)
        .addColumn('attachment_id', uuid)
        .addColumn('connection_info', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('block_device_mapping_instance').on('block_device_mapping').columns(['instance_uuid']).execute();
      await db.schema
        .createTable('virtual_interface')
        .addColumn('port_id', uuid, (c) => c.primaryKey())
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('network_id', uuid, (c) => c.notNull())
        .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
        .addColumn('tag', name)
        .addColumn('created_by_compute', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('virtual_interface_instance').on('virtual_interface').columns(['instance_uuid']).execute();
    },
  },
  /** Nova's `instance_system_metadata`: what compute keeps about a server for itself (shelved image, state before a resize). */
  '0002_instance_system_metadata': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('instance_system_metadata')
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('instance_system_metadata_pk', ['instance_uuid', 'key'])
        .execute();
    },
  },
  /** `OS-DCF:diskConfig` of a server: AUTO (grow the root partition to the disk) or MANUAL. */
  '0003_instance_disk_config': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('instance').addColumn('disk_config', 'varchar(8)', (c) => c.notNull().defaultTo('MANUAL')).execute();
    },
  },
  /**
   * Nova's `console_auth_tokens`: one row per console URL handed out. Only
   * the SHA-256 of the token is kept; `expires` is in Unix seconds.
   */
  '0004_console_auth_tokens': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('console_auth_tokens')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('console_type', name, (c) => c.notNull())
        .addColumn('host', name, (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('internal_access_path', name)
        .addColumn('instance_uuid', uuid, (c) => c.notNull())
        .addColumn('expires', 'integer', (c) => c.notNull())
        .addColumn('access_url_base', 'varchar(1024)')
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('console_auth_tokens_instance_uuid').on('console_auth_tokens').columns(['instance_uuid']).execute();
      await db.schema.createIndex('console_auth_tokens_expires').on('console_auth_tokens').columns(['expires']).execute();
    },
  },
};
