import type { FastifyRequest } from 'fastify';
import { badRequest, VolumeError } from '../errors.js';
import type { VolumeService } from '../volume.js';
import { pyRepr, pyStr } from '../../core/py-repr.js';

/**
 * Request checks of the catalog routes (types, QoS specs, quotas,
 * services, transfers, ...), worded as Cinder's JSON-schema validation
 * words them: `Invalid input for field/attribute <field>. Value: <value>.
 * <reason>` with the reasons of Python's jsonschema.
 */

/** A JSON object of a request body. */
export type Obj = Record<string, unknown>;

/** Cinder's largest integer column value (`constants.DB_MAX_INT`). */
export const DB_MAX_INT = 0x7fffffff;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export { pyRepr, pyStr };

/** Cinder's 400 for a schema error at `field`. */
export function invalidField(field: string, value: unknown, reason: string): VolumeError {
  return badRequest(`Invalid input for field/attribute ${field}. Value: ${pyStr(value)}. ${reason}`);
}

/** jsonschema's `additionalProperties` reason. */
export function unexpected(keys: string[]): string {
  return keys.length === 1 ? `Additional properties are not allowed ('${keys[0]}' was unexpected)` : `Additional properties are not allowed (${keys.map((k) => `'${k}'`).join(', ')} were unexpected)`;
}

/** jsonschema's `type` reason for `types` (`'object'`, `'string', 'null'`). */
export function notOfType(value: unknown, ...types: string[]): string {
  return `${pyRepr(value)} is not of type ${types.map((t) => `'${t}'`).join(', ')}`;
}

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

/** The object under `key` of a body that must be `{key: {...}}` (other top-level keys refused unless `allowed`). */
export function bodyObject(body: unknown, key: string, allowed: readonly string[] = []): Obj {
  if (!isObject(body)) throw badRequest(`${notOfType(body ?? null, 'object')}`);
  checkKeys(body, null, [key, ...allowed], [key]);
  const inner = body[key];
  if (!isObject(inner)) throw invalidField(key, inner, notOfType(inner, 'object'));
  return inner;
}

/** The body as an object (400 otherwise). */
export function bodyOf(body: unknown): Obj {
  if (!isObject(body)) throw badRequest(notOfType(body ?? null, 'object'));
  return body;
}

const BOOLEAN_WORDS: readonly (string | boolean)[] = [true, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't', false, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f'];

/** Cinder's `parameter_types.boolean`: a JSON boolean or one of its words. */
export function booleanField(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') throw invalidField(field, value, notOfType(value, 'boolean', 'string'));
  if (!BOOLEAN_WORDS.includes(value)) throw invalidField(field, value, `${pyRepr(value)} is not one of [${BOOLEAN_WORDS.map(pyRepr).join(', ')}]`);
  return strictBool(value) as boolean;
}

/** oslo's `bool_from_string(strict=True)`; undefined for anything else. */
export function strictBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(t)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(t)) return false;
  return undefined;
}

/** A character Cinder counts as printable: not a control/format character, and no separator but a space. */
export function printable(ch: string): boolean {
  return !/[\p{C}\p{Zl}\p{Zp}]/u.test(ch) && (!/\p{Z}/u.test(ch) || /\p{Zs}/u.test(ch));
}

/** Cinder's `parameter_types.name` (1-255 characters, not only spaces). */
export function nameField(value: unknown, field = 'name'): string {
  if (typeof value !== 'string') throw invalidField(field, value, notOfType(value, 'string'));
  if (value.length < 1) throw invalidField(field, value, `'' is too short`);
  if (value.length > 255) throw invalidField(field, value, `${pyRepr(value)} is too long`);
  if (value.trim().length === 0) throw badRequest("An invalid 'name' value was provided. The 'name' can not be empty.");
  return value;
}

/** Cinder's `parameter_types.description`: null or up to 255 printable characters. */
export function descriptionField(value: unknown, field = 'description'): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw invalidField(field, value, notOfType(value, 'string', 'null'));
  if (value.length > 255) throw invalidField(field, value, `${pyRepr(value)} is too long`);
  if (![...value].every(printable)) throw invalidField(field, value, `${pyRepr(value)} does not match the printable characters pattern`);
  return value;
}

/** A string of `min`-`max` characters (`nullable`: null passes through). */
export function stringField(value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string') throw invalidField(field, value, notOfType(value, 'string'));
  if (value.length < min) throw invalidField(field, value, `${pyRepr(value)} is too short`);
  if (value.length > max) throw invalidField(field, value, `${pyRepr(value)} is too long`);
  return value;
}

export const SPEC_KEY = /^[a-zA-Z0-9-_:. /]{1,255}$/;
export const SPEC_KEY_NO_SPACES = /^[a-zA-Z0-9-_:.]{1,255}$/;

/**
 * Extra specs (`{key: value}`): keys matching `keyPattern`, values strings
 * of at most 255 characters, or null when `nullable` (the caller decides
 * what a null means).
 */
