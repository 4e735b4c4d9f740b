import type { FastifyRequest } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import type { RequestContext } from '../../core/auth/context.js';
import { isUniqueViolation } from '../../core/db/database.js';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../core/errors.js';
import type { ImageSchema, MetadefNamespaceRow } from '../db/schema.js';
import { authorize, isAdmin, type ImageService } from '../image.js';

export type Db = Kysely<ImageSchema> | Transaction<ImageSchema>;

/**
 * True when the caller may see the namespace: administrators, its owner,
 * and everyone for a public one. Private namespaces of other projects do
 * not exist for the caller (404, never 403).
 */
export function visibleTo(images: ImageService, ctx: RequestContext, row: MetadefNamespaceRow): boolean {
  return row.visibility === 'public' || (ctx.projectId !== null && row.owner === ctx.projectId) || isAdmin(images, ctx);
}

/** The policy target of a rule on a namespace or on what it holds: its owner and visibility. */
export function namespaceTarget(row: MetadefNamespaceRow): Record<string, unknown> {
  return { project_id: row.owner, owner: row.owner, visibility: row.visibility, namespace: row.namespace };
}

/** The namespace by name when the caller may see it; 404 otherwise. */
export async function findNamespace(images: ImageService, ctx: RequestContext, name: string, db: Db = images.db): Promise<MetadefNamespaceRow> {
  const row = await db.selectFrom('metadef_namespace').selectAll().where('namespace', '=', name).executeTakeFirst();
  if (!row || !visibleTo(images, ctx, row)) throw new NotFound(`Metadata definition namespace=${name} was not found.`);
  return row;
}

/**
 * The namespace a request acts on, checked for visibility (404) and then for
 * the rule (403): what every handler under `/v2/metadefs/namespaces/{ns}` does first.
 */
export async function namespaceFor(images: ImageService, req: FastifyRequest<{ Params: { namespace: string } }>, rule: string): Promise<MetadefNamespaceRow> {
  const row = await findNamespace(images, req.ctx, req.params.namespace);
  authorize(images, req, rule, namespaceTarget(row));
  return row;
}

/** Deleting anything from a protected namespace is refused (403) until it is unprotected. */
export function refuseIfProtected(row: MetadefNamespaceRow, message: string): void {
  if (row.protected === 1) throw new Forbidden(message);
}

/** Names of namespaces, objects, properties, tags and resource types end up in URLs: never empty. */
export function requireName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.trim() === '') throw new BadRequest(`The ${what} name must not be empty.`);
  return name;
}

/** Runs a write; a unique-key violation becomes 409 with the given message. */
export async function unique<T>(work: () => Promise<T>, conflict: () => string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isUniqueViolation(err)) throw new Conflict(conflict());
    throw err;
  }
}

/** `X-Openstack-Append` and similar flags, read as oslo's `bool_from_string` does. */
export function truthy(value: string | string[] | undefined): boolean {
  const text = Array.isArray(value) ? value[value.length - 1] : value;
  return text !== undefined && ['1', 't', 'true', 'on', 'y', 'yes'].includes(text.trim().toLowerCase());
}

/** Parses stored JSON that the service itself wrote. */
export function parseJson<T>(text: string, fallback: T): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** Sort direction and limit parameters, checked as Glance checks them. */
export function sortDir(value: string | undefined, fallback: 'asc' | 'desc'): 'asc' | 'desc' {
  if (value === undefined) return fallback;
  if (value !== 'asc' && value !== 'desc') throw new BadRequest(`Invalid sort direction: ${value}`);
  return value;
}

export function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new BadRequest('limit param must be an integer');
  const limit = Number(value);
  if (limit < 0) throw new BadRequest('limit param must be positive');
  return limit;
}

/** The last value of a query parameter (repeated parameters: the last wins). */
export function queryParam(req: FastifyRequest, name: string): string | undefined {
  const value = (req.query as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[value.length - 1] : value;
}
