import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PlacementError } from './errors.js';
import { parseInTree, parseMemberOf, parseRequired, parseResources, parseRootRequired } from './query-filters.js';

// The query syntax of placement's util.py (normalize_*_qs_param) and lib.py.

function rejects(fn: () => unknown, detail: string): void {
  assert.throws(fn, (err: unknown) => err instanceof PlacementError && err.status === 400 && err.message.includes(detail), `400 mentioning ${detail}`);
}

test('resources: class:amount pairs, positive integers only', () => {
  assert.deepEqual([...parseResources('VCPU:2,MEMORY_MB:1024')], [['VCPU', 2], ['MEMORY_MB', 1024]], 'parsed in order');
  rejects(() => parseResources(''), 'Got: empty string.');
  rejects(() => parseResources('VCPU'), 'Badly formed resources parameter');
  rejects(() => parseResources('VCPU:x'), 'expected positive integer amount');
  rejects(() => parseResources('VCPU:0'), 'requires amount >= 1');
});

test('required: plain, forbidden (1.22), any-of and repeated (1.39)', () => {
  const q = new URLSearchParams('required=A,!B&required=in:C,D');
  const latest = parseRequired(q, 'required', 39);
  assert.deepEqual(latest.required, [['A'], ['C', 'D']], 'all values from 1.39');
  assert.deepEqual([...latest.forbidden], ['B'], 'forbidden');
  rejects(() => parseRequired(q, 'required', 38), 'only supported since microversion 1.39');
  const last = parseRequired(new URLSearchParams('required=A&required=E'), 'required', 38);
  assert.deepEqual(last.required, [['E']], 'before 1.39 only the last value counts');
  rejects(() => parseRequired(new URLSearchParams('required=!B'), 'required', 21), 'HW_CPU_X86_VMX,CUSTOM_MAGIC');
  rejects(() => parseRequired(new URLSearchParams('required=A,,B'), 'required', 39), 'Got an empty trait');
  rejects(() => parseRequired(new URLSearchParams('required=in:A,!B'), 'required', 39), 'does not support forbidden traits');
  assert.deepEqual([...parseRootRequired('X,!Y').required], ['X'], 'root_required');
});

test('member_of: in:, forbidden (1.32), repeated (1.24), UUIDs only', () => {
  const a = '11111111-1111-1111-1111-111111111111';
  const b = '22222222-2222-2222-2222-222222222222';
  const parsed = parseMemberOf(new URLSearchParams(`member_of=in:${a},${b}&member_of=!${a.toUpperCase()}`), 'member_of', 39);
  assert.deepEqual(parsed.required, [[a, b]], 'any of');
  assert.deepEqual([...parsed.forbidden], [a], 'forbidden, normalised');
  rejects(() => parseMemberOf(new URLSearchParams(`member_of=${a}&member_of=${b}`), 'member_of', 23), 'Multiple member_of parameters are not supported');
  rejects(() => parseMemberOf(new URLSearchParams(`member_of=!${a}`), 'member_of', 31), 'Forbidden member_of parameters are not supported');
  rejects(() => parseMemberOf(new URLSearchParams(`member_of=${a},${b}`), 'member_of', 39), "must be prefixed with the 'in:' or '!in:'");
  rejects(() => parseMemberOf(new URLSearchParams('member_of=nope'), 'member_of', 39), 'valid UUID(s)');
  assert.equal(parseInTree(a.replaceAll('-', '')), a, 'in_tree accepts UUIDs without dashes');
  rejects(() => parseInTree('nope'), "Expected 'in_tree' parameter to be a format of uuid");
});
