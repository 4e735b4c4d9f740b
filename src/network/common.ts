import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/auth/context.js';
import type { StandardColumns } from './db/schema.js';
import { badRequest, invalidInput } from './errors.js';

/** `2026-11-21T10:00:00.123456Z`: how times are stored (they sort as text). */
export function isoNow(): string {
  return new Date().toISOString().replace(/Z$/, '000Z');
}

/** Neutron shows times to the second: `2026-11-21T10:00:00Z`. */
export function neutronTime(stored: string): string {
  return stored.replace(/\.\d+Z$/, 'Z');
}

export function newUuid(): string {
  return randomUUID();
}

export const UUID_PATTERN = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** Parses a JSON column, with a fallback for empty text. */
export function json<T>(text: string | null | undefined, fallback: T): T {
  if (!text) return fallback;
  return JSON.parse(text) as T;
}

/**
 * One attribute of a resource as the API accepts it (neutron-lib's attribute
 * maps): whether POST and PUT may set it, whether POST requires it, its
 * default, and how its value is converted and checked. `convert` returns the
 * value to keep or throws (use {@link invalidInput}).
 */
export interface Attr {
  post?: boolean;
  put?: boolean;
  required?: boolean;
  /** Default for POST when absent (a function is called per request). */
  default?: unknown;
  convert?: (value: unknown, name: string) => unknown;
}

export type Attrs = Record<string, Attr>;

/** The standard attributes every resource accepts (`name`, `description`, the owner). */
export const STANDARD_ATTRS: Attrs = {
  name: { post: true, put: true, default: '', convert: (v, n) => str(v, n, 255) },
  description: { post: true, put: true, default: '', convert: (v, n) => str(v, n, 255) },
  project_id: { post: true, convert: (v, n) => str(v, n, 255) },
  tenant_id: { post: true, convert: (v, n) => str(v, n, 255) },
};

/**
 * Reads `{"<resource>": {...}}` of a POST (`mode` create: defaults filled,
 * required attributes checked) or a PUT (`mode` update: only what was sent).
 * Errors are Neutron's 400s; nothing is changed by a refused request.
 */
export function readBody(body: unknown, resource: string, attrs: Attrs, mode: 'create' | 'update'): Record<string, unknown> {
  if (!isRecord(body)) throw badRequest('Resource body required');
  const item = body[resource];
  if (!isRecord(item)) throw badRequest(body[resource] === undefined ? `Unable to find '${resource}' in request body` : `Invalid input for ${resource}. Reason: the body is not a mapping.`);
  return readItem(item, attrs, mode);
}

/**
 * Reads a create that may be bulk: `{"<resource>": {...}}` or
 * `{"<plural>": [{...}, ...]}`. Returns the items and whether it was bulk.
 */
export function readCreate(body: unknown, resource: string, plural: string, attrs: Attrs): { items: Record<string, unknown>[]; bulk: boolean } {
  if (isRecord(body) && Array.isArray(body[plural])) {
    const list = body[plural] as unknown[];
    if (list.length === 0) throw badRequest('Resources required');
    return { items: list.map((item) => (isRecord(item) ? readItem(item, attrs, 'create') : fail(badRequest('Resource body required')))), bulk: true };
  }
  return { items: [readBody(body, resource, attrs, 'create')], bulk: false };
}

function readItem(item: Record<string, unknown>, attrs: Attrs, mode: 'create' | 'update'): Record<string, unknown> {
  const unknown = Object.keys(item).filter((key) => !(key in attrs));
  if (unknown.length > 0) throw badRequest(`Unrecognized attribute(s) '${unknown.join(', ')}'`);
  const out: Record<string, unknown> = {};
  for (const [name, attr] of Object.entries(attrs)) {
    const present = Object.hasOwn(item, name);
    if (present) {
      if (mode === 'create' && !attr.post) throw badRequest(`Attribute '${name}' not allowed in POST`);
      if (mode === 'update' && !attr.put) throw badRequest(`Cannot update read-only attribute ${name}`);
      out[name] = attr.convert ? attr.convert(item[name], name) : item[name];
    } else if (mode === 'create') {
      if (attr.required) throw badRequest(`Failed to parse request. Required attribute '${name}' not specified`);
      if (attr.default !== undefined) out[name] = typeof attr.default === 'function' ? (attr.default as () => unknown)() : structuredClone(attr.default);
    }
  }
  return out;
}

