import { sql } from 'kysely';
import type { RequestGroup, RequestWide, World, WorldInventory } from './candidates.js';
import { badRequest } from './errors.js';
import { num, type PlacementService } from './placement.js';
import { SHARES_VIA_AGGREGATE } from './standard-traits.js';

/**
 * Loads the {@link World} a candidates request needs, in a handful of
 * queries whatever the number of providers: the trees with inventory of a
 * requested class (and the trees sharing providers serve), then their
 * providers, inventories with usage, traits and aggregates. 400 for an
 * unknown resource class or trait, as placement.
 */
export async function loadWorld(svc: PlacementService, groups: RequestGroup[], wide: RequestWide, allClasses: boolean): Promise<World> {
  const db = svc.db;
  const world: World = { providers: new Map(), inventories: new Map(), traits: new Map(), aggregates: new Map(), anchors: new Map(), treeRoots: new Map() };

  const classNames = [...new Set(groups.flatMap((g) => [...g.resources.keys()]))];
  const classes = await svc.resourceClasses.ids(classNames);
  if (classes.missing.length > 0) throw badRequest(`Invalid resource class in resources parameter: No such resource class ${classes.missing[0]}.`);
  const traitNames = new Set(groups.flatMap((g) => [...g.traits.required.flat(), ...g.traits.forbidden]));
  for (const t of [...(wide.rootRequired?.required ?? []), ...(wide.rootRequired?.forbidden ?? [])]) traitNames.add(t);
  const traits = await svc.traits.ids(traitNames);
  if (traits.missing.length > 0) throw badRequest(`No such trait(s): ${traits.missing.join(', ')}.`);

  for (const uuid of new Set(groups.map((g) => g.inTree).filter((u): u is string => u !== null))) {
    const row = await db.selectFrom('resource_providers').select('root_provider_id').where('uuid', '=', uuid).executeTakeFirst();
    if (row?.root_provider_id !== null && row?.root_provider_id !== undefined) world.treeRoots.set(uuid, row.root_provider_id);
  }

  // The candidate trees: those with inventory of a requested class, as a subquery (no id lists).
  const classIds = [...classes.ids.values()];
  const holders = db.selectFrom('inventories').select('resource_provider_id').where('resource_class_id', 'in', classIds.length > 0 ? classIds : [-1]);
  const holderRoots = db.selectFrom('resource_providers').select('root_provider_id').where('id', 'in', holders);

  // Sharing providers with a requested class lend to the trees of their aggregates.
  const extraRoots = new Set<number>();
  const sharingTrait = await svc.traits.id(SHARES_VIA_AGGREGATE);
  const sharing =
    sharingTrait === undefined
      ? []
      : (await db.selectFrom('resource_provider_traits').select('resource_provider_id').where('trait_id', '=', sharingTrait).where('resource_provider_id', 'in', holders).execute()).map((r) => r.resource_provider_id);
  if (sharing.length > 0) {
    const shared = await db.selectFrom('resource_provider_aggregates').select(['resource_provider_id', 'aggregate_uuid']).where('resource_provider_id', 'in', sharing).execute();
    const aggs = [...new Set(shared.map((r) => r.aggregate_uuid))];
    const members =
      aggs.length === 0
        ? []
        : await db
            .selectFrom('resource_provider_aggregates as rpa')
            .innerJoin('resource_providers as rp', 'rp.id', 'rpa.resource_provider_id')
            .select(['rpa.aggregate_uuid', 'rp.root_provider_id'])
            .where('rpa.aggregate_uuid', 'in', aggs)
            .execute();
    for (const s of shared) {
      const anchors = world.anchors.get(s.resource_provider_id) ?? new Set<number>();
      for (const m of members) if (m.aggregate_uuid === s.aggregate_uuid && m.root_provider_id !== null) anchors.add(m.root_provider_id);
      world.anchors.set(s.resource_provider_id, anchors);
      for (const a of anchors) extraRoots.add(a);
    }
  }

  const extra = [...extraRoots];
  const inTrees = db
    .selectFrom('resource_providers')
    .select('id')
    .where((eb) => (extra.length > 0 ? eb.or([eb('root_provider_id', 'in', holderRoots), eb('root_provider_id', 'in', extra)]) : eb('root_provider_id', 'in', holderRoots)));
  for (const row of await db.selectFrom('resource_providers').select(['id', 'uuid', 'parent_provider_id', 'root_provider_id']).where('id', 'in', inTrees).execute()) {
    world.providers.set(row.id, { id: row.id, uuid: row.uuid, parentId: row.parent_provider_id, rootId: row.root_provider_id ?? row.id });
  }
  if (world.providers.size === 0) return world;

  const wantedClasses = allClasses ? null : classIds;
  let usage = db
    .selectFrom('allocations')
    .select(['resource_provider_id', 'resource_class_id'])
    .select((eb) => eb.fn.sum<number | string>('used').as('used'))
    .where('resource_provider_id', 'in', inTrees);
  if (wantedClasses) usage = usage.where('resource_class_id', 'in', wantedClasses);
  let inventories = db
    .selectFrom('inventories as i')
    .leftJoin(usage.groupBy(['resource_provider_id', 'resource_class_id']).as('u'), (join) => join.onRef('u.resource_provider_id', '=', 'i.resource_provider_id').onRef('u.resource_class_id', '=', 'i.resource_class_id'))
    .select(['i.resource_provider_id', 'i.resource_class_id', 'i.total', 'i.reserved', 'i.min_unit', 'i.max_unit', 'i.step_size', 'i.allocation_ratio', sql<number | string | null>`u.used`.as('used')])
    .where('i.resource_provider_id', 'in', inTrees);
  if (wantedClasses) inventories = inventories.where('i.resource_class_id', 'in', wantedClasses);
  const rows = await inventories.execute();
  for (const row of rows) {
    const name = svc.resourceClasses.cachedName(row.resource_class_id) ?? (await svc.resourceClasses.name(row.resource_class_id));
    const inv: WorldInventory = { total: row.total, reserved: row.reserved, minUnit: row.min_unit, maxUnit: row.max_unit, stepSize: row.step_size, ratio: num(row.allocation_ratio), used: num(row.used) };
    const byClass = world.inventories.get(row.resource_provider_id) ?? new Map<string, WorldInventory>();
    byClass.set(name, inv);
    world.inventories.set(row.resource_provider_id, byClass);
  }

  const traitRows = await db
    .selectFrom('resource_provider_traits as rpt')
    .innerJoin('traits as t', 't.id', 'rpt.trait_id')
    .select(['rpt.resource_provider_id', 't.name'])
    .where('rpt.resource_provider_id', 'in', inTrees)
    .execute();
  for (const row of traitRows) {
    const set = world.traits.get(row.resource_provider_id) ?? new Set<string>();
    set.add(row.name);
    world.traits.set(row.resource_provider_id, set);
  }
  const wantAggregates = sharing.length > 0 || groups.some((g) => g.aggregates.required.length > 0 || g.aggregates.forbidden.size > 0);
  if (wantAggregates) {
    for (const row of await db.selectFrom('resource_provider_aggregates').select(['resource_provider_id', 'aggregate_uuid']).where('resource_provider_id', 'in', inTrees).execute()) {
      const set = world.aggregates.get(row.resource_provider_id) ?? new Set<string>();
      set.add(row.aggregate_uuid);
      world.aggregates.set(row.resource_provider_id, set);
    }
  }
  return world;
}
