import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Forbidden } from '../errors.js';
import { loadPolicyFile, PolicyEnforcer, type PolicyCredentials, type PolicyLogger, type RuleDefault } from './enforcer.js';

const quiet: PolicyLogger = { warn: () => undefined };

function recorder(): PolicyLogger & { messages: Record<string, unknown>[] } {
  const messages: Record<string, unknown>[] = [];
  return { messages, warn: (obj) => void messages.push(obj) };
}

function creds(over: Partial<PolicyCredentials> = {}): PolicyCredentials {
  return { roles: [], user_id: 'u1', project_id: 'p1', domain_id: 'd1', system_scope: null, is_admin: false, ...over };
}

/** An enforcer with a single rule named `r`, to test one rule text. */
function one(checkStr: string, extra: readonly RuleDefault[] = []): PolicyEnforcer {
  return new PolicyEnforcer([{ name: 'r', checkStr }, ...extra], { logger: quiet });
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'stratus-policy-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('role checks are case-insensitive and support substitution', () => {
  const e = one('role:Admin');
  assert.equal(e.check('r', {}, creds({ roles: ['reader', 'ADMIN'] })), true);
  assert.equal(e.check('r', {}, creds({ roles: ['admin'] })), true);
  assert.equal(e.check('r', {}, creds({ roles: ['administrator'] })), false);
  assert.equal(e.check('r', {}, creds({ roles: [] })), false);
  const sub = one('role:%(target.role.name)s');
  assert.equal(sub.check('r', { 'target.role.name': 'Member' }, creds({ roles: ['member'] })), true);
  assert.equal(sub.check('r', { 'target.role.name': 'admin' }, creds({ roles: ['member'] })), false);
  assert.equal(sub.check('r', {}, creds({ roles: ['member'] })), false);
  // Credentials without a roles array (bad input) deny rather than throw.
  assert.equal(e.check('r', {}, { roles: undefined } as unknown as PolicyCredentials), false);
});

test('rule: checks evaluate named rules; unknown names are false', () => {
  const e = new PolicyEnforcer(
    [
      { name: 'admin_required', checkStr: 'role:admin' },
      { name: 'get', checkStr: 'rule:admin_required or role:reader' },
      { name: 'dangling', checkStr: 'rule:no_such_rule or role:reader' },
    ],
    { logger: quiet },
  );
  assert.equal(e.check('get', {}, creds({ roles: ['admin'] })), true);
  assert.equal(e.check('get', {}, creds({ roles: ['reader'] })), true);
  assert.equal(e.check('get', {}, creds({ roles: ['member'] })), false);
  assert.equal(e.check('dangling', {}, creds({ roles: ['admin'] })), false);
  assert.equal(e.check('dangling', {}, creds({ roles: ['reader'] })), true);
});

test('@, ! and the empty rule', () => {
  assert.equal(one('@').check('r', {}, creds()), true);
  assert.equal(one('').check('r', {}, creds()), true);
  assert.equal(one('!').check('r', {}, creds({ roles: ['admin'], is_admin: true })), false);
});

test('generic checks substitute from flat dotted, nested and mixed targets', () => {
  const e = one('user_id:%(target.user.id)s');
  const me = creds({ user_id: 'u1' });
  assert.equal(e.check('r', { 'target.user.id': 'u1' }, me), true);
  assert.equal(e.check('r', { target: { user: { id: 'u1' } } }, me), true);
  assert.equal(e.check('r', { 'target.user': { id: 'u1' } }, me), true);
  assert.equal(e.check('r', { target: { 'user.id': 'u1' } }, me), true);
  assert.equal(e.check('r', { 'target.user.id': 'u2' }, me), false);
  assert.equal(e.check('r', { target: { user: { id: 'u2' } } }, me), false);
  // A flat key that does not match falls back to the nested object.
  assert.equal(e.check('r', { 'target.user': { name: 'x' }, target: { user: { id: 'u1' } } }, me), true);
  // Text around substitutions.
  const t = one('name:pre-%(a)s-%(b.c)s');
  assert.equal(t.check('r', { a: 'x', b: { c: 7 } }, creds({ name: 'pre-x-7' })), true);
  assert.equal(t.check('r', { a: 'x', b: { c: 8 } }, creds({ name: 'pre-x-7' })), false);
});

