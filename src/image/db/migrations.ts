import type { ColumnDefinitionBuilder, Kysely, Migration } from 'kysely';
import { seedMetadefs } from '../metadefs/seed.js';

const id = 'varchar(64)';
const time = 'varchar(32)';

/** The image service's schema, as versioned migrations. Never edit a shipped one: add the next. */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('image')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(255)')
        .addColumn('disk_format', 'varchar(20)')
        .addColumn('container_format', 'varchar(20)')
        .addColumn('size', 'bigint')
        .addColumn('virtual_size', 'bigint')
        .addColumn('status', 'varchar(30)', (c) => c.notNull())
        .addColumn('visibility', 'varchar(20)', (c) => c.notNull())
        .addColumn('checksum', 'varchar(32)')
        .addColumn('os_hash_algo', 'varchar(64)')
        .addColumn('os_hash_value', 'varchar(128)')
        .addColumn('min_disk', 'integer', (c) => c.notNull())
        .addColumn('min_ram', 'integer', (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull())
        .addColumn('os_hidden', 'integer', (c) => c.notNull())
        .addColumn('owner', 'varchar(255)')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('deleted_at', time)
        .addColumn('worker', 'varchar(255)')
        .execute();
      await db.schema.createIndex('image_owner').on('image').columns(['owner', 'deleted_at']).execute();
      await db.schema.createIndex('image_visibility').on('image').columns(['visibility', 'deleted_at']).execute();
      await db.schema.createIndex('image_created').on('image').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('image_checksum').on('image').column('checksum').execute();
      await db.schema
        .createTable('image_property')
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('image.id').onDelete('cascade'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('image_property_pk', ['image_id', 'name'])
        .execute();
      await db.schema.createIndex('image_property_name').on('image_property').columns(['name', 'image_id']).execute();
      await db.schema
        .createTable('image_tag')
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('image.id').onDelete('cascade'))
        .addColumn('value', 'varchar(255)', (c) => c.notNull())
        .addPrimaryKeyConstraint('image_tag_pk', ['image_id', 'value'])
        .execute();
      await db.schema.createIndex('image_tag_value').on('image_tag').columns(['value', 'image_id']).execute();
      await db.schema
        .createTable('image_member')
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('image.id').onDelete('cascade'))
        .addColumn('member', 'varchar(255)', (c) => c.notNull())
        .addColumn('status', 'varchar(20)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('image_member_pk', ['image_id', 'member'])
        .execute();
      await db.schema.createIndex('image_member_member').on('image_member').columns(['member', 'status']).execute();
      await db.schema
        .createTable('image_location')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull().references('image.id').onDelete('cascade'))
        .addColumn('store', 'varchar(255)', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('image_location_image').on('image_location').column('image_id').execute();
      await db.schema
        .createTable('image_task')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('image_id', 'varchar(36)', (c) => c.notNull())
        .addColumn('type', 'varchar(30)', (c) => c.notNull())
        .addColumn('status', 'varchar(30)', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('message', 'text', (c) => c.notNull())
        .addColumn('owner', 'varchar(255)', (c) => c.notNull())
        .addColumn('user_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('request_id', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('expires_at', time)
        .execute();
      await db.schema.createIndex('image_task_image').on('image_task').column('image_id').execute();
    },
  },
  '0002_metadefs': {
    async up(db: Kysely<any>): Promise<void> {
      const namespaceId = (c: ColumnDefinitionBuilder): ColumnDefinitionBuilder => c.notNull().references('metadef_namespace.id').onDelete('cascade');
      await db.schema
        .createTable('metadef_namespace')
        .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('namespace', 'varchar(80)', (c) => c.notNull())
        .addColumn('display_name', 'varchar(80)')
        .addColumn('description', 'text')
        .addColumn('visibility', 'varchar(32)', (c) => c.notNull())
        .addColumn('protected', 'integer', (c) => c.notNull())
        .addColumn('owner', 'varchar(255)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addUniqueConstraint('metadef_namespace_name', ['namespace'])
        .execute();
      await db.schema.createIndex('metadef_namespace_owner').on('metadef_namespace').columns(['owner', 'visibility']).execute();
      await db.schema.createIndex('metadef_namespace_created').on('metadef_namespace').columns(['created_at', 'namespace']).execute();
      await db.schema
        .createTable('metadef_object')
        .addColumn('namespace_id', 'varchar(36)', namespaceId)
        .addColumn('name', 'varchar(80)', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('required', 'text', (c) => c.notNull())
        .addColumn('properties', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('metadef_object_pk', ['namespace_id', 'name'])
        .execute();
      await db.schema
        .createTable('metadef_property')
        .addColumn('namespace_id', 'varchar(36)', namespaceId)
        .addColumn('name', 'varchar(80)', (c) => c.notNull())
        .addColumn('schema', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('metadef_property_pk', ['namespace_id', 'name'])
        .execute();
      await db.schema
        .createTable('metadef_tag')
        .addColumn('namespace_id', 'varchar(36)', namespaceId)
        .addColumn('name', 'varchar(80)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('metadef_tag_pk', ['namespace_id', 'name'])
        .execute();
      await db.schema
        .createTable('metadef_resource_type')
        .addColumn('name', 'varchar(80)', (c) => c.primaryKey())
        .addColumn('protected', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('metadef_namespace_resource_type')
        .addColumn('namespace_id', 'varchar(36)', namespaceId)
        .addColumn('resource_type', 'varchar(80)', (c) => c.notNull().references('metadef_resource_type.name'))
        .addColumn('prefix', 'varchar(80)')
        .addColumn('properties_target', 'varchar(80)')
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addPrimaryKeyConstraint('metadef_namespace_resource_type_pk', ['namespace_id', 'resource_type'])
        .execute();
      await db.schema.createIndex('metadef_namespace_resource_type_type').on('metadef_namespace_resource_type').columns(['resource_type', 'namespace_id']).execute();
      await seedMetadefs(db);
    },
  },
};
