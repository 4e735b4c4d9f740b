import type { Kysely } from 'kysely';
import type { ComputeSchema } from './db/schema.js';

/**
 * Server tags (2.26): short strings on a server, at most 50, kept sorted
 * (as Nova's tag table's key orders them).
 */

type Db = Kysely<ComputeSchema>;

/** At most this many tags on one server. */
export const MAX_TAGS = 50;
/** A tag is 1..60 characters. */
export const MAX_TAG_LENGTH = 60;

/** The tags of several servers (for server views); a server without tags is absent from the map. */
export async function serverTags(db: Db, uuids: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < uuids.length; i += 500) {
    const rows = await db.selectFrom('instance_tag').select(['instance_uuid', 'tag']).where('instance_uuid', 'in', uuids.slice(i, i + 500)).execute();
    for (const row of rows) {
      const list = out.get(row.instance_uuid) ?? [];
      list.push(row.tag);
      out.set(row.instance_uuid, list);
    }
  }
  // Sorted here, not in SQL, so that every database's collation gives the same order.
  for (const list of out.values()) list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out;
}

/** The tags of one server, sorted. */
export async function tagsOf(db: Db, uuid: string): Promise<string[]> {
  return (await serverTags(db, [uuid])).get(uuid) ?? [];
}

/**
 * Makes `tags` (deduplicated) the server's tags, adding and removing only
 * the difference; returns them sorted. Idempotent. The caller validated them.
 */
export async function replaceTags(db: Db, uuid: string, tags: string[]): Promise<string[]> {
  const wanted = [...new Set(tags)];
  return db.transaction().execute(async (trx) => {
    const existing = new Set(await tagsOf(trx, uuid));
    const remove = [...existing].filter((t) => !wanted.includes(t));
    const add = wanted.filter((t) => !existing.has(t));
    if (remove.length > 0) await trx.deleteFrom('instance_tag').where('instance_uuid', '=', uuid).where('tag', 'in', remove).execute();
    if (add.length > 0) await trx.insertInto('instance_tag').values(add.map((tag) => ({ instance_uuid: uuid, tag }))).execute();
    return tagsOf(trx, uuid);
  });
}

/** Adds one tag (the caller checked the count); false when the server had it already. */
export async function addTag(db: Db, uuid: string, tag: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('instance_tag').select('tag').where('instance_uuid', '=', uuid).where('tag', '=', tag).executeTakeFirst();
    if (existing) return false;
    await trx.insertInto('instance_tag').values({ instance_uuid: uuid, tag }).execute();
    return true;
  });
}

/** Removes one tag; false when the server did not have it. */
export async function deleteTag(db: Db, uuid: string, tag: string): Promise<boolean> {
  const result = await db.deleteFrom('instance_tag').where('instance_uuid', '=', uuid).where('tag', '=', tag).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Removes every tag of a server. */
export async function deleteAllTags(db: Db, uuid: string): Promise<void> {
  await db.deleteFrom('instance_tag').where('instance_uuid', '=', uuid).execute();
}
