import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PolicyEnforcer, type PolicyCredentials } from '../core/policy/index.js';
import { volumePolicyDefaults } from './policies.js';

const enforcer = new PolicyEnforcer(volumePolicyDefaults);

function creds(roles: string[], projectId = 'p1'): PolicyCredentials {
  return { roles, user_id: 'u1', project_id: projectId, domain_id: null, system_scope: null, is_admin: false };
}

const admin = creds(['admin', 'member', 'reader'], 'admin-project');
const member = creds(['member', 'reader']);
const reader = creds(['reader']);
const own = { project_id: 'p1' };
const other = { project_id: 'p2' };

test('every rule name Cinder registers is defined once, and parses', () => {
  const names = volumePolicyDefaults.map((r) => r.name);
  assert.equal(new Set(names).size, names.length, 'no duplicates');
  for (const name of [
    'context_is_admin',
    'admin_api',
    'volume:create',
    'volume:get',
    'volume:get_all',
    'volume:update',
    'volume:delete',
    'volume:force_delete',
    'volume:extend',
    'volume:extend_attached_volume',
    'volume:retype',
    'volume:update_readonly_flag',
    'volume_extension:volume_admin_actions:reset_status',
    'volume_extension:volume_admin_actions:force_delete',
    'volume_extension:volume_admin_actions:force_detach',
    'volume:create_snapshot',
    'volume:get_snapshot',
    'volume:attachment_create',
    'volume:attachment_complete',
    'volume_extension:types_manage',
    'volume_extension:type_create',
    'volume_extension:quotas:show',
    'volume_extension:quotas:update',
    'volume_extension:quota_classes:get',
    'volume:accept_transfer',
    'message:get_all',
    'scheduler_extension:scheduler_stats:get_pools',
    'limits_extension:used_limits',
    'backup:create',
    'group:create',
  ]) {
    assert.ok(enforcer.has(name), name);
  }
  assert.ok(names.length > 160, `${names.length} rules`);
});

test('the Zed personas: admin anywhere, member of the project, reader read-only', () => {
  assert.equal(enforcer.check('volume:create', own, member), true);
  assert.equal(enforcer.check('volume:create', other, member), false);
  assert.equal(enforcer.check('volume:create', own, reader), false);
  assert.equal(enforcer.check('volume:get', own, reader), true);
  assert.equal(enforcer.check('volume:get', other, reader), false);
  assert.equal(enforcer.check('volume:delete', other, admin), true);
  assert.equal(enforcer.check('volume:force_delete', own, member), false);
  assert.equal(enforcer.check('volume:force_delete', other, admin), true);
  assert.equal(enforcer.check('volume_extension:type_create', own, member), false);
  assert.equal(enforcer.check('volume_extension:type_create', {}, admin), true);
  assert.equal(enforcer.check('volume_extension:quotas:show', own, reader), true);
  assert.equal(enforcer.check('volume_extension:quotas:update', own, member), false);
  assert.equal(enforcer.check('context_is_admin', {}, admin), true);
  assert.equal(enforcer.check('context_is_admin', {}, member), false);
});
