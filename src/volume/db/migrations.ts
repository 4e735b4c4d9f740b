import type { Kysely, Migration } from 'kysely';

const uuid = 'varchar(36)';
const time = 'varchar(32)';
const name = 'varchar(255)';

/**
 * The volume service's schema, as versioned migrations. Never edit a
 * shipped one: add the next. Service ids are handed out by the code, so that
 * every dialect behaves alike.
 */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('service')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('host', name, (c) => c.notNull())
        .addColumn('binary', 'varchar(64)', (c) => c.notNull())
        .addColumn('topic', 'varchar(64)', (c) => c.notNull())
        .addColumn('availability_zone', name, (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('disabled_reason', name)
        .addColumn('frozen', 'integer', (c) => c.notNull())
        .addColumn('capabilities', 'text')
        .addColumn('last_seen_up', time)
        .addColumn('report_count', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .addUniqueConstraint('service_host_binary', ['host', 'binary'])
        .execute();
      await db.schema
        .createTable('volume')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('host', name)
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('availability_zone', name, (c) => c.notNull())
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('attach_status', 'varchar(32)', (c) => c.notNull())
        .addColumn('migration_status', 'varchar(32)')
        .addColumn('display_name', name)
        .addColumn('display_description', 'text')
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addColumn('source_volid', uuid)
        .addColumn('snapshot_id', uuid)
        .addColumn('image_id', uuid)
        .addColumn('bootable', 'integer', (c) => c.notNull())
        .addColumn('multiattach', 'integer', (c) => c.notNull())
        .addColumn('encryption_key_id', uuid)
        .addColumn('provider_location', 'text')
        .addColumn('previous_status', 'varchar(32)')
        .addColumn('replication_status', 'varchar(32)')
        .addColumn('group_id', uuid)
        .addColumn('scheduling_attempts', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .addColumn('launched_at', time)
        .execute();
      await db.schema.createIndex('volume_project').on('volume').columns(['project_id', 'created_at']).execute();
      await db.schema.createIndex('volume_host').on('volume').column('host').execute();
      for (const table of ['volume_metadata', 'volume_admin_metadata']) {
        await db.schema
          .createTable(table)
          .addColumn('volume_id', uuid, (c) => c.notNull())
          .addColumn('key', name, (c) => c.notNull())
          .addColumn('value', name, (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pk`, ['volume_id', 'key'])
          .execute();
      }
      await db.schema
        .createTable('volume_glance_metadata')
        .addColumn('volume_id', uuid, (c) => c.notNull())
        .addColumn('snapshot_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_glance_metadata_pk', ['volume_id', 'snapshot_id', 'key'])
        .execute();
      await db.schema
        .createTable('snapshot')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('volume_id', uuid, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('progress', 'varchar(16)', (c) => c.notNull())
        .addColumn('volume_size', 'integer', (c) => c.notNull())
        .addColumn('display_name', name)
        .addColumn('display_description', 'text')
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addColumn('provider_location', 'text')
        .addColumn('group_snapshot_id', uuid)
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('snapshot_volume').on('snapshot').column('volume_id').execute();
      await db.schema.createIndex('snapshot_project').on('snapshot').columns(['project_id', 'created_at']).execute();
      await db.schema
        .createTable('snapshot_metadata')
        .addColumn('snapshot_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('snapshot_metadata_pk', ['snapshot_id', 'key'])
        .execute();
      await db.schema
        .createTable('volume_type')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull().unique())
        .addColumn('description', 'text')
        .addColumn('is_public', 'integer', (c) => c.notNull())
        .addColumn('qos_specs_id', uuid)
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('volume_type_extra_spec')
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_type_extra_spec_pk', ['volume_type_id', 'key'])
        .execute();
      await db.schema
        .createTable('volume_type_project')
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('volume_type_project_pk', ['volume_type_id', 'project_id'])
        .execute();
      await db.schema
        .createTable('qos_specs')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull().unique())
        .addColumn('consumer', 'varchar(16)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('qos_spec_item')
        .addColumn('qos_specs_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('qos_spec_item_pk', ['qos_specs_id', 'key'])
        .execute();
      await db.schema
        .createTable('attachment')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('volume_id', uuid, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('instance_uuid', uuid)
        .addColumn('attached_host', name)
        .addColumn('mountpoint', name)
        .addColumn('attach_status', 'varchar(32)', (c) => c.notNull())
        .addColumn('attach_mode', 'varchar(4)', (c) => c.notNull())
        .addColumn('connector', 'text')
        .addColumn('connection_info', 'text')
        .addColumn('attach_time', time)
        .addColumn('detach_time', time)
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('attachment_volume').on('attachment').column('volume_id').execute();
      await db.schema
        .createTable('quota')
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('resource', name, (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_pk', ['project_id', 'resource'])
        .execute();
      await db.schema
        .createTable('quota_class')
        .addColumn('class_name', name, (c) => c.notNull())
        .addColumn('resource', name, (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_class_pk', ['class_name', 'resource'])
        .execute();
      await db.schema
        .createTable('message')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('request_id', name)
        .addColumn('resource_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('resource_uuid', uuid)
        .addColumn('event_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('message_level', 'varchar(16)', (c) => c.notNull())
        .addColumn('action_id', 'varchar(8)', (c) => c.notNull())
        .addColumn('detail_id', 'varchar(8)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('expires_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('message_project').on('message').columns(['project_id', 'created_at']).execute();
      await db.schema
        .createTable('transfer')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('volume_id', uuid, (c) => c.notNull().unique())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('display_name', name)
        .addColumn('salt', 'varchar(64)', (c) => c.notNull())
        .addColumn('crypt_hash', 'varchar(255)', (c) => c.notNull())
        .addColumn('no_snapshots', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('transfer_project').on('transfer').columns(['project_id', 'created_at']).execute();
      await db.schema
        .createTable('default_volume_type')
        .addColumn('project_id', name, (c) => c.primaryKey())
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('volume_type_encryption')
        .addColumn('volume_type_id', uuid, (c) => c.primaryKey())
        .addColumn('encryption_id', uuid, (c) => c.notNull())
        .addColumn('provider', name, (c) => c.notNull())
        .addColumn('cipher', name)
        .addColumn('key_size', 'integer')
        .addColumn('control_location', 'varchar(16)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('group_type')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull().unique())
        .addColumn('description', 'text')
        .addColumn('is_public', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema
        .createTable('group_type_spec')
        .addColumn('group_type_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('group_type_spec_pk', ['group_type_id', 'key'])
        .execute();
      await db.schema
        .createTable('group_type_project')
        .addColumn('group_type_id', uuid, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('group_type_project_pk', ['group_type_id', 'project_id'])
        .execute();
      await db.schema
        .createTable('volume_group')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('host', name)
        .addColumn('availability_zone', name, (c) => c.notNull())
        .addColumn('name', name)
        .addColumn('description', 'text')
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('group_type_id', uuid, (c) => c.notNull())
        .addColumn('group_snapshot_id', uuid)
        .addColumn('source_group_id', uuid)
        .addColumn('replication_status', 'varchar(32)')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('volume_group_project').on('volume_group').columns(['project_id', 'created_at']).execute();
      await db.schema.createIndex('volume_group_id').on('volume').column('group_id').execute();
      await db.schema
        .createTable('group_volume_type')
        .addColumn('group_id', uuid, (c) => c.notNull())
        .addColumn('volume_type_id', uuid, (c) => c.notNull())
        .addPrimaryKeyConstraint('group_volume_type_pk', ['group_id', 'volume_type_id'])
        .execute();
      await db.schema
        .createTable('group_snapshot')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('group_id', uuid, (c) => c.notNull())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('name', name)
        .addColumn('description', 'text')
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('group_type_id', uuid, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('group_snapshot_project').on('group_snapshot').columns(['project_id', 'created_at']).execute();
      await db.schema.createIndex('snapshot_group_snapshot').on('snapshot').column('group_snapshot_id').execute();
    },
  },
  '0002_backups': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('backup')
        .addColumn('id', uuid, (c) => c.primaryKey())
        .addColumn('project_id', name, (c) => c.notNull())
        .addColumn('user_id', name, (c) => c.notNull())
        .addColumn('volume_id', uuid, (c) => c.notNull())
        .addColumn('snapshot_id', uuid)
        .addColumn('host', name)
        .addColumn('availability_zone', name)
        .addColumn('display_name', name)
        .addColumn('display_description', 'text')
        .addColumn('container', name)
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('fail_reason', 'text')
        .addColumn('service_metadata', 'text')
        .addColumn('service', name)
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('object_count', 'integer', (c) => c.notNull())
        .addColumn('parent_id', uuid)
        .addColumn('num_dependent_backups', 'integer', (c) => c.notNull())
        .addColumn('data_timestamp', time)
        .addColumn('restore_volume_id', uuid)
        .addColumn('encryption_key_id', uuid)
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time)
        .execute();
      await db.schema.createIndex('backup_project').on('backup').columns(['project_id', 'created_at']).execute();
      await db.schema.createIndex('backup_volume').on('backup').column('volume_id').execute();
      await db.schema.createIndex('backup_parent').on('backup').column('parent_id').execute();
      await db.schema
        .createTable('backup_metadata')
        .addColumn('backup_id', uuid, (c) => c.notNull())
        .addColumn('key', name, (c) => c.notNull())
        .addColumn('value', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('backup_metadata_pk', ['backup_id', 'key'])
        .execute();
    },
  },
};
