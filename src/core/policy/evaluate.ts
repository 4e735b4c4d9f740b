/**
 * Evaluation of parsed rules (see parser.ts). Runs on every API call, so it only
 * walks the pre-built tree: no parsing, regexes or string splitting.
 */
import type { Check, GenericSubject, KeyPath, MatchValue } from './parser.js';

/** Finds a named rule for `rule:NAME`; undefined when there is no such rule (the check then fails). */
export type RuleLookup = (name: string) => Check | undefined;

/** Rules nested deeper than this (e.g. `a` -> `rule:b` -> `rule:a`) are treated as failing. */
export const MAX_RULE_DEPTH = 32;

const MISSING: unique symbol = Symbol('missing');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Python's `str()` for the scalar values a policy compares: `true` is `'True'`,
 * so `is_admin:True` matches a boolean `true`. null, undefined, objects and
 * arrays have no string form here (a comparison with them fails).
 */
function scalarText(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'boolean':
      return value ? 'True' : 'False';
    case 'number':
    case 'bigint':
      return String(value);
    default:
      return undefined;
  }
}

/**
 * Looks up a dotted key in the target, accepting flat keys that contain dots
 * (`{"target.user.id": x}`), nested objects (`{target: {user: {id: x}}}`), or a
 * mix; the longest flat key wins at each level.
 */
function lookupTarget(obj: unknown, key: KeyPath, from: number): unknown {
  if (!isRecord(obj)) return MISSING;
  const n = key.segments.length;
  const joins = key.joins[from];
  if (joins === undefined) return MISSING;
  for (let end = n; end > from; end--) {
    const name = joins[end - from - 1];
    if (name === undefined || !Object.hasOwn(obj, name)) continue;
    const value = obj[name];
    if (end === n) return value;
    const found = lookupTarget(value, key, end);
    if (found !== MISSING) return found;
  }
  return MISSING;
}

/** The match text after substitution, or undefined when a target key is missing or not a scalar. */
function resolveMatch(match: MatchValue, target: Readonly<Record<string, unknown>>): string | undefined {
  switch (match.kind) {
    case 'literal':
      return match.value;
    case 'template': {
      let out = '';
      for (const part of match.parts) {
        if (part.kind === 'text') {
          out += part.text;
          continue;
        }
        const text = scalarText(lookupTarget(target, part.key, 0));
        if (text === undefined) return undefined;
        out += text;
      }
      return out;
    }
    default: {
      const unreachable: never = match;
      return unreachable;
    }
  }
}

/**
 * True when the credential at `key` (from segment `from` on) equals `expected`.
 * As in oslo.policy, an array met on the way is searched element by element, so an
 * array value matches when `expected` is one of its members.
 */
function credsMatch(value: unknown, key: KeyPath, from: number, expected: string): boolean {
  if (Array.isArray(value)) {
    for (const item of value) {
      if (!Array.isArray(item) && credsMatch(item, key, from, expected)) return true;
    }
    return false;
  }
  const n = key.segments.length;
  if (from === n) return scalarText(value) === expected;
  if (!isRecord(value)) return false;
  const joins = key.joins[from];
  if (joins === undefined) return false;
  for (let end = n; end > from; end--) {
    const name = joins[end - from - 1];
    if (name !== undefined && Object.hasOwn(value, name) && credsMatch(value[name], key, end, expected)) return true;
  }
  return false;
}

function roleMatch(roles: unknown, wanted: string): boolean {
  if (!Array.isArray(roles)) return false;
  const lower = wanted.toLowerCase();
  for (const role of roles) {
    if (typeof role === 'string' && (role === wanted || role.toLowerCase() === lower)) return true;
  }
  return false;
}

function genericMatch(subject: GenericSubject, expected: string, creds: Readonly<Record<string, unknown>>): boolean {
  switch (subject.kind) {
    case 'constant':
      return subject.value === expected;
    case 'creds':
      return credsMatch(creds, subject.key, 0, expected);
    default: {
      const unreachable: never = subject;
      return unreachable;
    }
  }
}

/**
 * Evaluates a parsed rule. Never throws for any target or credentials: a
 * missing or non-scalar target key, a missing or null credential, an unknown
 * `rule:` name or nesting deeper than MAX_RULE_DEPTH all make the check false.
 */
export function evaluate(check: Check, target: Readonly<Record<string, unknown>>, creds: Readonly<Record<string, unknown>>, rules: RuleLookup, depth = 0): boolean {
  switch (check.type) {
    case 'always':
      return true;
    case 'never':
      return false;
    case 'role': {
      const wanted = resolveMatch(check.match, target);
      return wanted !== undefined && roleMatch(creds['roles'], wanted);
    }
    case 'rule': {
      if (depth >= MAX_RULE_DEPTH) return false;
      const named = rules(check.name);
      return named !== undefined && evaluate(named, target, creds, rules, depth + 1);
    }
    case 'generic': {
      const expected = resolveMatch(check.match, target);
      return expected !== undefined && genericMatch(check.subject, expected, creds);
    }
    case 'not':
      return !evaluate(check.check, target, creds, rules, depth);
    case 'and':
      for (const c of check.checks) if (!evaluate(c, target, creds, rules, depth)) return false;
      return true;
    case 'or':
      for (const c of check.checks) if (evaluate(c, target, creds, rules, depth)) return true;
      return false;
    default: {
      const unreachable: never = check;
      return unreachable;
    }
  }
}
