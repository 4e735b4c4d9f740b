import type { FastifyRequest } from 'fastify';
import { atLeast, type ComputeService } from '../compute.js';
import { badRequest, ComputeError } from '../errors.js';
import { pyRepr as repr, pyStr } from '../../core/py-repr.js';

/**
 * Request checks that answer as Nova's JSON-schema validation does
 * (`Invalid input for field/attribute <name>. Value: <value>. <why>`), for
 * bodies and query strings whose rules change with the microversion, where a
 * static route schema cannot follow. The `<why>` texts are jsonschema's.
 */

/** A value in Nova's messages: as Python's `repr` when `nested` (jsonschema's reasons), else as its `str`. */
export function pyRepr(value: unknown, nested = false): string {
  return nested ? repr(value) : pyStr(value);
}

/** Nova's 400 for a body member that fails its schema. */
export function invalidField(name: string, value: unknown, why: string): ComputeError {
  return badRequest(`Invalid input for field/attribute ${name}. Value: ${pyRepr(value)}. ${why}`);
}

/** Nova's 400 for a query parameter that fails its schema. */
export function invalidQuery(name: string, value: unknown, why: string): ComputeError {
  return badRequest(`Invalid input for query parameters ${name}. Value: ${pyRepr(value)}. ${why}`);
}

/** jsonschema's `... is not of type 'x'`. */
export function notOfType(value: unknown, type: string): string {
  return `${pyRepr(value, true)} is not of type '${type}'`;
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
 * Checks that `value` (the member `name` of the body, or the body itself
 * when `name` is null) is an object with the `required` keys and no key
 * outside `allowed`; returns it.
 */
export function checkObject(value: unknown, name: string | null, required: string[], allowed: string[]): Record<string, unknown> {
  const fail = (why: string): ComputeError => (name === null ? badRequest(why) : invalidField(name, value, why));
  if (!isObject(value)) throw fail(notOfType(value, 'object'));
  for (const key of required) if (!(key in value)) throw fail(`'${key}' is a required property`);
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw fail(unexpected(extra));
  return value;
}

/** The request's body as Nova's schemas see it: an empty body is `None`. */
export function bodyOf(req: FastifyRequest): unknown {
  return req.body === undefined ? null : req.body;
}

/** Nova's 404 for a route the request's microversion does not have. */
export function requireVersion(req: FastifyRequest, version: string): void {
  if (!atLeast(req, version)) throw new ComputeError(404, 'The resource could not be found.');
}

/** The query string as lists of values (a repeated key keeps every value). */
export function queryOf(req: FastifyRequest): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, value] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    out[key] = (Array.isArray(value) ? value : [value]).map(String);
  }
  return out;
}

/** Refuses query parameters outside `allowed` (Nova's `additionalProperties: False` query schemas). */
export function rejectUnknownQuery(query: Record<string, string[]>, allowed: string[]): void {
  const extra = Object.keys(query).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw badRequest(unexpected(extra));
}

/** The last value of a parameter that may repeat (Nova reads the last). */
export function lastValue(query: Record<string, string[]>, name: string): string | undefined {
  const values = query[name];
  return values && values.length > 0 ? values[values.length - 1] : undefined;
}

/** A parameter that may appear once (`single_param`): a repeat is 400. */
export function singleValue(query: Record<string, string[]>, name: string): string | undefined {
  const values = query[name];
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw invalidQuery(name, values, `${pyRepr(values, true)} is too long`);
  return values[0];
}

/** A non-negative integer parameter (`limit`, `offset`), else 400. */
export function nonNegativeInteger(name: string, value: string): number {
  if (!/^[0-9]+$/.test(value)) throw invalidQuery(name, value, value === '' ? "'' is too short" : `'${value}' does not match '^[0-9]*$'`);
  return Number(value);
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
  const ms = Number(`0.${frac || '0'}`) * 1000;
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const fields = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number];
  const [year, month, day, hour, minute, second] = fields;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, Math.floor(ms)) - offsetMinutes * 60_000;
  const date = new Date(utc);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** A `date-time` query parameter (`changes-since`), else 400. */
export function timeParam(name: string, value: string): string {
  const parsed = parseIsoTime(value);
  if (parsed === null) throw invalidQuery(name, value, `'${value}' is not a 'date-time'`);
  return parsed;
}

/**
 * `changes-since` and `changes-before` of a list, each when its microversion
 * allows it; 400 when `changes-before` comes first.
 */
export function changesWindow(query: Record<string, string[]>, options: { since: boolean; before: boolean }): { since?: string; before?: string } {
  const sinceText = options.since ? singleValue(query, 'changes-since') : undefined;
  const beforeText = options.before ? singleValue(query, 'changes-before') : undefined;
  const since = sinceText === undefined ? undefined : timeParam('changes-since', sinceText);
  const before = beforeText === undefined ? undefined : timeParam('changes-before', beforeText);
  if (since !== undefined && before !== undefined && before < since) {
    throw badRequest('The value of changes-since must be less than or equal to changes-before.');
  }
  return { ...(since === undefined ? {} : { since }), ...(before === undefined ? {} : { before }) };
}

/** The `limit` Nova honours: the asked one, at most `max_limit` (none asked: `max_limit`). */
export function pageLimit(compute: ComputeService, asked: number | undefined): number {
  const max = compute.config.compute.max_limit;
  return asked === undefined ? max : Math.min(asked, max);
}

/**
 * The `next` link of a page that came back full: the request's URL under
 * the public one with its parameters sorted and `marker` set to the last
 * item's (Nova's `_get_collection_links`); `[]` when the page is not full.
 */
export function nextLinks(compute: ComputeService, req: FastifyRequest, collection: string, count: number, lastId: string | undefined): { rel: string; href: string }[] {
  const query = queryOf(req);
  const asked = lastValue(query, 'limit');
  const max = Math.min(asked === undefined ? compute.config.compute.max_limit : Number(asked), compute.config.compute.max_limit);
  if (!max || max !== count || lastId === undefined) return [];
  // Nova's order: the request's parameters sorted, `marker` replaced in place or added last.
  const params = new URLSearchParams();
  for (const key of Object.keys(query).sort()) {
    const value = key === 'marker' ? lastId : lastValue(query, key);
    if (value !== undefined) params.append(key, value);
  }
  if (!('marker' in query)) params.append('marker', lastId);
  return [{ rel: 'next', href: `${compute.publicUrl}/v2.1/${collection}?${params.toString()}` }];
}