function fail(error: Error): never {
  throw error;
}

/**
 * The project a new resource belongs to: `project_id` or `tenant_id` from the
 * body (they must agree), else the caller's project. Policy decides whether
 * the caller may create it there.
 */
export function owner(ctx: RequestContext, item: Record<string, unknown>): string {
  const project = item.project_id as string | undefined;
  const tenant = item.tenant_id as string | undefined;
  if (project !== undefined && tenant !== undefined && project !== tenant) throw badRequest("'project_id' and 'tenant_id' do not match");
  const chosen = project ?? tenant ?? ctx.projectId;
  if (!chosen) throw badRequest("Failed to parse request. Required attribute 'project_id' not specified");
  delete item.project_id;
  delete item.tenant_id;
  return chosen;
}

/** The standard columns of a new resource row: a new id, the owner, name and description from the request, revision 1. */
export function newStandardColumns(projectId: string, item: Record<string, unknown>, now = isoNow()): StandardColumns {
  return {
    id: newUuid(),
    project_id: projectId,
    name: (item.name as string | undefined) ?? '',
    description: (item.description as string | undefined) ?? '',
    created_at: now,
    updated_at: now,
    revision_number: 1,
  };
}

/** The standard attributes of a view, in Neutron's names. */
export function standardView(row: { id: string; project_id: string; name: string; description: string; created_at: string; updated_at: string; revision_number: number | string }, tags: string[]): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name,
    tenant_id: row.project_id,
    project_id: row.project_id,
    description: row.description,
    created_at: neutronTime(row.created_at),
    updated_at: neutronTime(row.updated_at),
    revision_number: Number(row.revision_number),
    tags,
  };
}

// Converters: each returns the accepted value or throws Neutron's InvalidInput.

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function str(value: unknown, name: string, max = 255): string {
  if (typeof value !== 'string') throw invalidInput(name, `'${String(value)}' is not a valid string`);
  if (value.length > max) throw invalidInput(name, `'${value}' exceeds maximum length of ${max}`);
  return value;
}

export function nullableStr(value: unknown, name: string, max = 255): string | null {
  return value === null ? null : str(value, name, max);
}

/** Neutron's `convert_to_boolean`: true/false, 'true'/'false' (any case), 0/1. */
export function bool(value: unknown, name: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string' && /^(true|false|0|1)$/i.test(value)) return /^(true|1)$/i.test(value);
  throw invalidInput(name, `'${String(value)}' cannot be converted to boolean`);
}

/** An integer (also from a string of digits), within bounds. */
export function int(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalidInput(name, `'${String(value)}' is not an integer`);
  if (n < min) throw invalidInput(name, `'${n}' is too small - must be at least '${min}'`);
  if (n > max) throw invalidInput(name, `'${n}' is too large - must be no larger than '${max}'`);
  return n;
}

export function uuid(value: unknown, name: string): string {
  if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw invalidInput(name, `'${String(value)}' is not a valid UUID`);
  return value;
}

export function nullableUuid(value: unknown, name: string): string | null {
  return value === null ? null : uuid(value, name);
}

export function oneOf<T extends string>(values: readonly T[]): (value: unknown, name: string) => T {
  return (value, name) => {
    if (typeof value !== 'string' || !values.includes(value as T)) throw invalidInput(name, `'${String(value)}' is not in ${JSON.stringify(values)}`);
    return value as T;
  };
}

export function list(value: unknown, name: string): unknown[] {
  if (!Array.isArray(value)) throw invalidInput(name, `'${JSON.stringify(value)}' is not a list`);
  return value;
}

export function dict(value: unknown, name: string): Record<string, unknown> {
  if (!isRecord(value)) throw invalidInput(name, `'${JSON.stringify(value)}' is not a dictionary`);
  return value;
}

/** A MAC address in Neutron's form (lower case, colons); refuses broadcast, multicast and all-zero. */
export function mac(value: unknown, name: string): string {
  if (typeof value !== 'string' || !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(value)) throw invalidInput(name, `'${String(value)}' is not a valid MAC address`);
  const normal = value.toLowerCase().replaceAll('-', ':');
  const first = parseInt(normal.slice(0, 2), 16);
  if (normal === '00:00:00:00:00:00' || (first & 1) === 1) throw invalidInput(name, `'${String(value)}' is not a valid MAC address`);
  return normal;
}
