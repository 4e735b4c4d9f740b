import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newUuid } from '../common.js';
import { checkQuota } from '../quotas.js';
import { createTestNetwork, expectNeutronError, type TestNetwork } from '../testing.js';

// Facts from neutron-lib's api-ref (quotas.inc, quota_details.inc), Tempest
// (admin/test_quotas.py, admin/test_negative_quotas.py, quotas_client.py) and
// Neutron Zed (extensions/quotasv2.py, quotasv2_detail.py, db/quota/driver.py).

const RESOURCES = ['floatingip', 'network', 'port', 'rbac_policy', 'router', 'security_group', 'security_group_rule', 'subnet', 'subnetpool'];

let t: TestNetwork;
let defaults: Record<string, number>;

before(async () => {
  t = await createTestNetwork();
  defaults = { ...t.config.network.default_quotas };
});

after(async () => {
  await t.close();
});

/** `count` ports of a project on a network of its own (made by the admin), straight into the tables. */
async function insertPorts(projectId: string, count: number): Promise<void> {
  const network = await t.create(t.admin, 'networks', 'network', { project_id: projectId });
  for (let i = 0; i < count; i++) await t.insertPort({ network_id: network.id as string, project_id: projectId });
}

test('a project reads its own quotas (any role); every resource with the defaults', async () => {
  for (const user of [t.alpha, t.alphaReader]) {
    const res = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}`, { user });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(Object.keys(res.body.quota).sort(), RESOURCES, 'every resource');
    assert.deepEqual(res.body.quota, defaults, 'the configured defaults');
  }
  const json = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}.json`, { user: t.alpha });
  assert.equal(json.status, 200, 'the .json suffix is accepted');
  const mine = await t.request('GET', '/v2.0/quotas/project', { user: t.alpha });
  assert.deepEqual(mine.body, { project: { project_id: t.alpha.projectId } }, 'the caller project');
  const tenant = await t.request('GET', '/v2.0/quotas/tenant', { user: t.alpha });
  assert.deepEqual(tenant.body, { tenant: { tenant_id: t.alpha.projectId } }, 'the deprecated tenant form');
});

