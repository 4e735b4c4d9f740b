import { badRequest } from './errors.js';
import { isUuidLike, normalizeUuid } from './placement.js';

/**
 * The filter syntax shared by `GET /resource_providers` and
 * `GET /allocation_candidates`: `resources=VCPU:1,MEMORY_MB:512`,
 * `required=T1,!T2` and `required=in:T3,T4` (1.39), `member_of=in:a,b` and
 * `member_of=!c` (1.32), `in_tree=<uuid>`, each optionally suffixed.
 */

/** Required traits as any-of sets that must all hold, and traits that must be absent. */
export interface TraitFilter {
  /** `[[T1], [T3, T4]]` means T1 and (T3 or T4). */
  required: string[][];
  forbidden: Set<string>;
}

/** Aggregates a provider must be in (one of each set) and must not be in. */
export interface AggregateFilter {
  required: string[][];
  forbidden: Set<string>;
}

const RESOURCES_FORM = 'Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.';

/** `VCPU:2,MEMORY_MB:1024` as a map of amounts; 400 for anything else. */
export function parseResources(value: string): Map<string, number> {
  if (value.trim() === '') throw badRequest(`Badly formed resources parameter. ${RESOURCES_FORM} Got: empty string.`);
  const result = new Map<string, number>();
  for (const item of value.split(',')) {
    const parts = item.split(':');
    if (parts.length !== 2) throw badRequest(`Badly formed resources parameter. ${RESOURCES_FORM} Got: ${item}.`);
    const [name = '', text = ''] = parts;
    if (!/^\s*[+-]?\d+\s*$/.test(text)) throw badRequest(`Requested resource ${name} expected positive integer amount. Got: ${text}.`);
    const amount = Number(text);
    if (amount < 1) throw badRequest(`Requested resource ${name} requires amount >= 1. Got: ${amount}.`);
    result.set(name, amount);
  }
  return result;
}

function parseTraitValue(value: string, allowForbidden: boolean, allowAny: boolean): TraitFilter {
  if (value.startsWith('in:')) {
    if (!allowAny) {
      throw badRequest(`Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported since microversion 1.39. Got: ${value}`);
    }
    const any = [...new Set(value.slice(3).split(',').map((t) => t.trim()))];
    if (any.some((t) => t === '')) {
      throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: ${value}`);
    }
    if (any.some((t) => t.startsWith('!'))) {
      throw badRequest(`Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not support forbidden traits. Got: ${value}`);
    }
    return { required: [any], forbidden: new Set() };
  }
  const all = value.split(',').map((t) => t.trim());
  const forbidden = new Set(all.filter((t) => t.startsWith('!')).map((t) => t.replace(/^!+/, '')));
  if (all.some((t) => t === '') || [...forbidden].some((t) => t === '')) {
    const form = allowForbidden ? 'HW_CPU_X86_VMX,!CUSTOM_MAGIC' : 'HW_CPU_X86_VMX,CUSTOM_MAGIC';
    throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: ${form}. Got an empty trait in: ${value}`);
  }
  if (forbidden.size > 0 && !allowForbidden) {
    throw badRequest(`Invalid query string parameters: Expected 'required' parameter value of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: ${value}`);
  }
  const required = [...new Set(all.filter((t) => !t.startsWith('!')))].map((t) => [t]);
  return { required, forbidden };
}

/**
 * The `required<suffix>` parameters at a microversion: forbidden traits from
 * 1.22, `in:` and repetition from 1.39 (before, only the last value counts).
 */
export function parseRequired(query: URLSearchParams, key: string, minor: number): TraitFilter {
  let values = query.getAll(key);
  if (minor < 39) values = values.slice(-1);
  const result: TraitFilter = { required: [], forbidden: new Set() };
  for (const value of values) {
    const one = parseTraitValue(value, minor >= 22, minor >= 39);
    result.required.push(...one.required);
    for (const t of one.forbidden) result.forbidden.add(t);
  }
  return result;
}

/** `root_required`: plain and `!` traits, no `in:` (1.35). */
export function parseRootRequired(value: string): { required: Set<string>; forbidden: Set<string> } {
  const parsed = parseTraitValue(value, true, false);
  return { required: new Set(parsed.required.map((any) => any[0] ?? '')), forbidden: parsed.forbidden };
}

function parseMemberOfValue(value: string): AggregateFilter {
  if (value.includes(',') && !(value.startsWith('in:') || value.startsWith('!in:'))) {
    throw badRequest(`Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword using the valid microversion. Got: ${value}`);
  }
  let required: string[] = [];
  let forbidden: string[] = [];
  if (value.startsWith('!in:')) forbidden = value.slice(4).split(',');
  else if (value.startsWith('!')) forbidden = [value.slice(1)];
  else if (value.startsWith('in:')) required = value.slice(3).split(',');
  else required = [value];
  for (const agg of [...required, ...forbidden]) {
    if (!isUuidLike(agg)) throw badRequest(`Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). Got: ${agg}`);
  }
  return { required: required.length > 0 ? [[...new Set(required.map(normalizeUuid))]] : [], forbidden: new Set(forbidden.map(normalizeUuid)) };
}

/**
 * The `member_of<suffix>` parameters at a microversion: repeated (AND) from
 * 1.24, forbidden (`!`, `!in:`) from 1.32.
 */
export function parseMemberOf(query: URLSearchParams, key: string, minor: number): AggregateFilter {
  const values = query.getAll(key);
  const suffix = key.slice('member_of'.length);
  if (minor < 24 && values.length > 1) throw badRequest(`Multiple member_of${suffix} parameters are not supported`);
  const result: AggregateFilter = { required: [], forbidden: new Set() };
  for (const value of values) {
    const one = parseMemberOfValue(value);
    result.required.push(...one.required);
    if (one.forbidden.size > 0) {
      if (minor < 32) throw badRequest(`Forbidden member_of${suffix} parameters are not supported in the specified microversion`);
      for (const agg of one.forbidden) result.forbidden.add(agg);
    }
  }
  return result;
}

/** `in_tree<suffix>`: a provider UUID. */
export function parseInTree(value: string): string {
  const trimmed = value.trim();
  if (!isUuidLike(trimmed)) throw badRequest(`Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. Got: ${value}`);
  return normalizeUuid(trimmed);
}

/** Every trait name a filter mentions. */
export function traitNames(filter: TraitFilter): string[] {
  return [...new Set([...filter.required.flat(), ...filter.forbidden])];
}