export function specsField(value: unknown, field: string, keyPattern: RegExp, nullable: boolean): Record<string, string | null> {
  if (!isObject(value)) throw invalidField(field, value, notOfType(value, 'object'));
  const out: Record<string, string | null> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!keyPattern.test(key)) throw invalidField(field, value, `${pyRepr(key)} does not match any of the regexes: '${keyPattern.source}'`);
    if (v === null && nullable) {
      out[key] = null;
      continue;
    }
    if (typeof v !== 'string') throw invalidField(key, v, nullable ? notOfType(v, 'string', 'null') : notOfType(v, 'string'));
    if (v.length > 255) throw invalidField(key, v, `${pyRepr(v)} is too long`);
    out[key] = v;
  }
  return out;
}

/** oslo's `strutils.validate_integer` as Cinder's `api_utils` words it. */
export function integerValue(value: unknown, name: string, min?: number, max?: number): number {
  const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : undefined;
  if (text === undefined || !/^[+-]?\d+$/.test(text)) throw badRequest(`${name} must be an integer`);
  const n = Number(text);
  if (min !== undefined && n < min) throw badRequest(`${name} must be >= ${min}`);
  if (max !== undefined && n > max) throw badRequest(`${name} must be <= ${max}`);
  return n;
}

/** The query string, one value per name (the last, as webob's `GET.get`). */
export function queryOf(req: FastifyRequest): Record<string, string> {
  const raw = (req.query ?? {}) as Record<string, string | string[] | undefined>;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    out[key] = Array.isArray(value) ? (value[value.length - 1] ?? '') : value;
  }
  return out;
}

/** Cinder's `get_pagination_params`: `limit` (at most `max_limit`), `marker`, `offset`. */
export function paginationOf(volume: VolumeService, query: Record<string, string>): { limit: number | undefined; marker: string | undefined; offset: number } {
  let limit: number | undefined;
  if (query.limit !== undefined) {
    limit = integerValue(query.limit, 'limit', 0);
    limit = Math.min(limit, volume.config.volume.max_limit);
  }
  const offset = query.offset !== undefined ? integerValue(query.offset, 'offset', 0, DB_MAX_INT) : 0;
  return { limit, marker: query.marker, offset };
}

/** Cinder's `get_sort_params`: `sort=k1:d1,k2` or `sort_key`/`sort_dir` (default `created_at` desc). */
export function sortOf(query: Record<string, string>, defaultKey = 'created_at'): { key: string; dir: 'asc' | 'desc' }[] {
  if (query.sort !== undefined && (query.sort_key !== undefined || query.sort_dir !== undefined)) {
    throw badRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.");
  }
  const dirOf = (d: string | undefined): 'asc' | 'desc' => {
    const dir = (d ?? 'desc').trim().toLowerCase();
    if (dir !== 'asc' && dir !== 'desc') throw badRequest(`Invalid input received: Unknown sort direction, must be 'desc' or 'asc'`);
    return dir;
  };
  if (query.sort !== undefined) {
    return query.sort
      .split(',')
      .filter((part) => part.trim())
      .map((part) => {
        const [key, dir] = part.split(':');
        return { key: (key ?? '').trim(), dir: dirOf(dir) };
      });
  }
  return [{ key: query.sort_key ?? defaultKey, dir: dirOf(query.sort_dir) }];
}

/** A `next` link to the same collection after `marker` (Cinder's `_get_collection_links`). */
export function nextLink(volume: VolumeService, req: FastifyRequest, collection: string, marker: string): { rel: string; href: string } {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(queryOf(req))) if (key !== 'marker') params.set(key, value);
  params.set('marker', marker);
  const projectId = req.ctx?.projectId;
  return { rel: 'next', href: `${volume.publicUrl}/v3/${projectId ? `${projectId}/` : ''}${collection}?${params.toString()}` };
}

/** True for a Keystone-style or dashed uuid. */
export function isUuidLike(text: string): boolean {
  return /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(text);
}

/**
 * False when identity says project `projectId` does not exist (404); true
 * otherwise, also when identity cannot be asked (the check only catches
 * typos, as Cinder's `validate_project_and_authorize`).
 */
export async function projectExists(volume: VolumeService, req: FastifyRequest, projectId: string): Promise<boolean> {
  try {
    const res = await volume.client.request('identity', 'GET', `projects/${encodeURIComponent(projectId)}`, { userToken: req.ctx.authToken, requestId: req.ctx.requestId });
    return res.status !== 404;
  } catch (err) {
    volume.log.info({ err }, 'could not ask identity whether a project exists');
    return true;
  }
}

/** Cinder's 404 for a route whose microversion is later than the request's. */
export function versionNotSupported(req: FastifyRequest): VolumeError {
  const v = req.volumeVersion;
  return new VolumeError(404, `API version ${v.major}.${v.minor} is not supported on this method.`);
}

/** Cinder's `get_bool_param`: a query flag (`usage`, `force`), strict booleans only. */
export function boolParam(query: Record<string, string>, name: string, fallback = false): boolean {
  const value = query[name];
  if (value === undefined) return fallback;
  const b = strictBool(value);
  if (b === undefined) throw badRequest(`Value '${value}' for '${name}' is not a boolean.`);
  return b;
}
