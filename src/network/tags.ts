import type { Kysely } from 'kysely';
import type { NetworkSchema } from './db/schema.js';

/** The tags of many resources of one type at once: id -> sorted tags. */
export async function loadTags(db: Kysely<NetworkSchema>, resourceType: string, ids: string[]): Promise<Map<string, string[]>> {
  const byId = new Map<string, string[]>();
  if (ids.length === 0) return byId;
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('tag')
      .select(['resource_id', 'tag'])
      .where('resource_type', '=', resourceType)
      .where('resource_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const row of rows) {
      const list = byId.get(row.resource_id);
      if (list) list.push(row.tag);
      else byId.set(row.resource_id, [row.tag]);
    }
  }
  for (const list of byId.values()) list.sort();
  return byId;
}

/** Removes a resource's tags (when the resource is deleted). */
export async function deleteTags(db: Kysely<NetworkSchema>, resourceType: string, id: string): Promise<void> {
  await db.deleteFrom('tag').where('resource_type', '=', resourceType).where('resource_id', '=', id).execute();
}
