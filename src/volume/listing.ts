/**
 * Sorting and paging of lists as Cinder's database layer does them: rows
 * ordered by the sort keys (each with its direction; nulls sort first in
 * ascending order), the page starting after the marker's position in that
 * order (Cinder compares with the marker's values, so a marker that no
 * longer matches the filters still works), then `offset` and `limit`.
 */

export type SortDir = 'asc' | 'desc';

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** A comparator of rows by `keys` and `dirs`. */
export function rowComparator<T extends object>(keys: string[], dirs: SortDir[]): (a: T, b: T) => number {
  return (a, b) => {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] ?? '';
      const c = compareValues((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]);
      if (c !== 0) return dirs[i] === 'desc' ? -c : c;
    }
    return 0;
  };
}

/** One page of `rows` (sorted here), after `marker` when given, skipping `offset`, at most `limit` long. */
export function pageOf<T extends object>(rows: T[], options: { keys: string[]; dirs: SortDir[]; marker: T | null; offset: number; limit: number }): T[] {
  const compare = rowComparator<T>(options.keys, options.dirs);
  const sorted = [...rows].sort(compare);
  const { marker } = options;
  const after = marker ? sorted.filter((row) => compare(row, marker) > 0) : sorted;
  return after.slice(options.offset, options.offset + options.limit);
}

/** Cinder's time comparison operators (`created_at=gt:2024-01-01T00:00:00,lte:...`, 3.60). */
export const TIME_OPERATORS = ['gt', 'gte', 'eq', 'neq', 'lt', 'lte'] as const;
export type TimeOperator = (typeof TIME_OPERATORS)[number];

/** True when the stored time `value` satisfies every `op: time` condition. */
export function timeMatches(value: string | null, conditions: { op: TimeOperator; time: string }[]): boolean {
  if (value === null) return false;
  const v = Date.parse(value);
  return conditions.every(({ op, time }) => {
    const t = Date.parse(time);
    switch (op) {
      case 'gt':
        return v > t;
      case 'gte':
        return v >= t;
      case 'eq':
        return v === t;
      case 'neq':
        return v !== t;
      case 'lt':
        return v < t;
      case 'lte':
        return v <= t;
    }
  });
}
