import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import type { ComputeService } from '../compute.js';
import { badRequest } from '../errors.js';
import { invalidField, invalidQuery, isObject, lastValue, nextLinks, nonNegativeInteger, pageLimit, queryOf, rejectUnknownQuery, unexpected } from './nova-input.js';
import { pyRepr } from '../../core/py-repr.js';

export { invalidField, invalidQuery, isObject };

/**
 * Request checks of the flavor, keypair, quota and host routes, on top of
 * nova-input.ts: Nova's parameter types (integers as numbers or digit
 * strings, its booleans, `name`), `{"x": {...}}` bodies, `/action` bodies,
 * paging and links, and the times Nova's JSON writes.
 */

/** A JSON object of a request body. */
export type Obj = Record<string, unknown>;

/** Nova's largest integer column value (`db.constants.MAX_INT`). */
export const MAX_INT = 0x7fffffff;

export { pyRepr };

/**
 * Checks that `obj` (the value of `field`, or the body when `field` is null)
 * has only `allowed` keys and all of `required`.
 */
export function checkKeys(obj: Obj, field: string | null, allowed: readonly string[], required: readonly string[] = []): void {
  for (const key of required) {
    if (!(key in obj)) throw field === null ? badRequest(`'${key}' is a required property`) : invalidField(field, obj, `'${key}' is a required property`);
  }
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw field === null ? badRequest(unexpected(extra)) : invalidField(field, obj, unexpected(extra));
}

/**
 * The object under `key` of a body that must be `{key: {...}}` and nothing
 * else (`{"flavor": {...}}`); 400 otherwise.
 */
export function bodyObject(body: unknown, key: string): Obj {
  if (!isObject(body)) throw badRequest(`${pyRepr(body ?? null)} is not of type 'object'`);
  checkKeys(body, null, [key], [key]);
  const inner = body[key];
  if (!isObject(inner)) throw invalidField(key, inner, `${pyRepr(inner)} is not of type 'object'`);
  return inner;
}

/**
 * An integer given as a JSON integer or a string of digits (Nova's
 * `['integer', 'string']` with `pattern: ^[0-9]+$` and a range).
 */
export function integerLike(value: unknown, field: string, min: number, max: number = MAX_INT, pattern = /^[0-9]+$/): number {
  let n: number;
  if (typeof value === 'number' && Number.isInteger(value)) n = value;
  else if (typeof value === 'string') {
    if (!pattern.test(value)) throw invalidField(field, value, `'${value}' does not match '${pattern.source}'`);
    n = Number(value);
  } else throw invalidField(field, value, `${pyRepr(value)} is not of type 'integer', 'string'`);
  if (n < min) throw invalidField(field, value, `${pyRepr(value)} is less than the minimum of ${min}`);
  if (n > max) throw invalidField(field, value, `${pyRepr(value)} is greater than the maximum of ${max}`);
  return n;
}

const TRUE_WORDS = ['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes'];
const FALSE_WORDS = ['False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no'];

/** Nova's `parameter_types.boolean`: a JSON boolean or one of its words. */
export function booleanLike(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && TRUE_WORDS.includes(value)) return true;
  if (typeof value === 'string' && FALSE_WORDS.includes(value)) return false;
  throw invalidField(field, value, `${pyRepr(value)} is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']`);
}

/** oslo's `bool_from_string(strict=True)`; undefined for anything else. */
export function strictBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(t)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(t)) return false;
  return undefined;
}

/** A character Nova counts as printable: not a control/format character, and no separator but a space. */
function printable(ch: string): boolean {
  return !/[\p{C}\p{Zl}\p{Zp}]/u.test(ch);
}

/**
 * Nova's `name` format: 1-255 printable characters, not starting or ending
 * with whitespace (`except` lists characters also refused, as `:` in zone names).
 */
export function checkName(value: unknown, field: string, except = ''): string {
  if (typeof value !== 'string') throw invalidField(field, value, `${pyRepr(value)} is not of type 'string'`);
  if (value.length < 1) throw invalidField(field, value, `'' is too short`);
  if (value.length > 255) throw invalidField(field, value, `'${value}' is too long`);
  const chars = [...value];
  const ok = chars.every((c) => printable(c) && !except.includes(c)) && !/^\s|\s$/u.test(value);
  if (!ok) {
    const reason = except ? `printable characters except ${except}.Can not start or end with whitespace.` : 'printable characters. Can not start or end with whitespace.';
    throw badRequest(`An invalid 'name' value was provided. The name must be: ${reason}`);
  }
  return value;
}

