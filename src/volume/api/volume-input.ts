import type { FastifyRequest } from 'fastify';
import { atLeast } from '../volume.js';
import { badRequest, VolumeError } from '../errors.js';
import { pyRepr as repr, pyStr } from '../../core/py-repr.js';

/**
 * Request checks that answer as Cinder's JSON-schema validation does
 * (`Invalid input for field/attribute <name>. Value: <value>. <why>`, the
 * `<why>` being jsonschema's), and Cinder's query-string rules (pagination,
 * sorting, filters), for the volume, snapshot and attachment APIs.
 */

/** A value in Cinder's messages: as Python's `repr` when `nested` (jsonschema's reasons), else as its `str`. */
export function pyRepr(value: unknown, nested = false): string {
  return nested ? repr(value) : pyStr(value);
}

/** Cinder's 400 for a body member that fails its schema. */
export function invalidField(name: string, value: unknown, why: string): VolumeError {
  return badRequest(`Invalid input for field/attribute ${name}. Value: ${pyRepr(value)}. ${why}`);
}

/** Cinder's `InvalidInput` (400 `Invalid input received: <reason>`). */
export function invalidInput(reason: string): VolumeError {
  return badRequest(`Invalid input received: ${reason}`);
}

/** jsonschema's `... is not of type 'x'` (`'x', 'y'` for several types). */
export function notOfType(value: unknown, types: string | string[]): string {
  const list = (Array.isArray(types) ? types : [types]).map((t) => `'${t}'`).join(', ');
  return `${pyRepr(value, true)} is not of type ${list}`;
}

/** jsonschema's `Additional properties are not allowed (... was unexpected)`. */
export function unexpected(keys: string[]): string {
  const quoted = keys.map((k) => `'${k}'`).join(', ');
  return `Additional properties are not allowed (${quoted} ${keys.length === 1 ? 'was' : 'were'} unexpected)`;
}

/** True for a JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The request body as an object with its one top-level member `key`
 * (`{"volume": {...}}`), and that member checked to be an object (or, with
 * `anyValue`, anything: `{"os-reserve": null}`). `extra` lists other
 * top-level members the schema allows.
 */
export function bodyMember(req: FastifyRequest, key: string, options: { anyValue?: boolean; nullable?: boolean; extra?: string[] } = {}): Record<string, unknown> {
  const body = req.body === undefined ? null : req.body;
  if (!isObject(body)) throw badRequest(notOfType(body, 'object'));
  if (!(key in body)) throw badRequest(`'${key}' is a required property`);
  const extra = Object.keys(body).filter((k) => k !== key && !(options.extra ?? []).includes(k));
  if (extra.length > 0) throw badRequest(unexpected(extra));
  const value = body[key];
  if (options.anyValue) return {};
  if (value === null && options.nullable) return {};
  if (!isObject(value)) throw invalidField(key, value, notOfType(value, options.nullable ? ['object', 'null'] : 'object'));
  return value;
}

/** The value of the body's one top-level member `key` (whatever it is), the body checked as `bodyMember` does. */
export function bodyValue(req: FastifyRequest, key: string): unknown {
  bodyMember(req, key, { anyValue: true });
  return (req.body as Record<string, unknown>)[key];
}

/** Refuses members of `value` (the body member `name`) outside `allowed`, and requires `required`. */
export function checkMembers(value: Record<string, unknown>, name: string, allowed: string[], required: string[] = []): void {
  for (const key of required) if (!(key in value)) throw invalidField(name, value, `'${key}' is a required property`);
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw invalidField(name, value, unexpected(extra));
}

