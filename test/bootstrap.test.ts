import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud, ROOT } from './cloud.js';

/** First start without a configured password, and key rotation on a running cloud. */
let cloud: Cloud;
before(async () => {
  cloud = await Cloud.create(null);
  await cloud.start();
});
after(async () => {
  await cloud.stop();
});

test('without a configured password one is generated, printed once and written to clouds.yaml', () => {
  const printed = /Generated admin password[^:]*: (\S+)/.exec(cloud.output)?.[1];
  assert.ok(printed, `no generated password in:\n${cloud.output}`);
  const token = cloud.json<{ id: string }>(['token', 'issue']);
  assert.ok(token.id.length > 100);
  const env = cloud.rc({ user: 'admin', password: printed, project: 'admin' });
  assert.equal(cloud.openstack(['token', 'issue'], env).status, 0, 'the printed password logs in');
});

test('identity rotate-keys: tokens made before stay valid, new tokens work', async () => {
  const before = cloud.json<{ id: string }>(['token', 'issue']).id;
  const rotate = (): string => {
    const res = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'identity', 'rotate-keys', '--data', cloud.dataDir], { encoding: 'utf8', env: cloud.env });
    assert.equal(res.status, 0, res.stderr);
    return res.stdout;
  };
  assert.match(rotate(), /key 2 is now primary; 3 keys active \(max 3\)/);
  assert.match(rotate(), /key 3 is now primary; 3 keys active \(max 3\)/);
  const res = await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': before } });
  assert.equal(res.status, 200, 'a token from two rotations ago (now a secondary key) is still valid');
  assert.equal(cloud.json<{ Name: string }[]>(['project', 'list']).length >= 2, true);
  assert.match(rotate(), /key 4 is now primary/);
  // The running cloud reloads its keys every few seconds; wait for it, bounded.
  let status = 0;
  for (let i = 0; i < 120 && status !== 401; i++) {
    status = (await fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': before } })).status;
    if (status !== 401) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(status, 401, 'its key has been dropped after three rotations');
  assert.ok(cloud.json<{ id: string }>(['token', 'issue']).id, 'new tokens still work');
});