test('missing, null or non-scalar target or credential values make the check false', () => {
  const e = one('user_id:%(target.user.id)s');
  assert.equal(e.check('r', {}, creds()), false);
  assert.equal(e.check('r', { target: { user: {} } }, creds()), false);
  assert.equal(e.check('r', { target: 'not an object' }, creds()), false);
  assert.equal(e.check('r', { 'target.user.id': { id: 'u1' } }, creds()), false);
  // Both sides null must not compare equal (oslo would compare 'None' == 'None').
  assert.equal(e.check('r', { 'target.user.id': null }, creds({ user_id: null })), false);
  assert.equal(e.check('r', { 'target.user.id': 'u1' }, { roles: [] }), false);
  // Inherited properties are not looked up.
  assert.equal(one('x:%(constructor)s').check('r', {}, creds({ x: 'y' })), false);
  assert.equal(one('constructor:%(a)s').check('r', { a: 'x' }, { roles: [] }), false);
});

test('dotted credential paths walk nested objects', () => {
  const e = one('token.user.domain.id:%(target.domain_id)s');
  const c = creds({ token: { user: { domain: { id: 'd9' } } } });
  assert.equal(e.check('r', { 'target.domain_id': 'd9' }, c), true);
  assert.equal(e.check('r', { 'target.domain_id': 'd1' }, c), false);
  assert.equal(e.check('r', { 'target.domain_id': 'd9' }, creds({ token: { user: {} } })), false);
});

test('arrays in credentials match by membership, also along a path', () => {
  const e = one('groups:%(target.group_id)s');
  const c = creds({ groups: ['g1', 'g2'] });
  assert.equal(e.check('r', { 'target.group_id': 'g2' }, c), true);
  assert.equal(e.check('r', { 'target.group_id': 'g3' }, c), false);
  const nested = one('token.groups.id:%(target.group_id)s');
  const tc = creds({ token: { groups: [{ id: 'a' }, { id: 'b' }] } });
  assert.equal(nested.check('r', { 'target.group_id': 'b' }, tc), true);
  assert.equal(nested.check('r', { 'target.group_id': 'c' }, tc), false);
});

test('literals: quoted, bare, True/False compared as booleans', () => {
  const q = one("role_name:'member'");
  assert.equal(q.check('r', {}, creds({ role_name: 'member' })), true);
  assert.equal(q.check('r', {}, creds({ role_name: "'member'" })), false);
  assert.equal(one('system_scope:all').check('r', {}, creds({ system_scope: 'all' })), true);
  assert.equal(one('system_scope:all').check('r', {}, creds({ system_scope: null })), false);
  const t = one('is_admin:True');
  assert.equal(t.check('r', {}, creds({ is_admin: true })), true);
  assert.equal(t.check('r', {}, creds({ is_admin: false })), false);
  assert.equal(t.check('r', {}, creds({ is_admin: 'true' } as unknown as PolicyCredentials)), false);
  const f = one('is_admin:False');
  assert.equal(f.check('r', {}, creds({ is_admin: false })), true);
  assert.equal(f.check('r', {}, creds({ is_admin: true })), false);
  // oslo's constant on the left: 'Member':%(role.name)s and True:%(user.enabled)s.
  assert.equal(one("'Member':%(role.name)s").check('r', { 'role.name': 'Member' }, creds()), true);
  assert.equal(one("'Member':%(role.name)s").check('r', { 'role.name': 'admin' }, creds()), false);
  assert.equal(one('True:%(user.enabled)s').check('r', { user: { enabled: true } }, creds()), true);
  assert.equal(one('True:%(user.enabled)s').check('r', { user: { enabled: false } }, creds()), false);
});

test('a realistic Keystone rule', () => {
  const e = one('(role:reader and system_scope:all) or (role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s');
  const target = { 'target.user.domain_id': 'd1', 'target.user.id': 'u7' };
  assert.equal(e.check('r', target, creds({ roles: ['reader'], system_scope: 'all', domain_id: null })), true, 'system reader');
  assert.equal(e.check('r', target, creds({ roles: ['reader'], domain_id: 'd1' })), true, 'domain reader');
  assert.equal(e.check('r', target, creds({ roles: ['reader'], domain_id: 'd2' })), false, 'reader of another domain');
  assert.equal(e.check('r', target, creds({ roles: ['member'], domain_id: 'd1' })), false, 'domain member is not reader');
  assert.equal(e.check('r', target, creds({ roles: [], user_id: 'u7', domain_id: 'd2' })), true, 'the user themself');
  assert.equal(e.check('r', { 'target.user.domain_id': 'd1' }, creds({ roles: ['member'], user_id: 'u7' })), false, 'no target user id');
});

