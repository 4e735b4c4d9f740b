import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud } from './cloud.js';

/**
 * Issue #2's acceptance list, with Debian's real `openstack` CLI against a
 * `stratus up` started on a fresh data directory.
 */
let cloud: Cloud;

before(async () => {
  cloud = await Cloud.create();
  await cloud.start();
});
after(async () => {
  await cloud.stop();
});

test('clouds.yaml, openrc and the database are owner-only', () => {
  for (const name of ['clouds.yaml', 'openrc', 'identity.sqlite']) {
    const stat = fs.statSync(path.join(cloud.dataDir, name));
    assert.equal(stat.mode & 0o077, 0, `${name} must not be readable by others`);
  }
  assert.match(fs.readFileSync(path.join(cloud.dataDir, 'openrc'), 'utf8'), new RegExp(`OS_AUTH_URL='${cloud.authUrl}'`));
});

test('token issue and catalog list', () => {
  const token = cloud.json<{ id: string; project_id: string; user_id: string; expires: string }>(['token', 'issue']);
  assert.ok(token.id.length > 100);
  assert.match(token.project_id, /^[0-9a-f]{32}$/);
  const catalog = cloud.json<{ Name: string; Type: string; Endpoints: { interface: string; url: string; region: string }[] }[]>(['catalog', 'list']);
  const identity = catalog.find((c) => c.Type === 'identity');
  assert.ok(identity, 'the catalog lists identity');
  const publicEndpoint = identity.Endpoints.find((e) => e.interface === 'public');
  assert.equal(publicEndpoint?.url, cloud.authUrl);
  assert.equal(publicEndpoint?.region, 'RegionOne');
});

test('domains, projects, users, groups, roles, assignments and implied roles', () => {
  const domain = cloud.json<{ id: string; name: string }>(['domain', 'create', 'e2e-domain']);
  assert.equal(domain.name, 'e2e-domain');
  const project = cloud.json<{ id: string; domain_id: string }>(['project', 'create', '--domain', 'e2e-domain', 'e2e-project']);
  assert.equal(project.domain_id, domain.id);
  const user = cloud.json<{ id: string; name: string }>(['user', 'create', '--domain', 'e2e-domain', '--password', 'pw-one-1', 'e2e-user']);
  assert.equal(user.name, 'e2e-user');
  const group = cloud.json<{ id: string }>(['group', 'create', '--domain', 'e2e-domain', 'e2e-group']);
  const added = cloud.openstack(['--os-cloud', 'stratus', 'group', 'add', 'user', '--group-domain', 'e2e-domain', '--user-domain', 'e2e-domain', 'e2e-group', 'e2e-user']);
  assert.equal(added.status, 0, added.stderr);
  const members = cloud.json<{ ID: string }[]>(['user', 'list', '--group', group.id]);
  assert.deepEqual(members.map((m) => m.ID), [user.id]);
  const role = cloud.json<{ id: string; name: string }>(['role', 'create', 'e2e-role']);
  assert.equal(role.name, 'e2e-role');
  const add = cloud.openstack(['--os-cloud', 'stratus', 'role', 'add', '--project', project.id, '--user', user.id, 'member']);
  assert.equal(add.status, 0, add.stderr);
  const assignments = cloud.json<{ Role: string; User: string; Project: string }[]>(['role', 'assignment', 'list', '--names', '--effective', '--user', user.id]);
  const roles = assignments.map((a) => a.Role).sort();
  assert.deepEqual(roles, ['member', 'reader'], 'member is granted and implies reader');
  assert.ok(assignments.every((a) => a.User === 'e2e-user@e2e-domain' && a.Project === 'e2e-project@e2e-domain'), JSON.stringify(assignments));
  const implied = cloud.json<{ 'Prior Role Name': string; 'Implied Role Name': string }[]>(['implied', 'role', 'list']);
  const pairs = implied.map((r) => `${r['Prior Role Name']}>${r['Implied Role Name']}`).sort();
  assert.deepEqual(pairs, ['admin>member', 'member>reader']);
});

