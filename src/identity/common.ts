import { randomBytes, randomUUID } from 'node:crypto';
import { BadRequest } from '../core/errors.js';

/** A new id as Keystone makes them: 32 lowercase hex digits. */
export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

/** An audit id: 16 random bytes, base64url (22 characters). */
export function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

/** `2026-11-21T10:00:00.123000Z`: Keystone's time format, which also sorts as text. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function isoNow(): string {
  return isoTime(Date.now());
}

/** Keystone writes some times without the zone suffix (`password_expires_at`). */
export function isoTimeNoZone(value: string | null): string | null {
  return value ? value.replace(/Z$/, '') : null;
}

/**
 * Parses a time a caller gave (ISO 8601, with or without zone; no zone means
 * UTC as in Keystone). Throws 400 naming the field when it is not a time.
 */
export function parseTime(value: unknown, field: string): number {
  if (typeof value !== 'string') throw new BadRequest(`Invalid input for field '${field}': ${JSON.stringify(value)} is not a date-time.`);
  const text = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new BadRequest(`Invalid input for field '${field}': '${value}' is not a date-time.`);
  return ms;
}

export function bool(value: number | boolean | null | undefined): boolean {
  return value === true || value === 1;
}

export function int(value: boolean | undefined, fallback: boolean): number {
  return (value ?? fallback) ? 1 : 0;
}

export function parseJson(text: string | null | undefined): Record<string, unknown> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Splits a request entity into known columns and the `extra` attributes Keystone keeps verbatim. */
export function splitExtra(entity: Record<string, unknown>, known: readonly string[]): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entity)) if (!known.includes(k)) extra[k] = v;
  return extra;
}

/** Reads a boolean query filter the way Keystone does (`enabled=false`, `0`, ...). */
export function queryBool(value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  const text = String(value).toLowerCase();
  return !['0', 'false', 'f', 'n', 'no', 'off'].includes(text);
}
