import type { Kysely } from 'kysely';
import { isUniqueViolation } from '../core/db/database.js';
import type { PlacementSchema } from './db/schema.js';
import { badRequest, conflict, notFound } from './errors.js';
import { isoNow, type PlacementService } from './placement.js';
import { MIN_CUSTOM_RESOURCE_CLASS_ID, STANDARD_RESOURCE_CLASSES } from './standard-resource-classes.js';

/** A resource class as stored. */
export interface ResourceClass {
  id: number;
  name: string;
  created_at: string;
  updated_at: string;
}

/** Pattern of a custom resource class (and of a custom trait). */
export const CUSTOM_NAME = /^CUSTOM_[A-Z0-9_]+$/;

/**
 * Inserts the standard resource classes the table lacks, with their fixed
 * ids. Idempotent; safe when several processes start at once.
 */
export async function syncStandardResourceClasses(db: Kysely<PlacementSchema>): Promise<void> {
  const have = new Set((await db.selectFrom('resource_classes').select('id').where('id', '<', MIN_CUSTOM_RESOURCE_CLASS_ID).execute()).map((r) => r.id));
  const now = isoNow();
  for (const [id, name] of STANDARD_RESOURCE_CLASSES.entries()) {
    if (have.has(id)) continue;
    try {
      await db.insertInto('resource_classes').values({ id, name, created_at: now, updated_at: now }).execute();
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
  }
}

/** Every resource class, standard ones first (by id). */
export async function listResourceClasses(svc: PlacementService): Promise<ResourceClass[]> {
  return svc.db.selectFrom('resource_classes').selectAll().orderBy('id').execute();
}

/** One resource class; 404 `No such resource class <name>.` */
export async function getResourceClass(svc: PlacementService, name: string): Promise<ResourceClass> {
  const row = await svc.db.selectFrom('resource_classes').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw notFound(`No such resource class ${name}.`);
  return row;
}

async function insertCustom(svc: PlacementService, name: string): Promise<ResourceClass | null> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const max = await svc.db.selectFrom('resource_classes').select((eb) => eb.fn.max('id').as('max')).executeTakeFirst();
    const id = Math.max(Number(max?.max ?? 0) + 1, MIN_CUSTOM_RESOURCE_CLASS_ID);
    const now = isoNow();
    const row = { id, name, created_at: now, updated_at: now };
    try {
      await svc.db.insertInto('resource_classes').values(row).execute();
      svc.resourceClasses.remember(id, name);
      return row;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      // Either the name exists (the caller's conflict) or another process took the id: look again.
      const existing = await svc.db.selectFrom('resource_classes').select('id').where('name', '=', name).executeTakeFirst();
      if (existing) return null;
    }
  }
  throw conflict(`Max retries of DB transaction exceeded attempting to create resource class: ${name}, please try again.`);
}

/** Creates a custom class; 409 when the name exists. */
export async function createResourceClass(svc: PlacementService, name: string): Promise<ResourceClass> {
  const existing = await svc.db.selectFrom('resource_classes').select('id').where('name', '=', name).executeTakeFirst();
  const row = existing ? null : await insertCustom(svc, name);
  if (!row) throw conflict(`Conflicting resource class already exists: ${name}`);
  return row;
}

/** Creates the custom class unless it exists (PUT from 1.7); true when it created it. Idempotent. */
export async function ensureResourceClass(svc: PlacementService, name: string): Promise<{ created: boolean; row: ResourceClass }> {
  const existing = await svc.db.selectFrom('resource_classes').selectAll().where('name', '=', name).executeTakeFirst();
  if (existing) return { created: false, row: existing };
  const row = await insertCustom(svc, name);
  if (row) return { created: true, row };
  return { created: false, row: await getResourceClass(svc, name) };
}

/** Renames a custom class (PUT with a body, 1.2 to 1.6). */
export async function renameResourceClass(svc: PlacementService, name: string, newName: string): Promise<ResourceClass> {
  const row = await getResourceClass(svc, name);
  if (row.id < MIN_CUSTOM_RESOURCE_CLASS_ID) throw badRequest(`Cannot update standard resource class ${name}`);
  const now = isoNow();
  try {
    await svc.db.updateTable('resource_classes').set({ name: newName, updated_at: now }).where('id', '=', row.id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`Resource class already exists: ${newName}`);
    throw err;
  }
  svc.resourceClasses.forget(name);
  svc.resourceClasses.remember(row.id, newName);
  return { ...row, name: newName, updated_at: now };
}

/** Deletes a custom class no inventory uses. */
export async function deleteResourceClass(svc: PlacementService, name: string): Promise<void> {
  const row = await getResourceClass(svc, name);
  if (row.id < MIN_CUSTOM_RESOURCE_CLASS_ID) throw badRequest(`Error in delete resource class: Cannot delete standard resource class ${name}.`);
  await svc.db.transaction().execute(async (trx) => {
    const used = await trx.selectFrom('inventories').select('resource_provider_id').where('resource_class_id', '=', row.id).limit(1).executeTakeFirst();
    if (used) throw conflict(`Error in delete resource class: Cannot delete resource class ${name}. Class is in use in inventory.`);
    await trx.deleteFrom('resource_classes').where('id', '=', row.id).execute();
  });
  svc.resourceClasses.forget(name);
}
