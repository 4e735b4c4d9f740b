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
  return baseConf(cloud, workspace, {
    identityFeatures: { trust: false, application_credentials: true, access_rules: false, project_tags: true, security_compliance: false, domain_specific_drivers: false },
  });
}

test('Tempest identity v3 API tests pass', async () => {
  const { passed, failed, skipped, output } = await runTempest(workspace, tempestConf(), '^tempest\\.api\\.identity\\.(admin\\.)?v3\\.');
  process.stdout.write(`tempest identity: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  assert.equal(failed, 0, output.slice(-6000));
  assert.ok(passed >= 120, `only ${passed} passed:\n${output.slice(-3000)}`);
});