test('application credential create, then token issue with it', () => {
  const cred = cloud.json<{ id: string; secret: string; project_id: string; roles: string }>(['application', 'credential', 'create', 'e2e-app-cred']);
  assert.ok(cred.secret.length >= 32);
  const env = { OS_AUTH_URL: cloud.authUrl, OS_AUTH_TYPE: 'v3applicationcredential', OS_APPLICATION_CREDENTIAL_ID: cred.id, OS_APPLICATION_CREDENTIAL_SECRET: cred.secret, OS_IDENTITY_API_VERSION: '3', OS_CLIENT_CONFIG_FILE: '/dev/null' };
  const res = cloud.openstack(['token', 'issue', '-f', 'json'], env);
  assert.equal(res.status, 0, res.stderr);
  const token = JSON.parse(res.stdout) as { project_id: string };
  assert.equal(token.project_id, cred.project_id);
  const bad = cloud.openstack(['token', 'issue'], { ...env, OS_APPLICATION_CREDENTIAL_SECRET: 'wrong' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /401|authenticat/i);
});

test('ec2 credentials create', () => {
  const ec2 = cloud.json<{ access: string; secret: string; project_id: string }>(['ec2', 'credentials', 'create']);
  assert.match(ec2.access, /^[0-9a-f]{32}$/);
  assert.ok(ec2.secret.length >= 32);
  const list = cloud.json<{ Access: string }[]>(['ec2', 'credentials', 'list']);
  assert.ok(list.some((c) => c.Access === ec2.access));
});

test('a revoked token is refused with 401', async () => {
  const token = cloud.json<{ id: string }>(['token', 'issue']).id;
  const before = await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': token } });
  assert.equal(before.status, 200);
  const revoke = cloud.openstack(['--os-cloud', 'stratus', 'token', 'revoke', token]);
  assert.equal(revoke.status, 0, revoke.stderr);
  const afterRevoke = await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': token } });
  assert.equal(afterRevoke.status, 401);
  const body = (await afterRevoke.json()) as { error: { code: number } };
  assert.equal(body.error.code, 401);
});

test("a disabled user's token is refused, and the user cannot log in", async () => {
  cloud.json(['project', 'create', 'dis-project']);
  cloud.json(['user', 'create', '--password', 'dis-pw-1', 'dis-user']);
  assert.equal(cloud.openstack(['--os-cloud', 'stratus', 'role', 'add', '--project', 'dis-project', '--user', 'dis-user', 'member']).status, 0);
  const issued = cloud.openstack(['token', 'issue', '-f', 'json'], cloud.rc({ user: 'dis-user', password: 'dis-pw-1', project: 'dis-project' }));
  assert.equal(issued.status, 0, issued.stderr);
  const token = (JSON.parse(issued.stdout) as { id: string }).id;
  assert.equal(cloud.openstack(['--os-cloud', 'stratus', 'user', 'set', '--disable', 'dis-user']).status, 0);
  const res = await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': token } });
  assert.equal(res.status, 401);
  const again = cloud.openstack(['token', 'issue'], cloud.rc({ user: 'dis-user', password: 'dis-pw-1', project: 'dis-project' }));
  assert.notEqual(again.status, 0);
});

test('a member of one project gets 403 from user list and sees only their own projects', () => {
  cloud.json(['project', 'create', 'mem-project']);
  cloud.json(['project', 'create', 'other-project']);
  cloud.json(['user', 'create', '--password', 'mem-pw-1', 'mem-user']);
  assert.equal(cloud.openstack(['--os-cloud', 'stratus', 'role', 'add', '--project', 'mem-project', '--user', 'mem-user', 'member']).status, 0);
  const env = cloud.rc({ user: 'mem-user', password: 'mem-pw-1', project: 'mem-project' });
  const users = cloud.openstack(['user', 'list'], env);
  assert.notEqual(users.status, 0);
  assert.match(users.stderr, /HTTP 403/);
  const projects = cloud.openstack(['project', 'list', '-f', 'json'], env);
  assert.equal(projects.status, 0, projects.stderr);
  assert.deepEqual((JSON.parse(projects.stdout) as { Name: string }[]).map((p) => p.Name), ['mem-project']);
});

test('a restart keeps everything and bootstraps nothing twice', async () => {
  const usersBefore = cloud.json<{ Name: string }[]>(['user', 'list']).map((u) => u.Name).sort();
  const rolesBefore = cloud.json<{ Name: string }[]>(['role', 'list']).length;
  const token = cloud.json<{ id: string }>(['token', 'issue']).id;
  await cloud.stop();
  await cloud.start();
  assert.doesNotMatch(cloud.output, /Generated admin password/);
  assert.deepEqual(cloud.json<{ Name: string }[]>(['user', 'list']).map((u) => u.Name).sort(), usersBefore);
  assert.equal(cloud.json<{ Name: string }[]>(['role', 'list']).length, rolesBefore);
  const services = cloud.json<{ Name: string; Type: string }[]>(['service', 'list']).map((s) => s.Type).sort();
  assert.deepEqual(services, ['block-storage', 'compute', 'identity', 'image', 'network', 'object-store', 'placement', 'volumev3'], 'each service is in the catalog once after a restart');
  const external = cloud.json<{ Name: string }[]>(['network', 'list', '--external']).map((n) => n.Name);
  assert.deepEqual(external, ['public'], 'the public network is bootstrapped once');
  const res = await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': token } });
  assert.equal(res.status, 200, 'a token issued before the restart is still valid');
});
