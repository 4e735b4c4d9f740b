import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from './evaluate.js';
import { formatCheck, parseRule, type Check } from './parser.js';

/** Parses a rule that must be clean and renders its structure. */
function shape(text: string): string {
  const result = parseRule(text);
  assert.equal(result.error, undefined, `unexpected error for ${text}: ${result.error ?? ''}`);
  return formatCheck(result.check);
}

/** Evaluates a rule against roles only (no targets, no named rules). */
function allows(text: string, roles: string[], extra: Record<string, unknown> = {}, target: Record<string, unknown> = {}): boolean {
  return evaluate(parseRule(text).check, target, { roles, ...extra }, () => undefined);
}

test('@ and empty rules always pass; ! never passes', () => {
  assert.deepEqual(parseRule('@'), { check: { type: 'always' } });
  assert.deepEqual(parseRule(''), { check: { type: 'always' } });
  assert.deepEqual(parseRule('   \t'), { check: { type: 'always' } });
  assert.deepEqual(parseRule('!'), { check: { type: 'never' } });
  assert.equal(allows('@', []), true);
  assert.equal(allows('', []), true);
  assert.equal(allows('!', ['admin']), false);
});

test('check kinds parse to role, rule and generic checks', () => {
  const role = parseRule('role:admin').check;
  assert.deepEqual(role, { type: 'role', match: { kind: 'literal', value: 'admin' } });
  assert.deepEqual(parseRule('rule:admin_required').check, { type: 'rule', name: 'admin_required' });
  assert.deepEqual(parseRule('rule:identity:get_user').check, { type: 'rule', name: 'identity:get_user' });
  const generic = parseRule('project_id:%(project_id)s').check;
  assert.equal(generic.type, 'generic');
  assert.equal(shape('token.user.domain.id:%(target.domain.id)s'), 'token.user.domain.id:%(target.domain.id)s');
  // Only the first colon separates kind from value.
  assert.equal(shape('role:compute:admin'), "role:'compute:admin'");
});

test('right-hand sides: quoted literals, True/False, bare literals, substitutions', () => {
  assert.equal(shape("name:'member'"), "name:'member'");
  assert.equal(shape('name:"member"'), "name:'member'");
  assert.equal(shape("name:'two words'"), "name:'two words'");
  assert.equal(shape('is_admin:True'), "is_admin:'True'");
  assert.equal(shape('id:abc-123'), "id:'abc-123'");
  assert.equal(shape('id:x-%(target.id)s-%%'), 'id:x-%(target.id)s-%%');
  assert.equal(shape("'Member':%(role.name)s"), "'Member':%(role.name)s");
  assert.equal(shape('True:%(user.enabled)s'), "'True':%(user.enabled)s");
});

test('operators are case-insensitive', () => {
  assert.equal(shape('role:a AND role:b Or NOT role:c'), '((role:\'a\' and role:\'b\') or not role:\'c\')');
});

test('precedence: and binds tighter than or, not tighter than and', () => {
  assert.equal(shape('role:a or role:b and role:c'), "(role:'a' or (role:'b' and role:'c'))");
  assert.equal(shape('role:a and role:b or role:c'), "((role:'a' and role:'b') or role:'c')");
  assert.equal(shape('not role:a and role:b'), "(not role:'a' and role:'b')");
  assert.equal(shape('not not role:a'), "not not role:'a'");
  // Semantics, not just shape: a or (b and c) passes with only a; (not a) and b passes with only b.
  assert.equal(allows('role:a or role:b and role:c', ['a']), true);
  assert.equal(allows('role:a or role:b and role:c', ['b']), false);
  assert.equal(allows('not role:a and role:b', ['b']), true);
  assert.equal(allows('not role:a and role:b', ['a', 'b']), false);
  assert.equal(allows('not role:a and role:b', []), false);
});

test('parentheses override precedence, with or without spaces', () => {
  assert.equal(shape('(role:a or role:b) and role:c'), "((role:'a' or role:'b') and role:'c')");
  assert.equal(shape('( role:a or role:b ) and role:c'), "((role:'a' or role:'b') and role:'c')");
  assert.equal(shape('((role:a))'), "role:'a'");
  assert.equal(shape('not (role:a or role:b)'), "not (role:'a' or role:'b')");
  assert.equal(allows('(role:a or role:b) and role:c', ['a']), false);
  assert.equal(allows('(role:a or role:b) and role:c', ['a', 'c']), true);
  assert.equal(allows('not (role:a or role:b)', ['b']), false);
  // A substitution's parenthesis is not mistaken for a closing one.
  assert.equal(shape('(user_id:%(target.user.id)s)'), 'user_id:%(target.user.id)s');
});

test('chains of the same operator are flattened', () => {
  const check = parseRule('role:a or role:b or role:c').check;
  assert.equal(check.type, 'or');
  assert.equal(check.type === 'or' ? check.checks.length : 0, 3);
});

test('http: and https: checks are unsupported: never true, and reported', () => {
  for (const rule of ['http://policy.example/check', 'https://policy.example/check']) {
    const result = parseRule(rule);
    assert.equal(result.check.type, 'never');
    assert.match(result.error ?? '', /not supported/);
  }
  assert.equal(allows('role:a or http://x', ['a']), true);
  assert.equal(allows('http://x', ['a']), false);
});

const malformed = [
  'role:a or',
  'and role:a',
  '(role:a',
  'role:a)',
  'role:a role:b',
  '()',
  "name:'unterminated",
  "'just a string'",
  'not',
];

test('structurally malformed rules deny and report an error', () => {
  for (const rule of malformed) {
    const result = parseRule(rule);
    assert.deepEqual(result.check, { type: 'never', reason: 'unparseable rule' }, rule);
    assert.match(result.error ?? '', /Failed to understand rule/, rule);
    assert.equal(allows(rule, ['a', 'b']), false, rule);
  }
});

test('a malformed single check is a never-true leaf and is reported, as in oslo', () => {
  const cases: [string, RegExp][] = [
    ['admin', /not a check/],
    ['True', /not a check/],
    ['role:', /empty value/],
    [':x', /empty kind/],
    ['id:%(oops', /substitution/],
    ['id:%d', /substitution/],
    ['id:%()s', /empty substitution key/],
  ];
  for (const [rule, error] of cases) {
    const result = parseRule(rule);
    assert.equal(result.check.type, 'never', rule);
    assert.match(result.error ?? '', error, rule);
  }
  // The rest of the rule still works.
  const mixed = parseRule('role:admin or admn');
  assert.match(mixed.error ?? '', /"admn" is not a check/);
  assert.equal(allows('role:admin or admn', ['admin']), true);
  assert.equal(allows('role:admin or admn', ['member']), false);
  assert.equal(allows('not admn', []), true);
});

test('parseRule never throws on arbitrary input', () => {
  const inputs = ['(((', ')))', '%', ':', '::', "'", '"', 'not not not', 'or or', '@ @', '! and', 'a:%(b)s%(', '\u0000:\u0000'];
  for (const input of inputs) {
    const result = parseRule(input);
    const check: Check = result.check;
    assert.equal(typeof check.type, 'string', input);
  }
});

test('formatCheck round-trips parsed rules', () => {
  for (const rule of ['(role:a or role:b) and not rule:c', "x.y:'q' or 'Member':%(role.name)s", 'user_id:%(target.user.id)s and @']) {
    const once = shape(rule);
    assert.equal(shape(once), once, rule);
  }
});
