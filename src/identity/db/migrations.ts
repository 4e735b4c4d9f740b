import type { Kysely, Migration } from 'kysely';

const id = 'varchar(64)';
const name = 'varchar(255)';
const time = 'varchar(32)';

/** Identity's schema, as versioned migrations. Never edit a shipped one: add the next. */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('project')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', 'varchar(64)', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('domain_id', id, (c) => c.notNull())
        .addColumn('parent_id', id)
        .addColumn('is_domain', 'integer', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addUniqueConstraint('project_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema.createIndex('project_parent').on('project').column('parent_id').execute();
      await db.schema
        .createTable('project_tag')
        .addColumn('project_id', id, (c) => c.notNull().references('project.id').onDelete('cascade'))
        .addColumn('name', name, (c) => c.notNull())
        .addPrimaryKeyConstraint('project_tag_pk', ['project_id', 'name'])
        .execute();
      await db.schema
        .createTable('user')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('domain_id', id, (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('default_project_id', id)
        .addColumn('password_hash', 'text')
        .addColumn('password_created_at', time)
        .addColumn('password_expires_at', time)
        .addColumn('extra', 'text', (c) => c.notNull())
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('last_active_at', time)
        .addColumn('failed_auth_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_auth_at', time)
        .addUniqueConstraint('user_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('password_history')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('user_id', id, (c) => c.notNull().references('user.id').onDelete('cascade'))
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('group')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', 'varchar(64)', (c) => c.notNull())
        .addColumn('domain_id', id, (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('extra', 'text', (c) => c.notNull())
        .addUniqueConstraint('group_domain_name', ['domain_id', 'name'])
        .execute();
      await db.schema
        .createTable('user_group_membership')
        .addColumn('user_id', id, (c) => c.notNull().references('user.id').onDelete('cascade'))
        .addColumn('group_id', id, (c) => c.notNull().references('group.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('membership_pk', ['user_id', 'group_id'])
        .execute();
      await db.schema.createIndex('membership_group').on('user_group_membership').column('group_id').execute();
      await db.schema
        .createTable('role')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('domain_id', id, (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('options', 'text', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .addUniqueConstraint('role_name_domain', ['name', 'domain_id'])
        .execute();
      await db.schema
        .createTable('implied_role')
        .addColumn('prior_role_id', id, (c) => c.notNull().references('role.id').onDelete('cascade'))
        .addColumn('implied_role_id', id, (c) => c.notNull().references('role.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('implied_role_pk', ['prior_role_id', 'implied_role_id'])
        .execute();
      await db.schema
        .createTable('assignment')
        .addColumn('type', 'varchar(16)', (c) => c.notNull())
        .addColumn('actor_id', id, (c) => c.notNull())
        .addColumn('target_id', id, (c) => c.notNull())
        .addColumn('role_id', id, (c) => c.notNull())
        .addColumn('inherited', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('assignment_pk', ['type', 'actor_id', 'target_id', 'role_id', 'inherited'])
        .execute();
      await db.schema.createIndex('assignment_actor').on('assignment').column('actor_id').execute();
      await db.schema.createIndex('assignment_target').on('assignment').column('target_id').execute();
      await db.schema.createIndex('assignment_role').on('assignment').column('role_id').execute();
      await db.schema
        .createTable('region')
        .addColumn('id', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('parent_region_id', 'varchar(255)')
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('service')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('type', name, (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('endpoint')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('service_id', id, (c) => c.notNull().references('service.id').onDelete('cascade'))
        .addColumn('interface', 'varchar(8)', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('region_id', 'varchar(255)')
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('credential')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('user_id', id, (c) => c.notNull())
        .addColumn('project_id', id)
        .addColumn('type', name, (c) => c.notNull())
        .addColumn('blob', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('credential_user').on('credential').column('user_id').execute();
      await db.schema
        .createTable('application_credential')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('user_id', id, (c) => c.notNull())
        .addColumn('project_id', id)
        .addColumn('system', 'varchar(16)')
        .addColumn('expires_at', time)
        .addColumn('unrestricted', 'integer', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addUniqueConstraint('app_cred_user_name', ['user_id', 'name'])
        .execute();
      await db.schema
        .createTable('application_credential_role')
        .addColumn('application_credential_id', id, (c) => c.notNull().references('application_credential.id').onDelete('cascade'))
        .addColumn('role_id', id, (c) => c.notNull())
        .addPrimaryKeyConstraint('app_cred_role_pk', ['application_credential_id', 'role_id'])
        .execute();
      await db.schema
        .createTable('revocation_event')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('domain_id', id)
        .addColumn('project_id', id)
        .addColumn('user_id', id)
        .addColumn('role_id', id)
        .addColumn('audit_id', 'varchar(32)')
        .addColumn('audit_chain_id', 'varchar(32)')
        .addColumn('issued_before', time, (c) => c.notNull())
        .addColumn('expires_at', time)
        .addColumn('revoked_at', time, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('revocation_event_issued_before').on('revocation_event').column('issued_before').execute();
      await db.schema
        .createTable('policy')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('type', name, (c) => c.notNull())
        .addColumn('blob', 'text', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('endpoint_group')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('name', name, (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('filters', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('project_endpoint')
        .addColumn('endpoint_id', id, (c) => c.notNull())
        .addColumn('project_id', id, (c) => c.notNull())
        .addPrimaryKeyConstraint('project_endpoint_pk', ['endpoint_id', 'project_id'])
        .execute();
      await db.schema
        .createTable('project_endpoint_group')
        .addColumn('endpoint_group_id', id, (c) => c.notNull().references('endpoint_group.id').onDelete('cascade'))
        .addColumn('project_id', id, (c) => c.notNull())
        .addPrimaryKeyConstraint('project_endpoint_group_pk', ['endpoint_group_id', 'project_id'])
        .execute();
      await db.schema
        .createTable('domain_config')
        .addColumn('domain_id', id, (c) => c.notNull())
        .addColumn('group', name, (c) => c.notNull())
        .addColumn('option', name, (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('sensitive', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('domain_config_pk', ['domain_id', 'group', 'option'])
        .execute();
      await db.schema
        .createTable('consumer')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('extra', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('fernet_key')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('key', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('bootstrap')
        .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  /**
   * Unified limits. A registered limit goes with its service and region, a
   * limit with its registered limit, project or domain (domains are project
   * rows): deleting those deletes the limits instead of failing on the key.
   * A registered limit without a region escapes the unique constraint (NULLs
   * differ), so the API checks that case itself.
   */
  '0002_unified_limits': {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema
        .createTable('registered_limit')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('service_id', id, (c) => c.notNull().references('service.id').onDelete('cascade'))
        .addColumn('region_id', 'varchar(255)', (c) => c.references('region.id').onDelete('cascade'))
        .addColumn('resource_name', name, (c) => c.notNull())
        .addColumn('default_limit', 'integer', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addUniqueConstraint('registered_limit_service_region_resource', ['service_id', 'region_id', 'resource_name'])
        .execute();
      await db.schema.createIndex('registered_limit_region').on('registered_limit').column('region_id').execute();
      await db.schema
        .createTable('limit')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('registered_limit_id', id, (c) => c.notNull().references('registered_limit.id').onDelete('cascade'))
        .addColumn('project_id', id, (c) => c.references('project.id').onDelete('cascade'))
        .addColumn('domain_id', id, (c) => c.references('project.id').onDelete('cascade'))
        .addColumn('resource_limit', 'integer', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('created_at', time, (c) => c.notNull())
        .addUniqueConstraint('limit_registered_project', ['registered_limit_id', 'project_id'])
        .addUniqueConstraint('limit_registered_domain', ['registered_limit_id', 'domain_id'])
        .execute();
      await db.schema.createIndex('limit_project').on('limit').column('project_id').execute();
      await db.schema.createIndex('limit_domain').on('limit').column('domain_id').execute();
    },
  },
};
