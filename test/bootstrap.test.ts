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
  const status = (): Promise<number> => fetch(`${cloud.authUrl}/auth/projects`, { headers: { 'X-Auth-Token': before } }).then((r) => r.status);
  // Keys 0 (staged) and 1 (primary) at the start: `before` is made with key 1.
  assert.match(rotate(), /key 2 is now primary; 3 keys active \(max 3\)/);
  // The running cloud reloads its keys every 5 s; once it has, key 1 is a secondary and still decrypts.
  await new Promise((r) => setTimeout(r, 6_000));
  assert.equal(await status(), 200, 'a token from before the rotation (its key now secondary) is still valid');
  assert.equal(cloud.json<{ Name: string }[]>(['project', 'list']).length >= 2, true);
  // The second rotation drops key 1 (staged + primary + one secondary = max 3).
  assert.match(rotate(), /key 3 is now primary; 3 keys active \(max 3\)/);
  let last = 0;
  for (let i = 0; i < 120 && last !== 401; i++) {
    last = await status();
    if (last !== 401) await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(last, 401, 'its key has been dropped after two rotations');
  assert.ok(cloud.json<{ id: string }>(['token', 'issue']).id, 'new tokens still work');
});
