import type { Generated } from 'kysely';

/**
 * The placement database, as placement's own tables: providers form trees
 * (`root_provider_id`, `parent_provider_id`), inventories and allocations are
 * keyed by provider and resource class, consumers carry the generation that
 * guards their allocations. Times are ISO-8601 text.
 */
export interface PlacementSchema {
  resource_providers: ResourceProviderTable;
  resource_classes: ResourceClassTable;
  traits: TraitTable;
  inventories: InventoryTable;
  resource_provider_aggregates: ProviderAggregateTable;
  resource_provider_traits: ProviderTraitTable;
  consumers: ConsumerTable;
  allocations: AllocationTable;
}

/** A resource provider: a host, a NUMA node, a PF, a storage pool... */
export interface ResourceProviderTable {
  id: Generated<number>;
  uuid: string;
  name: string;
  /** Bumped by every change of the provider's inventory, traits, aggregates (1.19+) or allocations. */
  generation: number;
  /** The provider's own id when it is a root (null only inside the transaction that creates it). */
  root_provider_id: number | null;
  parent_provider_id: number | null;
  created_at: string;
  updated_at: string;
}

/** Standard classes have ids below 10000 (their index in os-resource-classes), custom ones from 10000. */
export interface ResourceClassTable {
  id: number;
  name: string;
  created_at: string;
  updated_at: string;
}

/** A trait (standard ones from os-traits, custom `CUSTOM_*`). */
export interface TraitTable {
  id: Generated<number>;
  name: string;
  created_at: string;
  updated_at: string;
}

/** What a provider has of one resource class. */
export interface InventoryTable {
  resource_provider_id: number;
  resource_class_id: number;
  total: number;
  reserved: number;
  min_unit: number;
  max_unit: number;
  step_size: number;
  allocation_ratio: number;
  created_at: string;
  updated_at: string;
}

/** A provider's membership of an aggregate (aggregates exist only as UUIDs). */
export interface ProviderAggregateTable {
  resource_provider_id: number;
  aggregate_uuid: string;
}

/** A trait a provider has. */
export interface ProviderTraitTable {
  resource_provider_id: number;
  trait_id: number;
}

/** A consumer exists while it has allocations; its row goes with its last allocation. */
export interface ConsumerTable {
  uuid: string;
  project_id: string;
  user_id: string;
  /** `INSTANCE`, `MIGRATION`, ... (1.38); null for consumers written by older microversions (`unknown`). */
  consumer_type: string | null;
  generation: number;
  created_at: string;
  updated_at: string;
}

/** What a consumer holds of one class on one provider. */
export interface AllocationTable {
  consumer_uuid: string;
  resource_provider_id: number;
  resource_class_id: number;
  used: number;
  created_at: string;
  updated_at: string;
}

/** An inventory row as read. */
export type InventoryRow = InventoryTable;