test('another project quotas: 403 for a non-admin, 200 for an admin', async () => {
  const beta = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}`, { user: t.beta });
  expectNeutronError(beta, 403, 'PolicyNotAuthorized');
  const betaDefault = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}/default`, { user: t.beta });
  assert.equal(betaDefault.status, 403, 'nor its defaults');
  const admin = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}`, { user: t.admin });
  assert.equal(admin.status, 200, 'admin reads any project');
  const list = await t.request('GET', '/v2.0/quotas', { user: t.alpha });
  assert.equal(list.status, 403, 'only an admin lists all projects');
});

test('PUT (admin): sets limits, shows all, lists the project; the defaults stay; DELETE resets', async () => {
  const projectId = newUuid().replaceAll('-', '');
  const put = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { network: 0, port: '7', router: -1 } } });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual(put.body.quota, { ...defaults, network: 0, port: 7, router: -1 }, 'all limits with the new ones');
  const show = await t.request('GET', `/v2.0/quotas/${projectId}`, { user: t.admin });
  assert.deepEqual(show.body.quota, put.body.quota, 'show agrees');
  const list = await t.request('GET', '/v2.0/quotas', { user: t.admin });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  const entry = (list.body.quotas as any[]).find((q) => q.project_id === projectId);
  assert.deepEqual(entry, { ...defaults, network: 0, port: 7, router: -1, project_id: projectId, tenant_id: projectId }, 'listed with its limits');
  const def = await t.request('GET', `/v2.0/quotas/${projectId}/default`, { user: t.admin });
  assert.deepEqual(def.body.quota, defaults, 'defaults unchanged');
  const second = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { port: 8, force: true } } });
  assert.equal(second.body.quota.port, 8, 'an update replaces the limit');
  assert.equal(second.body.quota.network, 0, 'others keep theirs');

  const memberDelete = await t.request('DELETE', `/v2.0/quotas/${projectId}`, { user: t.alpha });
  assert.equal(memberDelete.status, 403, 'only an admin resets');
  const del = await t.request('DELETE', `/v2.0/quotas/${projectId}`, { user: t.admin });
  assert.equal(del.status, 204, 'reset');
  const after = await t.request('GET', `/v2.0/quotas/${projectId}`, { user: t.admin });
  assert.deepEqual(after.body.quota, defaults, 'back to the defaults');
  const listAfter = await t.request('GET', '/v2.0/quotas', { user: t.admin });
  assert.ok(!(listAfter.body.quotas as any[]).some((q) => q.project_id === projectId), 'no longer listed');
  const again = await t.request('DELETE', `/v2.0/quotas/${projectId}`, { user: t.admin });
  expectNeutronError(again, 404, 'TenantQuotaNotFound', `Quota for tenant ${projectId} could not be found.`);
});

test('PUT refuses non-admins, unknown resources and values that are not integers from -1', async () => {
  const url = `/v2.0/quotas/${t.beta.projectId}`;
  const member = await t.request('PUT', url, { user: t.beta, payload: { quota: { port: 1000 } } });
  expectNeutronError(member, 403, 'PolicyNotAuthorized');
  const cases: [unknown, RegExp][] = [
    [{ quota: { ports: 5 } }, /Unrecognized attribute\(s\) 'ports'/],
    [{ quota: { port: 'abc' } }, /'abc' is not an integer/],
    [{ quota: { port: 1.5 } }, /'1.5' is not an integer/],
    [{ quota: { port: -2 } }, /Invalid input for port. Reason: '-2' is too small - must be at least '-1'/],
    [{ quota: { port: 2 ** 31 } }, /too large/],
    [{ quota: { port: null } }, /is not an integer/],
    [{ quotas: { port: 5 } }, /Unable to find 'quota' in request body/],
    [{ quota: 5 }, /quota/],
  ];
  for (const [payload, message] of cases) {
    const res = await t.request('PUT', url, { user: t.admin, payload });
    assert.equal(res.status, 400, `${JSON.stringify(payload)}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.NeutronError.message, message, JSON.stringify(payload));
  }
  const show = await t.request('GET', url, { user: t.beta });
  assert.deepEqual(show.body.quota, defaults, 'refused requests changed nothing');
  const post = await t.request('POST', '/v2.0/quotas', { user: t.admin, payload: { quota: {} } });
  assert.equal(post.status, 501, 'POST is not supported');
});

test('details: used counted from the tables, limit and reserved; another project only for an admin', async () => {
  const projectId = t.beta.projectId;
  await t.request('GET', '/v2.0/security-groups', { user: t.beta });
  await insertPorts(projectId, 3);
  for (const suffix of ['details', 'details.json']) {
    const res = await t.request('GET', `/v2.0/quotas/${projectId}/${suffix}`, { user: t.beta });
    assert.equal(res.status, 200, `${suffix}: ${JSON.stringify(res.body)}`);
    assert.deepEqual(Object.keys(res.body.quota).sort(), RESOURCES, 'every resource');
    assert.deepEqual(res.body.quota.port, { limit: defaults.port, used: 3, reserved: 0 }, 'ports used');
    assert.deepEqual(res.body.quota.network, { limit: defaults.network, used: 1, reserved: 0 }, 'networks used');
    assert.deepEqual(res.body.quota.security_group, { limit: defaults.security_group, used: 1, reserved: 0 }, 'the default group');
    assert.deepEqual(res.body.quota.security_group_rule, { limit: defaults.security_group_rule, used: 4, reserved: 0 }, 'its rules');
    assert.deepEqual(res.body.quota.rbac_policy, { limit: defaults.rbac_policy, used: 0, reserved: 0 }, 'untracked resource');
  }
  const other = await t.request('GET', `/v2.0/quotas/${projectId}/details`, { user: t.alpha });
  expectNeutronError(other, 403, 'AdminRequired', 'User does not have admin privileges: Only admin is authorized to access quotas for another project.');
  const admin = await t.request('GET', `/v2.0/quotas/${projectId}/details.json`, { user: t.admin });
  assert.equal(admin.status, 200, 'admin reads any project details');
});

