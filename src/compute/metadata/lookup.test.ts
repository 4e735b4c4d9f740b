import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InstanceMetadataInfo } from './content.js';
import { lookupMetadata, metadataPathTokens } from './lookup.js';

const INFO: InstanceMetadataInfo = {
  uuid: 'abcdef01-0000-4000-8000-000000000000',
  name: 'n',
  hostname: 'n',
  projectId: 'p',
  availabilityZone: null,
  launchIndex: 2,
  reservationId: 'r-1',
  flavorName: 'm1.small',
  imageRef: '',
  keyName: null,
  keyData: null,
  userData: null,
  metadata: {},
  vifs: [],
  createdAt: '2024-01-01T00:00:00Z',
};
const OPTIONS = { dhcpDomain: '', vendorData: {} };

function body(path: string, address: string | null = null, today?: string): string {
  const answer = lookupMetadata(INFO, OPTIONS, path, address, today);
  assert.equal(answer.kind, 'data', path);
  return answer.kind === 'data' ? answer.body.toString('utf8') : '';
}

test('paths are normalised as Nova normalises them; anything else is the EC2 tree', () => {
  assert.deepEqual(metadataPathTokens('/'), []);
  assert.deepEqual(metadataPathTokens('//latest//meta-data/'), ['ec2', 'latest', 'meta-data']);
  assert.deepEqual(metadataPathTokens('/openstack/x/../latest/./meta_data.json'), ['openstack', 'latest', 'meta_data.json']);
  assert.deepEqual(metadataPathTokens('/../../openstack'), ['openstack']);
  assert.equal(JSON.parse(body('/openstack/2016-06-30/../latest/meta_data.json')).uuid, INFO.uuid);
});

test('OpenStack versions from the future are hidden from the list, not refused', () => {
  assert.deepEqual(body('/openstack', null, '2016-01-01').split('\n'), ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', 'latest']);
  assert.equal(lookupMetadata(INFO, OPTIONS, '/openstack/2020-10-14/meta_data.json', null, '2016-01-01').kind, 'data');
});

test('EC2: the asker\'s address stands in for a server without a fixed IPv4; no zone is empty', () => {
  assert.equal(body('/latest/meta-data/local-ipv4', '10.9.8.7'), '10.9.8.7');
  assert.equal(body('/latest/meta-data/placement/availability-zone'), '');
  assert.equal(body('/latest/meta-data/ami-launch-index'), '2');
  assert.equal(body('/latest/meta-data/ami-id'), 'ami-00000000');
  assert.equal(body('/latest/meta-data/security-groups'), '');
  assert.equal(body('/latest/meta-data/block-device-mapping/'), 'ami\nephemeral0\nroot\nswap');
  assert.equal(body('/latest'), 'meta-data/');
  assert.equal(lookupMetadata(INFO, OPTIONS, '/latest/user-data', null).kind, 'not-found');
  assert.equal(lookupMetadata(INFO, OPTIONS, '/openstack/latest/password', null).kind, 'password');
});