test('malformed rules deny, are logged and reported', () => {
  const log = recorder();
  const e = new PolicyEnforcer([{ name: 'bad', checkStr: '(role:admin or' }, { name: 'ok', checkStr: 'role:admin' }], { logger: log });
  assert.equal(e.check('bad', {}, creds({ roles: ['admin'] })), false);
  assert.equal(e.check('ok', {}, creds({ roles: ['admin'] })), true);
  assert.deepEqual(
    e.problems().map((p) => p.name),
    ['bad'],
  );
  assert.match(e.problems()[0]?.error ?? '', /Failed to understand rule/);
  assert.equal(log.messages.length, 1);
  assert.equal(log.messages[0]?.['rule'], 'bad');
});

test('rule: cycles deny instead of recursing forever', () => {
  const e = new PolicyEnforcer(
    [
      { name: 'a', checkStr: 'not rule:b' },
      { name: 'b', checkStr: 'rule:a' },
      { name: 'c', checkStr: 'rule:a or role:x' },
    ],
    { logger: quiet },
  );
  assert.equal(e.check('a', {}, creds()), false);
  assert.equal(e.check('b', {}, creds()), false);
  assert.equal(e.check('c', {}, creds({ roles: ['x'] })), true);
  assert.deepEqual(e.problems().map((p) => p.name).sort(), ['a', 'b']);
});

test('unknown rule names throw a plain Error, not Forbidden', () => {
  const e = one('@');
  assert.throws(
    () => e.check('nope', {}, creds()),
    (err: unknown) => err instanceof Error && !(err instanceof Forbidden) && /nope/.test(err.message),
  );
  assert.throws(() => e.authorize('nope', {}, creds()), (err: unknown) => err instanceof Error && !(err instanceof Forbidden));
});

test('authorize passes silently or throws Forbidden (403) with the oslo message', () => {
  const e = new PolicyEnforcer([{ name: 'identity:get_user', checkStr: 'role:admin' }], { logger: quiet });
  assert.doesNotThrow(() => e.authorize('identity:get_user', {}, creds({ roles: ['admin'] })));
  assert.throws(
    () => e.authorize('identity:get_user', {}, creds({ roles: ['member'] })),
    (err: unknown) => {
      assert.ok(err instanceof Forbidden);
      assert.equal(err.status, 403);
      assert.equal(err.message, 'You are not authorized to perform the requested action: identity:get_user.');
      return true;
    },
  );
});

test('duplicate default names are a programming error', () => {
  assert.throws(() => new PolicyEnforcer([{ name: 'x', checkStr: '@' }, { name: 'x', checkStr: '!' }], { logger: quiet }), /registered twice/);
});

const defaults: RuleDefault[] = [
  { name: 'admin_required', checkStr: 'role:admin' },
  { name: 'identity:get_user', checkStr: 'rule:admin_required' },
  { name: 'identity:list_users', checkStr: 'rule:admin_required' },
];

test('YAML policy file overrides defaults and adds rules', () => {
  withTempDir((dir) => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, '# operator overrides\n"identity:get_user": "rule:owner or rule:admin_required"\nowner: "user_id:%(target.user.id)s"\n');
    const e = new PolicyEnforcer(defaults, { policyFile: file, logger: quiet });
    assert.equal(e.check('identity:get_user', { 'target.user.id': 'u1' }, creds({ user_id: 'u1' })), true);
    assert.equal(e.check('identity:get_user', { 'target.user.id': 'u2' }, creds({ user_id: 'u1' })), false);
    assert.equal(e.check('identity:list_users', {}, creds({ user_id: 'u1' })), false);
    assert.equal(e.check('owner', { 'target.user.id': 'u1' }, creds({ user_id: 'u1' })), true);
    assert.deepEqual(e.effectiveRules(), {
      admin_required: 'role:admin',
      'identity:get_user': 'rule:owner or rule:admin_required',
      'identity:list_users': 'rule:admin_required',
      owner: 'user_id:%(target.user.id)s',
    });
  });
});

test('JSON policy file, and explicit overrides win over the file', () => {
  withTempDir((dir) => {
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ admin_required: 'role:superuser', 'identity:list_users': '@' }));
    assert.deepEqual(loadPolicyFile(file), { admin_required: 'role:superuser', 'identity:list_users': '@' });
    const e = new PolicyEnforcer(defaults, { policyFile: file, overrides: { 'identity:list_users': '!' }, logger: quiet });
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['superuser'] })), true);
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['admin'] })), false);
    assert.equal(e.check('identity:list_users', {}, creds({ roles: ['superuser'] })), false);
    assert.equal(e.effectiveRules()['identity:list_users'], '!');
  });
});

