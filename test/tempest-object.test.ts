import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud } from './cloud.js';
import { baseConf, runTempest } from './tempest.js';

/**
 * Tempest's object storage API tests (`tempest.api.object_storage`) against
 * `./stratus up`: one node, three device directories, three replicas, Keystone
 * auth with `member` as the operator role and `ResellerAdmin` as the reseller
 * admin role. Tempest reads the middlewares it may test from `/info`.
 * Container sync is not there (no realms, no sync daemon): its tests skip.
 */
let cloud: Cloud;
let workspace: string;

before(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-tempest-object-'));
  cloud = await Cloud.create('tempest-admin-secret', { STRATUS_SERVICES: 'identity,object' });
  await cloud.start();
});
after(async () => {
  await cloud.stop();
});

/** The middlewares the proxy reports in `GET /info` (what DevStack's discovery gives Tempest). */
async function discoverableApis(): Promise<string> {
  const res = await fetch(`${cloud.objectUrl}/info`);
  assert.equal(res.status, 200);
  const info = (await res.json()) as Record<string, unknown>;
  return Object.keys(info).filter((name) => name !== 'swift').sort().join(',');
}

function tempestConf(apis: string): string {
  return `${baseConf(cloud, workspace, { services: ['swift'] })}
[object-storage]
endpoint_type = public
operator_role = member
reseller_admin_role = ResellerAdmin

[object-storage-feature-enabled]
discoverable_apis = ${apis}
container_sync = False
object_versioning = True
discoverability = True
`;
}

test('Tempest object storage API tests: at least 90% of those that run pass', async () => {
  const { passed, failed, skipped, output } = await runTempest(workspace, tempestConf(await discoverableApis()), '^tempest\\.api\\.object_storage\\.', { concurrency: 4 });
  process.stdout.write(`tempest object: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  const failures = output.split('\n').filter((line) => /\.\.\. FAILED/.test(line));
  if (failures.length > 0) process.stdout.write(`${failures.join('\n')}\n`);
  assert.ok(passed > 0, `nothing passed:\n${output.slice(-3000)}`);
  assert.ok(passed / (passed + failed) >= 0.9, `only ${passed} of ${passed + failed} passed:\n${output.slice(-8000)}`);
});
