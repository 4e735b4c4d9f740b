import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newUuid } from '../common.js';
import { createTestNetwork, errorType, expectNeutronError, type TestNetwork, type TestUser } from '../testing.js';

// Facts from neutron-lib's api-ref (security-groups.inc, security-group-rules.inc),
// Tempest (test_security_groups*.py) and Neutron Zed (db/securitygroups_db.py,
// extensions/securitygroup.py).

let t: TestNetwork;
let notifications: ReturnType<TestNetwork['recordNotifications']>;

before(async () => {
  t = await createTestNetwork({ 'network.default_quotas.security_group': 1000, 'network.default_quotas.security_group_rule': 10000 });
  notifications = t.recordNotifications();
});

after(async () => {
  await t.close();
});

async function createGroup(user: TestUser, body: Record<string, unknown> = {}): Promise<Record<string, any>> {
  return t.create(user, 'security-groups', 'security_group', { name: `sg-${newUuid().slice(0, 8)}`, ...body });
}

function postRule(user: TestUser, rule: Record<string, unknown>): ReturnType<TestNetwork['request']> {
  return t.request('POST', '/v2.0/security-group-rules', { user, payload: { security_group_rule: { direction: 'ingress', ...rule } } });
}

async function createRule(user: TestUser, rule: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await postRule(user, rule);
  assert.equal(res.status, 201, `rule create: ${JSON.stringify(res.body)}`);
  return res.body.security_group_rule as Record<string, any>;
}

/** `POST /v2.0/security-group-rules` of a bulk create. */
function postRules(user: TestUser, rules: Record<string, unknown>[], net: TestNetwork = t): ReturnType<TestNetwork['request']> {
  return net.request('POST', '/v2.0/security-group-rules', { user, payload: { security_group_rules: rules } });
}

/** A port of `user`'s project, on a network of its own, that uses `groupId`. */
async function portUsing(groupId: string, user: TestUser): Promise<string> {
  const network = await t.create(user, 'networks', 'network', { name: 'sg-in-use' });
  const port = await t.create(user, 'ports', 'port', { network_id: network.id, security_groups: [groupId] });
  return port.id as string;
}

