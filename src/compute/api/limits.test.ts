import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';
import { insertServer } from './server-fixtures.test-util.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
  await insertServer(t.compute.db, t.beta, { vcpus: 2, memory_mb: 1024 });
  await insertServer(t.compute.db, t.beta, { vcpus: 1, memory_mb: 512, deleted: 1 });
});
after(async () => {
  await t.close();
});

test('limits: absolute limits and usage under Nova names', async () => {
  const v21 = await t.request('GET', '/limits', { user: t.beta });
  assert.equal(v21.status, 200, JSON.stringify(v21.body));
  assert.deepEqual(v21.body.limits.rate, [], 'rate is empty');
  const abs = v21.body.limits.absolute;
  assert.deepEqual(
    Object.keys(abs).sort(),
    [
      'maxImageMeta',
      'maxPersonality',
      'maxPersonalitySize',
      'maxSecurityGroupRules',
      'maxSecurityGroups',
      'maxServerGroupMembers',
      'maxServerGroups',
      'maxServerMeta',
      'maxTotalCores',
      'maxTotalFloatingIps',
      'maxTotalInstances',
      'maxTotalKeypairs',
      'maxTotalRAMSize',
      'totalCoresUsed',
      'totalFloatingIpsUsed',
      'totalInstancesUsed',
      'totalRAMUsed',
      'totalSecurityGroupsUsed',
      'totalServerGroupsUsed',
    ],
    'v2.1 names',
  );
  assert.deepEqual([abs.totalInstancesUsed, abs.totalCoresUsed, abs.totalRAMUsed, abs.maxTotalCores], [1, 2, 1024, 20], 'usage of beta\'s server');
  const v257 = (await t.request('GET', '/limits', { user: t.beta, version: '2.57' })).body.limits.absolute;
  assert.deepEqual(
    Object.keys(v257).sort(),
    ['maxServerGroupMembers', 'maxServerGroups', 'maxServerMeta', 'maxTotalCores', 'maxTotalInstances', 'maxTotalKeypairs', 'maxTotalRAMSize', 'totalCoresUsed', 'totalInstancesUsed', 'totalRAMUsed', 'totalServerGroupsUsed'],
    '2.57 names',
  );
  const v239 = (await t.request('GET', '/limits', { user: t.beta, version: '2.39' })).body.limits.absolute;
  assert.equal('maxImageMeta' in v239, false, 'no maxImageMeta from 2.39');
  assert.equal('maxPersonality' in v239, true, 'personality until 2.57');
});

test('limits: another project for admins only', async () => {
  const other = await t.request('GET', `/limits?tenant_id=${t.beta.projectId}`, { user: t.admin });
  assert.equal(other.body.limits.absolute.totalInstancesUsed, 1, 'beta\'s usage');
  expectComputeError(await t.request('GET', `/limits?tenant_id=${t.beta.projectId}`, { user: t.alpha }), 403, /limits:other_project/);
  expectComputeError(await t.request('GET', '/limits?x=1', { user: t.alpha, version: '2.75' }), 400, /Additional properties/);
});
