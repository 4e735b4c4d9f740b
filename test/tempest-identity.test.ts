import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud } from './cloud.js';
import { baseConf, runTempest } from './tempest.js';

/**
 * OpenStack's own suite, Tempest, runs its identity v3 API tests against
 * `./stratus up`, so that conformance never regresses unseen. Features we do
 * not have (trusts, security compliance, access rules) are declared absent,
 * as docs/FEATURES.md says.
 */
let cloud: Cloud;
let workspace: string;

before(async () => {
  cloud = await Cloud.create('tempest-admin-secret');
  await cloud.start();
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-tempest-'));
});
after(async () => {
  await cloud.stop();
});

function tempestConf(): string {
  return `${baseConf(cloud, workspace, 'tempest-admin-secret')}
[identity-feature-enabled]
api_v2 = False
api_v3 = True
trust = False
application_credentials = True
access_rules = False
project_tags = True
security_compliance = False
domain_specific_drivers = False

[service_available]
nova = False
glance = False
neutron = False
cinder = False
swift = False
horizon = False
`;
}

test('Tempest identity v3 API tests pass', async () => {
  const { passed, failed, skipped, output } = await runTempest(workspace, tempestConf(), '^tempest\\.api\\.identity\\.(admin\\.)?v3\\.');
  process.stdout.write(`tempest identity: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  assert.equal(failed, 0, output.slice(-6000));
  assert.ok(passed >= 120, `only ${passed} passed:\n${output.slice(-3000)}`);
});