describe('security groups', () => {
  test('the first list creates the project default group with Neutron default rules, once', async () => {
    const first = await t.request('GET', '/v2.0/security-groups', { user: t.alpha });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const defaults = (first.body.security_groups as any[]).filter((g) => g.name === 'default');
    assert.equal(defaults.length, 1, 'one default group');
    const group = defaults[0];
    assert.equal(group.project_id, t.alpha.projectId, 'default group belongs to alpha');
    assert.equal(group.tenant_id, t.alpha.projectId, 'tenant_id mirrors project_id');
    assert.equal(group.description, 'Default security group', 'default description');
    assert.equal(group.stateful, true, 'default group is stateful');
    const rules = (group.security_group_rules as any[]).map((r) => `${r.direction}/${r.ethertype}/${r.remote_group_id === group.id ? 'self' : r.remote_group_id}`).sort();
    assert.deepEqual(rules, ['egress/IPv4/null', 'egress/IPv6/null', 'ingress/IPv4/self', 'ingress/IPv6/self'], 'egress anywhere, ingress from members');
    const again = await t.request('GET', '/v2.0/security-groups?name=default', { user: t.alpha });
    assert.deepEqual(
      again.body.security_groups.map((g: any) => g.id),
      [group.id],
      'listing again does not create a second one',
    );
  });

  test('create returns 201 with stateful, two egress rules, timestamps and revision', async () => {
    notifications.clear();
    const res = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { name: 'web', description: 'for web servers' } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const sg = res.body.security_group;
    assert.equal(sg.name, 'web', 'name');
    assert.equal(sg.description, 'for web servers', 'description');
    assert.equal(sg.stateful, true, 'stateful defaults to true');
    assert.equal(sg.project_id, t.alpha.projectId, 'owner is the caller project');
    assert.deepEqual(sg.tags, [], 'no tags');
    assert.equal(typeof sg.revision_number, 'number', 'revision_number');
    assert.match(sg.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at to the second');
    const rules = sg.security_group_rules as any[];
    assert.deepEqual(rules.map((r) => `${r.direction}/${r.ethertype}`).sort(), ['egress/IPv4', 'egress/IPv6'], 'egress rules only');
    assert.ok(
      rules.every((r) => r.security_group_id === sg.id && r.protocol === null && r.remote_ip_prefix === null && r.normalized_cidr === null),
      'open egress rules of this group',
    );
    assert.deepEqual(
      notifications.events.map((e) => e.type),
      ['security_group.create.end'],
      'one create notification',
    );
    assert.equal(notifications.events[0]?.payload.security_group.id, sg.id, 'notification carries the view');
    const call = t.driver.calls.findLast((c) => c.method === 'securityGroupsUpdated');
    assert.deepEqual(call?.args, [[sg.id]], 'driver told about the new group');
  });

  test('stateful false, bulk create, and bad input', async () => {
    const stateless = await createGroup(t.alpha, { stateful: false });
    assert.equal(stateless.stateful, false, 'stateless group');
    const bulk = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_groups: [{ name: 'b1' }, { name: 'b2' }] } });
    assert.equal(bulk.status, 201, JSON.stringify(bulk.body));
    assert.deepEqual(
      bulk.body.security_groups.map((g: any) => g.name),
      ['b1', 'b2'],
      'bulk create returns both',
    );
    const unknown = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { name: 'x', color: 'red' } } });
    assert.equal(unknown.status, 400, 'unknown attribute');
    assert.match(unknown.body.NeutronError.message, /Unrecognized attribute\(s\) 'color'/, 'names the attribute');
    const long = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { name: 'x'.repeat(256) } } });
    assert.equal(long.status, 400, 'name over 255');
    const badBool = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { stateful: 'maybe' } } });
    assert.equal(badBool.status, 400, 'stateful must be a boolean');
    const malformed = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: '{"security_group": ' });
    assert.equal(malformed.status, 400, 'malformed JSON');
  });

  test('a group named default is refused with 409 SecurityGroupDefaultAlreadyExists', async () => {
    for (const name of ['default', 'Default']) {
      const res = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { name } } });
      assert.equal(res.status, 409, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(errorType(res), 'SecurityGroupDefaultAlreadyExists', 'error type');
      assert.equal(res.body.NeutronError.message, 'Default security group already exists.', 'message');
    }
  });

  test('visibility: own project, admin all; another project gets 404; a reader cannot create', async () => {
    const sg = await createGroup(t.alpha);
    const beta = await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.beta });
    assert.equal(beta.status, 404, 'beta cannot see alpha group');
    assert.equal(errorType(beta), 'SecurityGroupNotFound', 'not found type');
    assert.equal(beta.body.NeutronError.message, `Security group ${sg.id} does not exist`, 'not found message');
    const betaList = await t.request('GET', '/v2.0/security-groups', { user: t.beta });
    assert.ok(!betaList.body.security_groups.some((g: any) => g.id === sg.id), 'not in beta list');
    assert.ok(
      betaList.body.security_groups.every((g: any) => g.project_id === t.beta.projectId),
      'beta sees only its own',
    );
    const admin = await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.admin });
    assert.equal(admin.status, 200, 'admin sees it');
    const adminList = await t.request('GET', `/v2.0/security-groups?project_id=${t.alpha.projectId}`, { user: t.admin });
    assert.ok(
      adminList.body.security_groups.some((g: any) => g.id === sg.id),
      'admin lists other projects with a filter',
    );
    const reader = await t.request('GET', `/v2.0/security-groups/${sg.id}?fields=id&fields=name`, { user: t.alphaReader });
    assert.equal(reader.status, 200, 'reader of alpha sees it');
    assert.deepEqual(Object.keys(reader.body.security_group).sort(), ['id', 'name'], 'fields honoured');
    const readerCreate = await t.request('POST', '/v2.0/security-groups', { user: t.alphaReader, payload: { security_group: { name: 'r' } } });
    assert.equal(readerCreate.status, 403, 'reader cannot create');
    assert.equal(errorType(readerCreate), 'PolicyNotAuthorized', 'policy error');
    const other = await t.request('POST', '/v2.0/security-groups', { user: t.alpha, payload: { security_group: { name: 'o', project_id: t.beta.projectId } } });
    assert.equal(other.status, 403, 'a member cannot create in another project');
    const readerDelete = await t.request('DELETE', `/v2.0/security-groups/${sg.id}`, { user: t.alphaReader });
    assert.equal(readerDelete.status, 403, 'reader cannot delete a visible group');
    const missing = await t.request('GET', `/v2.0/security-groups/${newUuid()}`, { user: t.alpha });
    assert.equal(missing.status, 404, 'unknown id');
  });

  test('admin creates a group for another project; its default group is created too', async () => {
    const projectId = newUuid().replaceAll('-', '');
    const res = await t.request('POST', '/v2.0/security-groups', { user: t.admin, payload: { security_group: { name: 'for-other', tenant_id: projectId } } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.security_group.project_id, projectId, 'owner from tenant_id');
    const groups = await t.net.db.selectFrom('security_group').select('name').where('project_id', '=', projectId).execute();
    assert.deepEqual(groups.map((g) => g.name).sort(), ['default', 'for-other'], 'default made for that project');
  });

  test('list filters, sorting and pagination', async () => {
    await createGroup(t.beta, { name: 'zeta' });
    await createGroup(t.beta, { name: 'eta', description: 'two' });
    const filtered = await t.request('GET', '/v2.0/security-groups?description=two', { user: t.beta });
    assert.deepEqual(
      filtered.body.security_groups.map((g: any) => g.name),
      ['eta'],
      'filter on description',
    );
    const sorted = await t.request('GET', '/v2.0/security-groups?sort_key=name&sort_dir=asc&limit=2', { user: t.beta });
    assert.equal(sorted.status, 200, JSON.stringify(sorted.body));
    assert.deepEqual(
      sorted.body.security_groups.map((g: any) => g.name),
      ['default', 'eta'],
      'sorted by name, first page',
    );
    assert.ok(Array.isArray(sorted.body.security_groups_links), 'links to the next page');
    const bad = await t.request('GET', '/v2.0/security-groups?colour=red', { user: t.beta });
    assert.equal(bad.status, 400, 'unknown filter');
  });

  test('update name, description and stateful bumps the revision; names to and from default are refused', async () => {
    const sg = await createGroup(t.alpha);
    notifications.clear();
    const res = await t.request('PUT', `/v2.0/security-groups/${sg.id}`, { user: t.alpha, payload: { security_group: { name: 'renamed', description: 'new', stateful: false } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.security_group.name, 'renamed', 'name updated');
    assert.equal(res.body.security_group.description, 'new', 'description updated');
    assert.equal(res.body.security_group.stateful, false, 'stateful updated');
    assert.equal(res.body.security_group.revision_number, sg.revision_number + 1, 'revision bumped');
    assert.deepEqual(
      notifications.events.map((e) => e.type),
      ['security_group.update.end'],
      'update notification',
    );
    const toDefault = await t.request('PUT', `/v2.0/security-groups/${sg.id}`, { user: t.alpha, payload: { security_group: { name: 'default' } } });
    assert.equal(toDefault.status, 409, 'cannot rename to default');
    assert.equal(errorType(toDefault), 'SecurityGroupDefaultAlreadyExists', 'type');
    const readOnly = await t.request('PUT', `/v2.0/security-groups/${sg.id}`, { user: t.alpha, payload: { security_group: { project_id: 'x' } } });
    assert.equal(readOnly.status, 400, 'project_id is read-only');
    const list = await t.request('GET', '/v2.0/security-groups?name=default', { user: t.alpha });
    const defaultId = list.body.security_groups[0].id as string;
    const fromDefault = await t.request('PUT', `/v2.0/security-groups/${defaultId}`, { user: t.alpha, payload: { security_group: { name: 'mine' } } });
    assert.equal(fromDefault.status, 409, 'cannot rename the default group');
    assert.equal(errorType(fromDefault), 'SecurityGroupCannotUpdateDefault', 'type');
    assert.equal(fromDefault.body.NeutronError.message, 'Updating default security group not allowed.', 'message');
    const describe = await t.request('PUT', `/v2.0/security-groups/${defaultId}`, { user: t.alpha, payload: { security_group: { description: 'ours' } } });
    assert.equal(describe.status, 200, 'the default group description may change');
    const beta = await t.request('PUT', `/v2.0/security-groups/${sg.id}`, { user: t.beta, payload: { security_group: { name: 'x' } } });
    assert.equal(beta.status, 404, 'another project updating: 404');
  });

  test('delete: 204 and its rules go; the default group only by an admin; in use is 409', async () => {
    const sg = await createGroup(t.alpha);
    const rule = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp' });
    notifications.clear();
    const del = await t.request('DELETE', `/v2.0/security-groups/${sg.id}`, { user: t.alpha });
    assert.equal(del.status, 204, JSON.stringify(del.body));
    assert.deepEqual(
      notifications.events.map((e) => e.type),
      ['security_group.delete.end'],
      'delete notification',
    );
    assert.equal(notifications.events[0]?.payload.security_group_id, sg.id, 'payload names the group');
    const gone = await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.alpha });
    assert.equal(gone.status, 404, 'deleted group is gone');
    const ruleGone = await t.request('GET', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.equal(ruleGone.status, 404, 'its rules are gone');
    const again = await t.request('DELETE', `/v2.0/security-groups/${sg.id}`, { user: t.alpha });
    assert.equal(again.status, 404, 'second delete is 404');

    const list = await t.request('GET', '/v2.0/security-groups?name=default', { user: t.beta });
    const defaultId = list.body.security_groups[0].id as string;
    const member = await t.request('DELETE', `/v2.0/security-groups/${defaultId}`, { user: t.beta });
    assert.equal(member.status, 409, 'a member cannot delete the default group');
    assert.equal(errorType(member), 'SecurityGroupCannotRemoveDefault', 'type');
    assert.equal(member.body.NeutronError.message, 'Insufficient rights for removing default security group.', 'message');

    const used = await createGroup(t.beta);
    await portUsing(used.id, t.beta);
    const inUse = await t.request('DELETE', `/v2.0/security-groups/${used.id}`, { user: t.beta });
    assert.equal(inUse.status, 409, 'in use by a port');
    assert.equal(errorType(inUse), 'SecurityGroupInUse', 'type');
    assert.equal(inUse.body.NeutronError.message, `Security Group ${used.id} in use.`, 'message');
    const stateful = await t.request('PUT', `/v2.0/security-groups/${used.id}`, { user: t.beta, payload: { security_group: { stateful: false } } });
    assert.equal(stateful.status, 409, 'stateful cannot change while in use');
    const rename = await t.request('PUT', `/v2.0/security-groups/${used.id}`, { user: t.beta, payload: { security_group: { name: 'still-ok' } } });
    assert.equal(rename.status, 200, 'other changes are fine while in use');

    const admin = await t.request('DELETE', `/v2.0/security-groups/${defaultId}`, { user: t.admin });
    assert.equal(admin.status, 204, 'an admin deletes the default group');
    const recreated = await t.request('GET', '/v2.0/security-groups?name=default', { user: t.beta });
    assert.equal(recreated.body.security_groups.length, 1, 'the next list makes a new default');
    assert.notEqual(recreated.body.security_groups[0].id, defaultId, 'a new one');
  });

  test('deleting a group removes the rules of other groups that name it as remote', async () => {
    const a = await createGroup(t.alpha);
    const b = await createGroup(t.alpha);
    const rule = await createRule(t.alpha, { security_group_id: a.id, remote_group_id: b.id, protocol: 'udp', port_range_min: 53, port_range_max: 53 });
    const del = await t.request('DELETE', `/v2.0/security-groups/${b.id}`, { user: t.alpha });
    assert.equal(del.status, 204, 'deleted');
    const show = await t.request('GET', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.equal(show.status, 404, 'the referring rule went with it');
    const call = t.driver.calls.findLast((c) => c.method === 'securityGroupsUpdated');
    assert.deepEqual((call?.args[0] as string[]).sort(), [a.id, b.id].sort(), 'driver told about both groups');
  });

  test('security_group quota: the default group counts, the next over the limit is 409 OverQuota', async () => {
    const q = await createTestNetwork({ 'network.default_quotas.security_group': 2 });
    try {
      const first = await q.request('POST', '/v2.0/security-groups', { user: q.alpha, payload: { security_group: { name: 'one' } } });
      assert.equal(first.status, 201, 'default + one = 2');
      const second = await q.request('POST', '/v2.0/security-groups', { user: q.alpha, payload: { security_group: { name: 'two' } } });
      expectNeutronError(second, 409, 'OverQuota', "Quota exceeded for resources: ['security_group'].");
      const beta = await q.request('POST', '/v2.0/security-groups', { user: q.beta, payload: { security_group: { name: 'one' } } });
      assert.equal(beta.status, 201, 'another project is unaffected');
    } finally {
      await q.close();
    }
  });
});

describe('security group rules', () => {
  test('create shows every attribute, normalizes the prefix and revises the group', async () => {
    const sg = await createGroup(t.alpha);
    notifications.clear();
    const rule = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'TCP', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.0.0.5/24', ethertype: 'ipv4', description: 'ssh' });
    assert.deepEqual(
      Object.keys(rule).sort(),
      [
        'created_at',
        'description',
        'direction',
        'ethertype',
        'id',
        'normalized_cidr',
        'port_range_max',
        'port_range_min',
        'project_id',
        'protocol',
        'remote_address_group_id',
        'remote_group_id',
        'remote_ip_prefix',
        'revision_number',
        'security_group_id',
        'tenant_id',
        'updated_at',
      ],
      'attributes',
    );
    assert.equal(rule.protocol, 'tcp', 'protocol lower-cased');
    assert.equal(rule.ethertype, 'IPv4', 'ethertype case fixed');
    assert.equal(rule.remote_ip_prefix, '10.0.0.5/24', 'prefix kept as given');
    assert.equal(rule.normalized_cidr, '10.0.0.0/24', 'normalized_cidr clears host bits');
    assert.equal(rule.remote_address_group_id, null, 'no address group');
    assert.equal(rule.port_range_min, 22, 'port min');
    assert.equal(rule.description, 'ssh', 'description');
    assert.equal(rule.project_id, t.alpha.projectId, 'owner');
    assert.deepEqual(
      notifications.events.map((e) => e.type),
      ['security_group_rule.create.end'],
      'rule notification',
    );
    const call = t.driver.calls.findLast((c) => c.method === 'securityGroupsUpdated');
    assert.deepEqual(call?.args, [[sg.id]], 'driver told');
    const group = await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.alpha });
    assert.ok(
      group.body.security_group.security_group_rules.some((r: any) => r.id === rule.id),
      'group shows the rule',
    );
    assert.equal(group.body.security_group.revision_number, sg.revision_number + 1, 'group revised');
    const show = await t.request('GET', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.deepEqual(show.body.security_group_rule, rule, 'show equals create');
    const v6 = await createRule(t.alpha, { security_group_id: sg.id, ethertype: 'IPv6', protocol: 'tcp', remote_ip_prefix: '2001:DB8:0:0::1/64' });
    assert.equal(v6.remote_ip_prefix, '2001:db8::1/64', 'IPv6 canonical text');
    assert.equal(v6.normalized_cidr, '2001:db8::/64', 'IPv6 normalized');
    const host = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'udp', remote_ip_prefix: '192.168.7.7' });
    assert.equal(host.remote_ip_prefix, '192.168.7.7/32', 'an address becomes a /32');
  });

  test('protocols: names, numbers, any, IPv6 ICMP canonical names', async () => {
    const sg = await createGroup(t.alpha);
    const udp = await createRule(t.alpha, { security_group_id: sg.id, protocol: 17 });
    assert.equal(udp.protocol, '17', 'number kept as text');
    assert.equal(udp.ethertype, 'IPv4', 'ethertype defaults to IPv4');
    const any = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'any', direction: 'egress', remote_ip_prefix: '10.9.0.0/16' });
    assert.equal(any.protocol, null, 'any is no protocol');
    const icmp6 = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'icmp', ethertype: 'IPv6' });
    assert.equal(icmp6.protocol, 'ipv6-icmp', 'icmp over IPv6 is ipv6-icmp');
    const legacy = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'icmpv6', ethertype: 'IPv6' });
    assert.equal(legacy.status, 409, 'icmpv6 is the same rule as ipv6-icmp');
    for (const protocol of ['ah', 'dccp', 'egp', 'esp', 'gre', 'igmp', 'ipip', 'ospf', 'pgm', 'rsvp', 'sctp', 'udplite', 'vrrp', '0', '255']) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol, direction: 'egress' });
      assert.equal(res.status, 201, `${protocol}: ${JSON.stringify(res.body)}`);
    }
    for (const protocol of ['ipv6-encap', 'ipv6-frag', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route']) {
      const ok = await postRule(t.alpha, { security_group_id: sg.id, protocol, ethertype: 'IPv6' });
      assert.equal(ok.status, 201, `${protocol} over IPv6`);
      const bad = await postRule(t.alpha, { security_group_id: sg.id, protocol, ethertype: 'IPv4' });
      assert.equal(bad.status, 400, `${protocol} over IPv4`);
      assert.equal(errorType(bad), 'SecurityGroupEthertypeConflictWithProtocol', 'type');
    }
    for (const protocol of ['bad_protocol_name', '256', '-1', 1.5, true]) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol });
      assert.equal(res.status, 400, `protocol ${String(protocol)}`);
      assert.equal(errorType(res), 'SecurityGroupRuleInvalidProtocol', 'type');
    }
  });

  test('tcp/udp port ranges as Tempest checks them', async () => {
    const sg = await createGroup(t.alpha);
    const cases: [number | null, number | null, string][] = [
      [-16, 80, 'Invalid value for port -16'],
      [80, 79, 'port_range_min must be <= port_range_max'],
      [80, 65536, 'Invalid value for port 65536'],
      [null, 6, 'port_range_min must be <= port_range_max'],
      [-16, 65536, 'Invalid value for port'],
      [0, 10, 'Invalid value for port 0'],
    ];
    for (const [min, max, message] of cases) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', port_range_min: min, port_range_max: max });
      assert.equal(res.status, 400, `${min}-${max}`);
      assert.ok(res.body.NeutronError.message.includes(message), `${min}-${max}: ${res.body.NeutronError.message}`);
    }
    const range = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', port_range_min: 80, port_range_max: 79 });
    assert.equal(errorType(range), 'SecurityGroupInvalidPortRange', 'type');
    const noProto = await postRule(t.alpha, { security_group_id: sg.id, port_range_min: 80, port_range_max: 80 });
    assert.equal(noProto.status, 400, 'ports without protocol');
    assert.equal(errorType(noProto), 'SecurityGroupProtocolRequiredWithPorts', 'type');
    const gre = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'gre', port_range_min: 80, port_range_max: 80 });
    assert.equal(gre.status, 400, 'ports with a protocol without ports');
    assert.equal(gre.body.NeutronError.message, 'Ports cannot be specified for protocol 47. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.', 'message');
    const whole = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'udp', port_range_min: 1, port_range_max: 65535 });
    assert.equal(whole.port_range_min, null, 'the whole range is no range');
    assert.equal(whole.port_range_max, null, 'the whole range is no range');
    const text = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', port_range_min: '8080', port_range_max: '8081' });
    assert.equal(text.port_range_min, 8080, 'ports given as text');
  });

  test('icmp type and code as Tempest checks them', async () => {
    const sg = await createGroup(t.alpha);
    const bad: [number | null, number | null, string][] = [
      [1, 256, 'Invalid value for ICMP code'],
      [-1, 25, 'Invalid value'],
      [null, 6, 'ICMP type (port-range-min) is missing'],
      [300, 1, 'Invalid value for ICMP type'],
    ];
    for (const [min, max, message] of bad) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'icmp', port_range_min: min, port_range_max: max });
      assert.equal(res.status, 400, `${min}/${max}`);
      assert.ok(res.body.NeutronError.message.includes(message), `${min}/${max}: ${res.body.NeutronError.message}`);
    }
    for (const [type, code] of [
      [3, 2],
      [3, 0],
      [8, 0],
      [0, 0],
      [11, null],
    ] as const) {
      const rule = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'icmp', port_range_min: type, port_range_max: code });
      assert.equal(rule.port_range_min, type, 'icmp type kept');
      assert.equal(rule.port_range_max, code, 'icmp code kept');
    }
  });

  test('bad ethertype, prefixes, remotes and groups', async () => {
    const sg = await createGroup(t.alpha);
    const other = await createGroup(t.alpha);
    const ether = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'udp', ethertype: 'bad_ethertype' });
    assert.equal(ether.status, 400, 'bad ethertype');
    assert.equal(errorType(ether), 'SecurityGroupRuleInvalidEtherType', 'type');
    for (const prefix of ['192.168.1./24', '192.168.1.1/33', 'bad_prefix', '256', 5]) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', remote_ip_prefix: prefix });
      assert.equal(res.status, 400, `prefix ${String(prefix)}`);
      assert.equal(errorType(res), 'InvalidCIDR', 'type');
    }
    for (const [ethertype, prefix] of [
      ['IPv6', '10.0.0.0/24'],
      ['IPv4', '2001:db8::/64'],
    ]) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', ethertype, remote_ip_prefix: prefix });
      assert.equal(res.status, 400, `${ethertype} with ${prefix}`);
      assert.match(res.body.NeutronError.message, /^Conflicting value ethertype/, 'message');
    }
    const both = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', remote_ip_prefix: '10.0.0.0/24', remote_group_id: other.id });
    assert.equal(both.status, 400, 'prefix and group');
    assert.equal(errorType(both), 'SecurityGroupMultipleRemoteEntites', 'type');
    for (const remote of ['bad_group_id', newUuid()]) {
      const res = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', remote_group_id: remote });
      assert.equal(res.status, 404, `remote ${remote}`);
      assert.equal(errorType(res), 'SecurityGroupNotFound', 'type');
    }
    const missing = await postRule(t.alpha, { security_group_id: newUuid() });
    assert.equal(missing.status, 404, 'unknown group');
    const betaGroup = await postRule(t.beta, { security_group_id: sg.id, protocol: 'tcp' });
    assert.equal(betaGroup.status, 404, 'another project group is not found');
    const betaRemote = await createGroup(t.beta);
    const foreignRemote = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', remote_group_id: betaRemote.id });
    assert.equal(foreignRemote.status, 404, 'another project group as remote is not found');
    const addressGroup = await postRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', remote_address_group_id: newUuid() });
    assert.equal(addressGroup.status, 404, 'no address groups exist');
    const noDirection = await t.request('POST', '/v2.0/security-group-rules', { user: t.alpha, payload: { security_group_rule: { security_group_id: sg.id } } });
    assert.equal(noDirection.status, 400, 'direction required');
    const badDirection = await postRule(t.alpha, { security_group_id: sg.id, direction: 'sideways' });
    assert.equal(badDirection.status, 400, 'direction value');
    assert.equal(badDirection.body.NeutronError.message, "Invalid input for direction. Reason: sideways is not in ['ingress', 'egress'].", 'message');
    const unknown = await postRule(t.alpha, { security_group_id: sg.id, name: 'x' });
    assert.equal(unknown.status, 400, 'rules have no name');
    const reader = await postRule(t.alphaReader, { security_group_id: sg.id });
    assert.equal(reader.status, 403, 'a reader cannot create rules');
    const admin = await postRule(t.admin, { security_group_id: sg.id, protocol: 'tcp', port_range_min: 9, port_range_max: 9, remote_group_id: betaRemote.id });
    assert.equal(admin.status, 201, `an admin may name any group: ${JSON.stringify(admin.body)}`);
    const left = await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.alpha });
    assert.equal(left.body.security_group.security_group_rules.length, 3, 'refused rules created nothing');
  });

  test('a duplicate rule is 409 SecurityGroupRuleExists naming the rule, compared normalized', async () => {
    const sg = await createGroup(t.alpha);
    const rule = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', port_range_min: 66, port_range_max: 67 });
    const same = await postRule(t.alpha, { security_group_id: sg.id, protocol: '6', port_range_min: 66, port_range_max: 67, description: 'other words' });
    assert.equal(same.status, 409, 'tcp and 6 are the same');
    assert.equal(errorType(same), 'SecurityGroupRuleExists', 'type');
    assert.equal(same.body.NeutronError.message, `Security group rule already exists. Rule id is ${rule.id}.`, 'message');
    const egress = (sg.security_group_rules as any[]).find((r) => r.direction === 'egress' && r.ethertype === 'IPv4');
    const everywhere = await postRule(t.alpha, { security_group_id: sg.id, direction: 'egress', remote_ip_prefix: '0.0.0.0/0' });
    assert.equal(everywhere.status, 409, '0.0.0.0/0 is the same as no prefix');
    assert.ok(everywhere.body.NeutronError.message.includes(egress.id), 'names the default egress rule');
    const otherGroup = await createGroup(t.alpha);
    const elsewhere = await postRule(t.alpha, { security_group_id: otherGroup.id, protocol: 'tcp', port_range_min: 66, port_range_max: 67 });
    assert.equal(elsewhere.status, 201, 'the same rule in another group is fine');
  });

  test('bulk create: all or nothing, one group, no duplicates in the request', async () => {
    const sg = await createGroup(t.alpha);
    const other = await createGroup(t.alpha);
    const ok = await postRules(t.alpha, [
      { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80 },
      { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 443, port_range_max: 443 },
    ]);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.security_group_rules.length, 2, 'both created');
    const twoGroups = await postRules(t.alpha, [
      { security_group_id: sg.id, direction: 'ingress', protocol: 'udp' },
      { security_group_id: other.id, direction: 'ingress', protocol: 'udp' },
    ]);
    expectNeutronError(twoGroups, 400, 'SecurityGroupNotSingleGroupRules');
    const dup = await postRules(t.alpha, [
      { security_group_id: sg.id, direction: 'ingress', protocol: 'udp' },
      { security_group_id: sg.id, direction: 'ingress', protocol: '17' },
    ]);
    expectNeutronError(dup, 409, 'DuplicateSecurityGroupRuleInPost');
    const partlyExisting = await postRules(t.alpha, [
      { security_group_id: sg.id, direction: 'ingress', protocol: 'sctp' },
      { security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: 80, port_range_max: 80 },
    ]);
    expectNeutronError(partlyExisting, 409, 'SecurityGroupRuleExists');
    const rules = await t.request('GET', `/v2.0/security-group-rules?security_group_id=${sg.id}&protocol=sctp`, { user: t.alpha });
    assert.equal(rules.body.security_group_rules.length, 0, 'nothing of the refused bulk was created');
  });

  test('list, show and delete: visibility, filters and 404s', async () => {
    const sg = await createGroup(t.alpha);
    const rule = await createRule(t.alpha, { security_group_id: sg.id, protocol: 'tcp', port_range_min: 5000, port_range_max: 5001 });
    const mine = await t.request('GET', `/v2.0/security-group-rules?security_group_id=${sg.id}`, { user: t.alpha });
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assert.equal(mine.body.security_group_rules.length, 3, 'two egress rules and the new one');
    const byPort = await t.request('GET', '/v2.0/security-group-rules?port_range_min=5000', { user: t.alpha });
    assert.deepEqual(
      byPort.body.security_group_rules.map((r: any) => r.id),
      [rule.id],
      'filter on port',
    );
    const beta = await t.request('GET', '/v2.0/security-group-rules', { user: t.beta });
    assert.ok(!beta.body.security_group_rules.some((r: any) => r.id === rule.id), 'not in beta list');
    const betaShow = await t.request('GET', `/v2.0/security-group-rules/${rule.id}`, { user: t.beta });
    assert.equal(betaShow.status, 404, 'beta cannot see it');
    assert.equal(errorType(betaShow), 'SecurityGroupRuleNotFound', 'type');
    const betaDelete = await t.request('DELETE', `/v2.0/security-group-rules/${rule.id}`, { user: t.beta });
    assert.equal(betaDelete.status, 404, 'beta cannot delete it');
    const readerDelete = await t.request('DELETE', `/v2.0/security-group-rules/${rule.id}`, { user: t.alphaReader });
    assert.equal(readerDelete.status, 403, 'a reader sees but cannot delete');
    const admin = await t.request('GET', '/v2.0/security-group-rules', { user: t.admin });
    assert.ok(
      admin.body.security_group_rules.some((r: any) => r.id === rule.id),
      'admin lists every rule',
    );
    const fields = await t.request('GET', `/v2.0/security-group-rules/${rule.id}?fields=protocol`, { user: t.alpha });
    assert.deepEqual(fields.body.security_group_rule, { protocol: 'tcp' }, 'fields on show');
    const put = await t.request('PUT', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha, payload: { security_group_rule: { description: 'x' } } });
    assert.ok(put.status >= 400, 'rules cannot be updated');
    const before = (await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.alpha })).body.security_group;
    notifications.clear();
    const del = await t.request('DELETE', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.equal(del.status, 204, 'deleted');
    assert.deepEqual(
      notifications.events.map((e) => [e.type, e.payload.security_group_rule_id]),
      [['security_group_rule.delete.end', rule.id]],
      'delete notification',
    );
    const call = t.driver.calls.findLast((c) => c.method === 'securityGroupsUpdated');
    assert.deepEqual(call?.args, [[sg.id]], 'driver told');
    const afterDelete = (await t.request('GET', `/v2.0/security-groups/${sg.id}`, { user: t.alpha })).body.security_group;
    assert.equal(afterDelete.revision_number, before.revision_number + 1, 'group revised by the delete');
    const gone = await t.request('GET', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.equal(gone.status, 404, 'gone');
    const again = await t.request('DELETE', `/v2.0/security-group-rules/${rule.id}`, { user: t.alpha });
    assert.equal(again.status, 404, 'second delete');
  });

  test('security_group_rule quota counts every rule of a bulk create', async () => {
    const q = await createTestNetwork({ 'network.default_quotas.security_group_rule': 8 });
    try {
      // default group (4 rules) + this group (2 rules) = 6
      const sg = await q.create(q.alpha, 'security-groups', 'security_group', { name: 'q' });
      const bulk = (ports: number[]): ReturnType<TestNetwork['request']> =>
        postRules(
          q.alpha,
          ports.map((p) => ({ security_group_id: sg.id, direction: 'ingress', protocol: 'tcp', port_range_min: p, port_range_max: p })),
          q,
        );
      const over = await bulk([1, 2, 3]);
      expectNeutronError(over, 409, 'OverQuota', "Quota exceeded for resources: ['security_group_rule'].");
      const fits = await bulk([1, 2]);
      assert.equal(fits.status, 201, '6 + 2 = 8');
      const full = await q.request('POST', '/v2.0/security-groups', { user: q.alpha, payload: { security_group: { name: 'still' } } });
      assert.equal(full.status, 201, 'a full rule quota does not stop new groups (Neutron only checks the limit)');
    } finally {
      await q.close();
    }
  });
});
