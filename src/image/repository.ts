import type { Kysely, Transaction } from 'kysely';
import type { RequestContext } from '../core/auth/context.js';
import { NotFound } from '../core/errors.js';
import type { ImageRow, ImageSchema, MemberRow } from './db/schema.js';
import { isAdmin, type ImageService } from './image.js';
import type { LoadedImage } from './views.js';

type Db = Kysely<ImageSchema> | Transaction<ImageSchema>;

/** Loads an image that is not deleted, with its properties, tags and locations; null when none. */
export async function loadImage(db: Db, id: string): Promise<LoadedImage | null> {
  const row = await db.selectFrom('image').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
  if (!row) return null;
  const [loaded] = await attach(db, [row]);
  return loaded ?? null;
}

/** Adds properties, tags and locations to image rows (three queries, whatever the number of rows). */
export async function attach(db: Db, rows: ImageRow[]): Promise<LoadedImage[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const [props, tags, locations] = await Promise.all([
    db.selectFrom('image_property').selectAll().where('image_id', 'in', ids).execute(),
    db.selectFrom('image_tag').selectAll().where('image_id', 'in', ids).execute(),
    db.selectFrom('image_location').selectAll().where('image_id', 'in', ids).orderBy('created_at').orderBy('id').execute(),
  ]);
  const byId = new Map<string, LoadedImage>(rows.map((row) => [row.id, { row, properties: {}, tags: [], locations: [] }]));
  for (const p of props) {
    const image = byId.get(p.image_id);
    if (image) image.properties[p.name] = p.value;
  }
  for (const t of tags) byId.get(t.image_id)?.tags.push(t.value);
  for (const l of locations) byId.get(l.image_id)?.locations.push(l);
  return rows.map((row) => byId.get(row.id) as LoadedImage);
}

/** The caller's membership of an image, if any. */
export async function membership(db: Db, imageId: string, ctx: RequestContext): Promise<MemberRow | undefined> {
  if (!ctx.projectId) return undefined;
  return db.selectFrom('image_member').selectAll().where('image_id', '=', imageId).where('member', '=', ctx.projectId).executeTakeFirst();
}

/** The target of a policy check on an image: its owner, visibility and the caller's membership. */
export function policyTarget(row: ImageRow, member: MemberRow | undefined): Record<string, unknown> {
  return { project_id: row.owner ?? '', owner: row.owner ?? '', visibility: row.visibility, member_id: member ? member.member : '', id: row.id };
}

/**
 * True when the caller may know the image exists: administrators, its
 * owner, anyone for public and community images, members (whatever their
 * status) for shared ones.
 */
export function visible(images: ImageService, ctx: RequestContext, row: ImageRow, member: MemberRow | undefined): boolean {
  if (isAdmin(images, ctx)) return true;
  if (row.owner !== null && row.owner === ctx.projectId) return true;
  if (row.visibility === 'public' || row.visibility === 'community') return true;
  return row.visibility === 'shared' && member !== undefined;
}

/** An image the caller can see, with its policy target; 404 otherwise (existence is not revealed). */
export async function findImage(images: ImageService, ctx: RequestContext, id: string): Promise<{ image: LoadedImage; member: MemberRow | undefined; target: Record<string, unknown> }> {
  const image = await loadImage(images.db, id);
  const member = image ? await membership(images.db, id, ctx) : undefined;
  if (!image || !visible(images, ctx, image.row, member)) throw new NotFound(`No image found with ID ${id}`);
  return { image, member, target: policyTarget(image.row, member) };
}

/** True when the caller owns the image (its project is the owner). */
export function owns(ctx: RequestContext, row: ImageRow): boolean {
  return row.owner !== null && row.owner === ctx.projectId;
}