const TRUE_VALUES = [true, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', 'y', 't'];
const FALSE_VALUES = [false, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', 'n', 'f'];

/** Cinder's `parameter_types.boolean` (a boolean or one of its spellings), as a boolean; else 400. */
export function booleanField(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean' && typeof value !== 'string') throw invalidField(name, value, notOfType(value, ['boolean', 'string']));
  if (TRUE_VALUES.includes(value)) return true;
  if (FALSE_VALUES.includes(value)) return false;
  throw invalidField(name, value, `${pyRepr(value, true)} is not one of ${pyRepr([...TRUE_VALUES, ...FALSE_VALUES])}`);
}

/** oslo's `bool_from_string(strict=True)` for query values; null when it is none of the spellings. */
export function strictBool(text: string): boolean | null {
  const lowered = text.trim().toLowerCase();
  if (['1', 't', 'true', 'on', 'y', 'yes'].includes(lowered)) return true;
  if (['0', 'f', 'false', 'off', 'n', 'no'].includes(lowered)) return false;
  return null;
}

/** oslo's `bool_from_string` (lenient): anything but a true spelling is false. */
export function lenientBool(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  return strictBool(String(value)) === true;
}

/** The largest integer Cinder's database columns hold (`DB_MAX_INT`). */
export const DB_MAX_INT = 0x7fffffff;

/**
 * Cinder's `volume_size` (an integer, or a string of digits, 1 to
 * DB_MAX_INT) as a number; `allowNull` accepts null (create). Else 400
 * naming the field.
 */
export function sizeField(name: string, value: unknown, allowNull = false): number | null {
  if (value === null && allowNull) return null;
  const isInteger = typeof value === 'number' && Number.isInteger(value);
  if (!isInteger && typeof value !== 'string') throw invalidField(name, value, notOfType(value, allowNull ? ['integer', 'string', 'null'] : ['integer', 'string']));
  if (typeof value === 'string' && !/^[0-9]+$/.test(value)) throw invalidField(name, value, `${pyRepr(value, true)} does not match '^[0-9]+$'`);
  const n = Number(value);
  if (n < 1) throw invalidField(name, value, `${pyRepr(value, true)} is less than the minimum of 1`);
  if (n > DB_MAX_INT) throw invalidField(name, value, `${pyRepr(value, true)} is greater than the maximum of ${DB_MAX_INT}`);
  return n;
}

/**
 * A name or description (`name_non_mandatory_remove_white_spaces`): a
 * string or null, at most 255 characters once trimmed. Returns it trimmed
 * (Cinder's `clean_name_and_description`).
 */
export function textField(name: string, value: unknown, entity: 'name' | 'description'): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw invalidField(name, value, notOfType(value, ['string', 'null']));
  const trimmed = value.trim();
  const length = [...trimmed].length;
  if (length > 255) throw invalidInput(`${entity} has ${length} characters, more than 255.`);
  return trimmed;
}

/** A plain string member of at most `max` characters (or null when `nullable`). */
export function stringField(name: string, value: unknown, options: { max?: number; min?: number; nullable?: boolean } = {}): string | null {
  if (value === null && options.nullable) return null;
  if (typeof value !== 'string') throw invalidField(name, value, notOfType(value, options.nullable ? ['string', 'null'] : 'string'));
  const length = [...value].length;
  if (options.min !== undefined && length < options.min) throw invalidField(name, value, options.min === 1 && length === 0 ? `'' is too short` : `${pyRepr(value, true)} is too short`);
  if (options.max !== undefined && length > options.max) throw invalidField(name, value, `${pyRepr(value, true)} is too long`);
  return value;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** True when `text` looks like a uuid (oslo's `is_uuid_like`: dashes optional, any case). */
export function isUuidLike(text: unknown): text is string {
  return typeof text === 'string' && UUID.test(text);
}

/** A uuid member (`format: uuid`), or null when `nullable`; else 400. */
export function uuidField(name: string, value: unknown, nullable = false): string | null {
  if (value === null && nullable) return null;
  if (typeof value !== 'string') throw invalidField(name, value, notOfType(value, nullable ? ['string', 'null'] : 'string'));
  if (!isUuidLike(value)) throw invalidField(name, value, `${pyRepr(value, true)} is not a 'uuid'`);
  return value;
}

const METADATA_KEY = /^[a-zA-Z0-9-_:. /]{1,255}$/;

/**
 * Metadata as Cinder's `extra_specs` schema takes it (volume and snapshot
 * metadata, `os-set_image_metadata`): keys of 1..255 of `[a-zA-Z0-9-_:. /]`,
 * string values of at most `maxValue` characters. `count` bounds the number
 * of items (`meta` of a one-item PUT).
 */
export function metadataField(name: string, value: unknown, options: { nullable?: boolean; count?: 1; maxValue?: number } = {}): Record<string, string> {
  if (value === null && options.nullable) return {};
  if (!isObject(value)) throw invalidField(name, value, notOfType(value, options.nullable ? ['object', 'null'] : 'object'));
  const maxValue = options.maxValue ?? 255;
  for (const [key, item] of Object.entries(value)) {
    if (!METADATA_KEY.test(key)) continue;
    if (typeof item !== 'string') throw invalidField(key, item, notOfType(item, 'string'));
    if ([...item].length > maxValue) throw invalidField(key, item, `${pyRepr(item, true)} is too long`);
  }
  const bad = Object.keys(value).filter((k) => !METADATA_KEY.test(k));
  if (bad.length > 0) throw invalidField(name, value, unexpected(bad));
  const n = Object.keys(value).length;
  if (options.count === 1 && n < 1) throw invalidField(name, value, '{} does not have enough properties');
  if (options.count === 1 && n > 1) throw invalidField(name, value, `${pyRepr(value, true)} has too many properties`);
  return value as Record<string, string>;
}

/** An `enum` member (`mode`, `migration_policy`, `disk_format`, ...). */
export function enumField<T extends string>(name: string, value: unknown, allowed: readonly T[], nullable = false): T | null {
  if (value === null && nullable) return null;
  if (typeof value !== 'string') throw invalidField(name, value, notOfType(value, nullable ? ['string', 'null'] : 'string'));
  if (!(allowed as readonly string[]).includes(value)) throw invalidField(name, value, `${pyRepr(value, true)} is not one of ${pyRepr([...allowed])}`);
  return value as T;
}

/** The 404 Cinder answers for a route the request's microversion does not have. */
export function requireVersion(req: FastifyRequest, version: string): void {
  if (!atLeast(req, version)) throw new VolumeError(404, 'The resource could not be found.');
}

/** The query string as one value per key (a repeated key keeps its last value, as webob's `params` dict does). */
export function queryOf(req: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    out.set(key, String(last ?? ''));
  }
  return out;
}

/** Cinder's pagination: `limit` (at most `maxLimit`), `marker`, `offset`; removes them from `query`. */
export function pagination(query: Map<string, string>, maxLimit: number): { limit: number; marker: string | null; offset: number } {
  const limitText = query.get('limit');
  query.delete('limit');
  let limit = maxLimit;
  if (limitText !== undefined) {
    if (!/^\s*[+-]?\d+\s*$/.test(limitText)) throw badRequest('limit param must be an integer');
    limit = Number(limitText);
    if (limit < 0) throw badRequest('limit param must be positive');
    limit = Math.min(limit, maxLimit);
  }
  const marker = query.get('marker') ?? null;
  query.delete('marker');
  const offsetText = query.get('offset');
  query.delete('offset');
  let offset = 0;
  if (offsetText !== undefined) {
    if (!/^\s*[+-]?\d+\s*$/.test(offsetText)) throw badRequest('offset must be an integer.');
    offset = Number(offsetText);
    if (offset < 0) throw badRequest('offset must be >= 0.');
    if (offset > DB_MAX_INT) throw badRequest(`offset must be <= ${DB_MAX_INT}.`);
  }
  return { limit, marker, offset };
}

/**
 * Cinder's sort parameters: `sort=k1:dir,k2` or the older `sort_key` and
 * `sort_dir` (not both); default `created_at` descending. Then, as its
 * database layer, `created_at` and `id` are added when absent, in the
 * first direction. Removes them from `query`; 400 for a bad direction.
 */
export function sortParams(query: Map<string, string>): { keys: string[]; dirs: ('asc' | 'desc')[] } {
  if (query.has('sort') && (query.has('sort_key') || query.has('sort_dir'))) {
    throw badRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.");
  }
  const keys: string[] = [];
  const dirs: string[] = [];
  if (query.has('sort')) {
    for (const part of (query.get('sort') ?? '').trim().split(',')) {
      const at = part.indexOf(':');
      keys.push((at < 0 ? part : part.slice(0, at)).trim());
      dirs.push(at < 0 || part.slice(at + 1).trim() === '' ? 'desc' : part.slice(at + 1).trim());
    }
  } else {
    keys.push((query.get('sort_key') ?? 'created_at').trim());
    dirs.push((query.get('sort_dir') ?? 'desc').trim());
  }
  query.delete('sort');
  query.delete('sort_key');
  query.delete('sort_dir');
  for (const dir of dirs) if (dir !== 'asc' && dir !== 'desc') throw invalidInput("Unknown sort direction, must be 'desc' or 'asc'.");
  const first = dirs[0] ?? 'asc';
  for (const key of ['created_at', 'id']) {
    if (!keys.includes(key)) {
      keys.push(key);
      dirs.push(first);
    }
  }
  return { keys, dirs: dirs as ('asc' | 'desc')[] };
}

/**
 * A filter value as Cinder reads it (`ast.literal_eval`): a Python literal
 * (`1`, `'a'`, `['a', 'b']`, `{'k': 'v'}`, `True`, `None`) is that value;
 * anything else is the text itself.
 */
export function literalValue(text: string): unknown {
  const parser = new LiteralParser(text.trim());
  try {
    const value = parser.value();
    parser.end();
    return value;
  } catch {
    return text;
  }
}

class LiteralParser {
  private at = 0;
  constructor(private readonly text: string) {}

  private space(): void {
    while (this.at < this.text.length && /\s/.test(this.text[this.at] ?? '')) this.at++;
  }

  end(): void {
    this.space();
    if (this.at !== this.text.length) throw new Error('trailing text');
  }

  value(): unknown {
    this.space();
    const c = this.text[this.at];
    if (c === "'" || c === '"') return this.string(c);
    if (c === '[' || c === '(') return this.list(c === '[' ? ']' : ')');
    if (c === '{') return this.dict();
    const m = /^(?:[+-]?\d+(?:\.\d+)?|True|False|None)/.exec(this.text.slice(this.at));
    if (!m) throw new Error('not a literal');
    this.at += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0]);
  }

  private string(quote: string): string {
    let out = '';
    this.at++;
    while (this.at < this.text.length) {
      const c = this.text[this.at++] ?? '';
      if (c === quote) return out;
      if (c === '\\') out += this.text[this.at++] ?? '';
      else out += c;
    }
    throw new Error('unterminated string');
  }

  private list(close: string): unknown[] {
    this.at++;
    const out: unknown[] = [];
    for (;;) {
      this.space();
      if (this.text[this.at] === close) {
        this.at++;
        return out;
      }
      out.push(this.value());
      this.space();
      if (this.text[this.at] === ',') this.at++;
      else if (this.text[this.at] !== close) throw new Error('bad list');
    }
  }

  private dict(): Record<string, unknown> {
    this.at++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.space();
      if (this.text[this.at] === '}') {
        this.at++;
        return out;
      }
      const key = this.value();
      this.space();
      if (this.text[this.at++] !== ':') throw new Error('bad dict');
      out[String(key)] = this.value();
      this.space();
      if (this.text[this.at] === ',') this.at++;
      else if (this.text[this.at] !== '}') throw new Error('bad dict');
    }
  }
}