/** A string of printable characters (spaces allowed anywhere), within the lengths. */
export function checkText(value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string') throw invalidField(field, value, `${pyRepr(value)} is not of type 'string'`);
  if (value.length < min) throw invalidField(field, value, `'${value}' is too short`);
  if (value.length > max) throw invalidField(field, value, `'${value}' is too long`);
  if (![...value].every(printable)) throw invalidField(field, value, `'${value}' does not match the printable characters pattern`);
  return value;
}

/** The query string as lists of values (`?a=1&a=2` gives `a: ['1', '2']`). */
export function queryParams(req: FastifyRequest): Record<string, string[]> {
  return queryOf(req);
}

/** A query parameter as Nova reads it (webob's `GET.get`: the last value). */
export function queryParam(req: FastifyRequest, name: string): string | undefined {
  return lastValue(queryOf(req), name);
}

/** Refuses query parameters outside `allowed` when `strict` (the microversion that made a schema `additionalProperties: false`). */
export function checkQueryKeys(req: FastifyRequest, allowed: readonly string[], strict: boolean): void {
  if (strict) rejectUnknownQuery(queryOf(req), [...allowed]);
}

/** `limit` (every value a non-negative integer; at most `max_limit`) and `marker` of a paged list. */
export function pagination(compute: ComputeService, req: FastifyRequest): { limit: number; marker: string | undefined } {
  const query = queryOf(req);
  const limits = (query.limit ?? []).map((v) => nonNegativeInteger('limit', v));
  return { limit: pageLimit(compute, limits[limits.length - 1]), marker: lastValue(query, 'marker') };
}

/** A link as Nova writes them. */
export interface Link {
  rel: string;
  href: string;
}

/** `self` and `bookmark` links of a resource (`/v2.1/<collection>/<id>` and `/<collection>/<id>`). */
export function resourceLinks(compute: ComputeService, collection: string, id: string | number): Link[] {
  return [
    { rel: 'self', href: `${compute.publicUrl}/v2.1/${collection}/${id}` },
    { rel: 'bookmark', href: `${compute.publicUrl}/${collection}/${id}` },
  ];
}

/** Nova's `*_links`: a `next` link when the page came back full (see nova-input's `nextLinks`). */
export function collectionLinks(compute: ComputeService, req: FastifyRequest, collection: string, count: number, lastId: string | undefined): Link[] {
  return nextLinks(compute, req, collection, count, lastId);
}

/**
 * A database time as Nova's JSON writes it (oslo's `%Y-%m-%dT%H:%M:%S.%f`
 * of a naive UTC time): `2026-11-21T10:00:00.123000`.
 */
export function pyIsoTime(iso: string | null): string | null {
  if (iso === null) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19)}.${String(d.getUTCMilliseconds()).padStart(3, '0')}000`;
}

/** Nova's answer to an `/action` body that is not a single-key object, or names an unknown action. */
export function actionOf(body: unknown, known: readonly string[]): string {
  if (!isObject(body) || Object.keys(body).length !== 1) throw badRequest('Malformed request body');
  const [action] = Object.keys(body) as [string];
  if (!known.includes(action)) throw badRequest(`There is no such action: ${action}`);
  return action;
}

/**
 * Nova's check that a project exists, asked of identity with the caller's
 * token: false when identity answers 404; any other answer or failure lets
 * the request through (true), as Nova does.
 */
export async function verifyProjectId(compute: ComputeService, ctx: RequestContext, projectId: string): Promise<boolean> {
  try {
    const res = await compute.client.request('identity', 'GET', `projects/${encodeURIComponent(projectId)}`, { userToken: ctx.authToken, requestId: ctx.requestId });
    return res.status !== 404;
  } catch (err) {
    compute.log.info({ err }, 'could not ask identity whether a project exists');
    return true;
  }
}
