import type { CreateTableBuilder, Kysely, Migration } from 'kysely';

const id = 'varchar(36)';
const time = 'varchar(32)';

/** The standard attribute columns of a resource table (id first). */
function standard<T extends string>(table: CreateTableBuilder<T, never>): CreateTableBuilder<T, never> {
  return table
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
    .addColumn('name', 'varchar(255)', (c) => c.notNull())
    .addColumn('description', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', time, (c) => c.notNull())
    .addColumn('updated_at', time, (c) => c.notNull())
    .addColumn('revision_number', 'bigint', (c) => c.notNull()) as CreateTableBuilder<T, never>;
}

/** The network service's schema, as versioned migrations. Never edit a shipped one: add the next. */
export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<any>): Promise<void> {
      await standard(db.schema.createTable('network'))
        .addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull())
        .addColumn('router_external', 'integer', (c) => c.notNull())
        .addColumn('is_default', 'integer', (c) => c.notNull())
        .addColumn('mtu', 'integer', (c) => c.notNull())
        .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
        .addColumn('network_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('physical_network', 'varchar(64)')
        .addColumn('segmentation_id', 'integer')
        .addColumn('availability_zone_hints', 'text', (c) => c.notNull())
        .addColumn('dns_domain', 'varchar(255)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('network_project').on('network').columns(['project_id']).execute();
      await db.schema
        .createTable('segment_allocation')
        .addColumn('network_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('physical_network', 'varchar(64)', (c) => c.notNull())
        .addColumn('segmentation_id', 'integer', (c) => c.notNull())
        .addColumn('network_id', id, (c) => c.notNull().references('network.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('segment_allocation_pk', ['network_type', 'physical_network', 'segmentation_id'])
        .execute();

      await standard(db.schema.createTable('subnetpool'))
        .addColumn('ip_version', 'integer', (c) => c.notNull())
        .addColumn('prefixes', 'text', (c) => c.notNull())
        .addColumn('default_prefixlen', 'integer', (c) => c.notNull())
        .addColumn('min_prefixlen', 'integer', (c) => c.notNull())
        .addColumn('max_prefixlen', 'integer', (c) => c.notNull())
        .addColumn('shared', 'integer', (c) => c.notNull())
        .addColumn('is_default', 'integer', (c) => c.notNull())
        .addColumn('default_quota', 'integer')
        .addColumn('address_scope_id', id)
        .execute();

      await standard(db.schema.createTable('subnet'))
        .addColumn('network_id', id, (c) => c.notNull().references('network.id'))
        .addColumn('ip_version', 'integer', (c) => c.notNull())
        .addColumn('cidr', 'varchar(64)', (c) => c.notNull())
        .addColumn('gateway_ip', 'varchar(64)')
        .addColumn('enable_dhcp', 'integer', (c) => c.notNull())
        .addColumn('ipv6_ra_mode', 'varchar(32)')
        .addColumn('ipv6_address_mode', 'varchar(32)')
        .addColumn('subnetpool_id', id, (c) => c.references('subnetpool.id'))
        .addColumn('dns_nameservers', 'text', (c) => c.notNull())
        .addColumn('host_routes', 'text', (c) => c.notNull())
        .addColumn('allocation_pools', 'text', (c) => c.notNull())
        .addColumn('service_types', 'text', (c) => c.notNull())
        .addColumn('segment_id', id)
        .execute();
      await db.schema.createIndex('subnet_network').on('subnet').columns(['network_id']).execute();
      await db.schema.createIndex('subnet_project').on('subnet').columns(['project_id']).execute();
      await db.schema.createIndex('subnet_pool').on('subnet').columns(['subnetpool_id']).execute();

      await standard(db.schema.createTable('port'))
        .addColumn('network_id', id, (c) => c.notNull().references('network.id'))
        .addColumn('mac_address', 'varchar(32)', (c) => c.notNull())
        .addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('device_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('device_owner', 'varchar(255)', (c) => c.notNull())
        .addColumn('binding_host_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('binding_vif_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('binding_vif_details', 'text', (c) => c.notNull())
        .addColumn('binding_vnic_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('binding_profile', 'text', (c) => c.notNull())
        .addColumn('port_security_enabled', 'integer', (c) => c.notNull())
        .addColumn('allowed_address_pairs', 'text', (c) => c.notNull())
        .addColumn('extra_dhcp_opts', 'text', (c) => c.notNull())
        .addColumn('dns_name', 'varchar(255)', (c) => c.notNull())
        .addUniqueConstraint('port_network_mac', ['network_id', 'mac_address'])
        .execute();
      await db.schema.createIndex('port_project').on('port').columns(['project_id']).execute();
      await db.schema.createIndex('port_device').on('port').columns(['device_id']).execute();
      await db.schema.createIndex('port_network').on('port').columns(['network_id', 'device_owner']).execute();
      await db.schema.createIndex('port_host').on('port').columns(['binding_host_id']).execute();

      await db.schema
        .createTable('ip_allocation')
        .addColumn('subnet_id', id, (c) => c.notNull().references('subnet.id'))
        .addColumn('ip_address', 'varchar(64)', (c) => c.notNull())
        .addColumn('network_id', id, (c) => c.notNull())
        .addColumn('port_id', id, (c) => c.notNull().references('port.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('ip_allocation_pk', ['subnet_id', 'ip_address'])
        .execute();
      await db.schema.createIndex('ip_allocation_port').on('ip_allocation').columns(['port_id']).execute();
      await db.schema.createIndex('ip_allocation_network').on('ip_allocation').columns(['network_id', 'ip_address']).execute();

      await standard(db.schema.createTable('security_group')).addColumn('stateful', 'integer', (c) => c.notNull()).execute();
      await db.schema.createIndex('security_group_project').on('security_group').columns(['project_id']).execute();
      await db.schema
        .createTable('default_security_group')
        .addColumn('project_id', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('security_group_id', id, (c) => c.notNull().references('security_group.id').onDelete('cascade'))
        .execute();
      await db.schema
        .createTable('security_group_rule')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('security_group_id', id, (c) => c.notNull().references('security_group.id').onDelete('cascade'))
        .addColumn('direction', 'varchar(16)', (c) => c.notNull())
        .addColumn('ethertype', 'varchar(8)', (c) => c.notNull())
        .addColumn('protocol', 'varchar(40)')
        .addColumn('port_range_min', 'integer')
        .addColumn('port_range_max', 'integer')
        .addColumn('remote_ip_prefix', 'varchar(64)')
        .addColumn('remote_group_id', id, (c) => c.references('security_group.id').onDelete('cascade'))
        .addColumn('remote_address_group_id', id)
        .addColumn('description', 'varchar(255)', (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addColumn('updated_at', time, (c) => c.notNull())
        .addColumn('revision_number', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('security_group_rule_group').on('security_group_rule').columns(['security_group_id']).execute();
      await db.schema.createIndex('security_group_rule_remote').on('security_group_rule').columns(['remote_group_id']).execute();
      await db.schema
        .createTable('port_security_group')
        .addColumn('port_id', id, (c) => c.notNull().references('port.id').onDelete('cascade'))
        .addColumn('security_group_id', id, (c) => c.notNull().references('security_group.id'))
        .addPrimaryKeyConstraint('port_security_group_pk', ['port_id', 'security_group_id'])
        .execute();
      await db.schema.createIndex('port_security_group_group').on('port_security_group').columns(['security_group_id']).execute();

      await standard(db.schema.createTable('router'))
        .addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('gw_port_id', id, (c) => c.references('port.id'))
        .addColumn('external_network_id', id, (c) => c.references('network.id'))
        .addColumn('enable_snat', 'integer', (c) => c.notNull())
        .addColumn('routes', 'text', (c) => c.notNull())
        .addColumn('distributed', 'integer', (c) => c.notNull())
        .addColumn('ha', 'integer', (c) => c.notNull())
        .addColumn('availability_zone_hints', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('router_project').on('router').columns(['project_id']).execute();
      await db.schema
        .createTable('router_port')
        .addColumn('router_id', id, (c) => c.notNull().references('router.id').onDelete('cascade'))
        .addColumn('port_id', id, (c) => c.primaryKey().references('port.id').onDelete('cascade'))
        .addColumn('port_type', 'varchar(255)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('router_port_router').on('router_port').columns(['router_id']).execute();

      await standard(db.schema.createTable('floatingip'))
        .addColumn('floating_network_id', id, (c) => c.notNull().references('network.id'))
        .addColumn('floating_ip_address', 'varchar(64)', (c) => c.notNull())
        .addColumn('floating_port_id', id, (c) => c.notNull().references('port.id'))
        .addColumn('fixed_port_id', id, (c) => c.references('port.id'))
        .addColumn('fixed_ip_address', 'varchar(64)')
        .addColumn('router_id', id, (c) => c.references('router.id'))
        .addColumn('status', 'varchar(16)', (c) => c.notNull())
        .addColumn('dns_name', 'varchar(255)', (c) => c.notNull())
        .addColumn('dns_domain', 'varchar(255)', (c) => c.notNull())
        .addUniqueConstraint('floatingip_fixed', ['floating_network_id', 'fixed_port_id', 'fixed_ip_address'])
        .execute();
      await db.schema.createIndex('floatingip_project').on('floatingip').columns(['project_id']).execute();
      await db.schema.createIndex('floatingip_fixed_port').on('floatingip').columns(['fixed_port_id']).execute();
      await db.schema.createIndex('floatingip_router').on('floatingip').columns(['router_id']).execute();

      await db.schema
        .createTable('quota')
        .addColumn('project_id', 'varchar(255)', (c) => c.notNull())
        .addColumn('resource', 'varchar(64)', (c) => c.notNull())
        .addColumn('hard_limit', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('quota_pk', ['project_id', 'resource'])
        .execute();
      await db.schema
        .createTable('tag')
        .addColumn('resource_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('resource_id', id, (c) => c.notNull())
        .addColumn('tag', 'varchar(255)', (c) => c.notNull())
        .addPrimaryKeyConstraint('tag_pk', ['resource_type', 'resource_id', 'tag'])
        .execute();
      await db.schema.createIndex('tag_value').on('tag').columns(['tag', 'resource_type']).execute();

      await db.schema
        .createTable('agent')
        .addColumn('id', id, (c) => c.primaryKey())
        .addColumn('agent_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('binary', 'varchar(255)', (c) => c.notNull())
        .addColumn('topic', 'varchar(255)', (c) => c.notNull())
        .addColumn('host', 'varchar(255)', (c) => c.notNull())
        .addColumn('availability_zone', 'varchar(255)')
        .addColumn('admin_state_up', 'integer', (c) => c.notNull())
        .addColumn('configurations', 'text', (c) => c.notNull())
        .addColumn('resources_synced', 'integer')
        .addColumn('description', 'varchar(255)', (c) => c.notNull())
        .addColumn('heartbeat_timestamp', time, (c) => c.notNull())
        .addColumn('started_at', time, (c) => c.notNull())
        .addColumn('created_at', time, (c) => c.notNull())
        .addUniqueConstraint('agent_type_host', ['agent_type', 'host'])
        .execute();
      await db.schema
        .createTable('network_dhcp_agent')
        .addColumn('network_id', id, (c) => c.notNull().references('network.id').onDelete('cascade'))
        .addColumn('agent_id', id, (c) => c.notNull().references('agent.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('network_dhcp_agent_pk', ['network_id', 'agent_id'])
        .execute();
      await db.schema
        .createTable('router_l3_agent')
        .addColumn('router_id', id, (c) => c.notNull().references('router.id').onDelete('cascade'))
        .addColumn('agent_id', id, (c) => c.notNull().references('agent.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('router_l3_agent_pk', ['router_id', 'agent_id'])
        .execute();
    },
  },
};