/**
 * Which filters a non-administrator may use (Cinder's default
 * `resource_filters.json`); administrators may use any.
 */
export const USER_FILTERS: Record<'volume' | 'snapshot' | 'attachment' | 'backup', string[]> = {
  volume: ['name', 'status', 'metadata', 'bootable', 'migration_status', 'availability_zone', 'group_id', 'size', 'created_at', 'updated_at', 'consumes_quota'],
  snapshot: ['name', 'status', 'volume_id', 'metadata', 'availability_zone', 'consumes_quota'],
  attachment: ['volume_id', 'status', 'instance_id', 'attach_status'],
  backup: ['name', 'status', 'volume_id'],
};

/**
 * Cinder's filter checks for a non-administrator: from 3.31 a filter
 * outside the resource's list is 400 `Invalid filters <keys> are found in
 * query options.` (`all_tenants` is silently dropped); before, it is
 * silently removed. Like filters (`name~`) exist from 3.34.
 */
export function checkFilters(req: FastifyRequest, filters: Map<string, string>, resource: keyof typeof USER_FILTERS, admin: boolean, legacyAllowed?: string[]): void {
  for (const key of filters.keys()) {
    if ([...key].some((ch) => ch.charCodeAt(0) > 127)) throw badRequest('Filter keys can only contain ASCII characters.');
  }
  if (admin) return;
  const allowed = USER_FILTERS[resource];
  if (atLeast(req, '3.31')) {
    const like = atLeast(req, '3.34');
    const invalid = [...filters.keys()].filter((k) => !(allowed.includes(k) || (like && k.endsWith('~') && allowed.includes(k.slice(0, -1)))));
    const rest = invalid.filter((k) => k !== 'all_tenants');
    filters.delete('all_tenants');
    if (rest.length > 0) throw badRequest(`Invalid filters ${rest.join(',')} are found in query options.`);
    return;
  }
  const legacy = legacyAllowed ?? allowed;
  for (const key of [...filters.keys()]) if (!legacy.includes(key)) filters.delete(key);
}

/**
 * The `next` link of a full page: the request's collection URL (with the
 * project id when the request had one) and its query with `marker` set to
 * the last item, as Cinder's `_get_next_link`; `[]` when the page is not
 * full or empty.
 */
export function nextLinks(req: FastifyRequest, baseUrl: string, collection: string, items: { id: string }[], limit: number, itemCount?: number): { rel: string; href: string }[] {
  const last = items[items.length - 1];
  // Cinder compares the limit with the total count when one was asked for (`with_count`), else with the page.
  if (!last || limit > (itemCount || items.length)) return [];
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    if (key === 'marker') continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  params.append('marker', last.id);
  return [{ rel: 'next', href: `${baseUrl}/${collection}?${params.toString()}` }];
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses an ISO 8601 time as oslo's `parse_isotime` does (a time without a
 * zone is UTC); returns it as stored times are written (`toISOString`), or
 * null when it is not a time.
 */
export function parseIsoTime(text: string): string | null {
  const m = ISO_TIME.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const ms = Math.floor(Number(`0.${frac || '0'}`) * 1000);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMinutes * 60_000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}