test('check_limit refuses a limit below usage (Neutron Zed); without it the limit is set', async () => {
  const projectId = newUuid().replaceAll('-', '');
  await insertPorts(projectId, 3);
  const checked = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { port: 2, check_limit: true } } });
  assert.equal(checked.status, 400, JSON.stringify(checked.body));
  assert.equal(checked.body.NeutronError.message, 'Quota limit 2 for port must be greater than or equal to already used 3', 'message');
  const unchanged = await t.request('GET', `/v2.0/quotas/${projectId}`, { user: t.admin });
  assert.equal(unchanged.body.quota.port, defaults.port, 'nothing set');
  const enough = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { port: 3, network: -1, check_limit: true } } });
  assert.equal(enough.status, 200, 'equal to usage, and unlimited, pass the check');
  const forced = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { port: 1, force: true } } });
  assert.equal(forced.status, 200, 'force sets it below usage');
  assert.equal(forced.body.quota.port, 1, 'set');
  const plain = await t.request('PUT', `/v2.0/quotas/${projectId}`, { user: t.admin, payload: { quota: { port: 0 } } });
  assert.equal(plain.status, 200, 'without check_limit Zed does not check');
});

test('a project limited to 5 ports gets OverQuota for the sixth; another project is unaffected', async () => {
  const res = await t.request('PUT', `/v2.0/quotas/${t.alpha.projectId}`, { user: t.admin, payload: { quota: { port: 5 } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await insertPorts(t.alpha.projectId, 5);
  await assert.rejects(
    checkQuota(t.net.db, t.net.config.network, t.alpha.projectId, 'port', 1),
    (err: any) => err.status === 409 && err.type === 'OverQuota' && err.message === "Quota exceeded for resources: ['port'].",
    'the sixth port is refused',
  );
  await assert.doesNotReject(checkQuota(t.net.db, t.net.config.network, t.beta.projectId, 'port', 1), 'beta may still create ports');
  const details = await t.request('GET', `/v2.0/quotas/${t.alpha.projectId}/details`, { user: t.alpha });
  assert.deepEqual(details.body.quota.port, { limit: 5, used: 5, reserved: 0 }, 'details show the full quota');

  const reset = await t.request('DELETE', `/v2.0/quotas/${t.alpha.projectId}`, { user: t.admin });
  assert.equal(reset.status, 204, 'reset');
  await assert.doesNotReject(checkQuota(t.net.db, t.net.config.network, t.alpha.projectId, 'port', 1), 'room again after the reset');
});

test('through the ports API: 5 ports fit, the sixth is 409 OverQuota, another project is unaffected', async () => {
  const q = await createTestNetwork();
  try {
    const set = await q.request('PUT', `/v2.0/quotas/${q.alpha.projectId}`, { user: q.admin, payload: { quota: { port: 5 } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const network = await q.create(q.alpha, 'networks', 'network', { name: 'five' });
    const port = (user = q.alpha, networkId = network.id as string): ReturnType<TestNetwork['request']> =>
      q.request('POST', '/v2.0/ports', { user, payload: { port: { network_id: networkId } } });
    for (let i = 1; i <= 5; i++) {
      const res = await port();
      assert.equal(res.status, 201, `port ${i}: ${JSON.stringify(res.body)}`);
    }
    const sixth = await port();
    expectNeutronError(sixth, 409, 'OverQuota', "Quota exceeded for resources: ['port'].");
    const betaNetwork = await q.create(q.beta, 'networks', 'network', { name: 'other' });
    const beta = await port(q.beta, betaNetwork.id as string);
    assert.equal(beta.status, 201, `beta is unaffected: ${JSON.stringify(beta.body)}`);
    const details = await q.request('GET', `/v2.0/quotas/${q.alpha.projectId}/details`, { user: q.alpha });
    assert.deepEqual(details.body.quota.port, { limit: 5, used: 5, reserved: 0 }, 'details agree');
  } finally {
    await q.close();
  }
});