test('loadPolicyFile: missing or empty file means no overrides; bad content throws', () => {
  withTempDir((dir) => {
    assert.deepEqual(loadPolicyFile(join(dir, 'absent.yaml')), {});
    const empty = join(dir, 'empty.yaml');
    writeFileSync(empty, '# nothing here\n');
    assert.deepEqual(loadPolicyFile(empty), {});
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- a\n- b\n');
    assert.throws(() => loadPolicyFile(list), /mapping/);
    const nonString = join(dir, 'num.yaml');
    writeFileSync(nonString, 'a: 1\n');
    assert.throws(() => loadPolicyFile(nonString), /"a" must be a string/);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'a: "unterminated\n');
    assert.throws(() => loadPolicyFile(broken), /not valid YAML/);
    const e = new PolicyEnforcer(defaults, { policyFile: join(dir, 'absent.yaml'), logger: quiet });
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['admin'] })), true);
  });
});

test('the policy file is re-read when it changes; a broken file keeps the old rules', () => {
  withTempDir((dir) => {
    const file = join(dir, 'policy.yaml');
    const log = recorder();
    const e = new PolicyEnforcer(defaults, { policyFile: file, reloadIntervalMs: 0, logger: log });
    const admin = creds({ roles: ['admin'] });
    assert.equal(e.check('identity:get_user', {}, admin), true);

    writeFileSync(file, '"identity:get_user": "!"\n');
    utimesSync(file, 1_000, 1_000);
    assert.equal(e.check('identity:get_user', {}, admin), false, 'new file picked up by check()');

    writeFileSync(file, '"identity:get_user": "role:admin or role:reader"\n');
    utimesSync(file, 2_000, 2_000);
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['reader'] })), true, 'changed file picked up');
    assert.equal(e.reloadIfChanged(), false, 'unchanged file is not re-read');

    writeFileSync(file, 'a: [\n');
    utimesSync(file, 3_000, 3_000);
    assert.equal(e.reloadIfChanged(), false);
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['reader'] })), true, 'old rules kept');
    assert.ok(log.messages.some((m) => m['policyFile'] === file));

    rmSync(file);
    assert.equal(e.reloadIfChanged(), true, 'removed file drops the overrides');
    assert.equal(e.check('identity:get_user', {}, creds({ roles: ['reader'] })), false);
  });
});

test('has() and namesStartingWith() follow the policy file as it changes', () => {
  withTempDir((dir) => {
    const file = join(dir, 'policy.yaml');
    const e = new PolicyEnforcer(defaults, { policyFile: file, reloadIntervalMs: 0, logger: quiet });
    assert.equal(e.has('identity:get_user'), true, 'a default is known');
    assert.equal(e.has('identity:get_user:email'), false, 'an unknown rule is not');
    assert.deepEqual(e.namesStartingWith('identity:get_user'), ['identity:get_user'], 'names by prefix');

    writeFileSync(file, '"identity:get_user:email": "role:admin"\n');
    utimesSync(file, 1_000, 1_000);
    assert.equal(e.has('identity:get_user:email'), true, 'a rule the file adds is known at once');
    assert.deepEqual([...e.namesStartingWith('identity:get_user')].sort(), ['identity:get_user', 'identity:get_user:email'], 'and listed by prefix');

    rmSync(file);
    assert.equal(e.has('identity:get_user:email'), false, 'a removed file takes its rules away');
    assert.deepEqual(e.namesStartingWith('identity:get_user'), ['identity:get_user'], 'from the prefix lists too');
  });
});

test('check() looks at the file at most once per interval', () => {
  withTempDir((dir) => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, '"identity:get_user": "@"\n');
    const e = new PolicyEnforcer(defaults, { policyFile: file, reloadIntervalMs: 60_000, logger: quiet });
    writeFileSync(file, '"identity:get_user": "!"\n');
    utimesSync(file, 5_000, 5_000);
    assert.equal(e.check('identity:get_user', {}, creds()), true, 'within the interval the old rules apply');
    assert.equal(e.reloadIfChanged(), true);
    assert.equal(e.check('identity:get_user', {}, creds()), false);
  });
});
