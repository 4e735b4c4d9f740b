import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { metadataFiles, networkData, toJson, type InstanceMetadataInfo, type MetadataOptions } from './content.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq1bKx7Ybv3JtS4n0dS2z7y8u1pQ1J0k8wTf2m3bXcR test@host';

function info(overrides: Partial<InstanceMetadataInfo> = {}): InstanceMetadataInfo {
  return {
    uuid: '5f3c2a9e-1b7d-4c8e-9f00-aabbccddeeff',
    name: 'web server',
    hostname: 'web-server',
    projectId: 'p1',
    availabilityZone: 'nova',
    launchIndex: 0,
    reservationId: 'r-abc12345',
    flavorName: 'm1.tiny',
    imageRef: '0a1b2c3d-0000-4000-8000-000000000001',
    keyName: 'mykey',
    keyData: KEY,
    userData: Buffer.from('#!/bin/sh\necho héllo\n').toString('base64'),
    metadata: { role: 'web' },
    vifs: [
      {
        portId: '11112222-3333-4444-5555-666677778888',
        networkId: 'net-1',
        mac: 'fa:16:3e:00:00:01',
        mtu: 1450,
        fixedIps: [
          { address: '10.0.0.5', version: 4, subnetId: 's4' },
          { address: '10.0.0.6', version: 4, subnetId: 's4' },
          { address: 'fd00::5', version: 6, subnetId: 's6' },
        ],
      },
      { portId: '99990000-3333-4444-5555-666677778888', networkId: 'net-2', mac: 'fa:16:3e:00:00:02', mtu: null, fixedIps: [{ address: '192.168.1.9', version: 4, subnetId: 's9' }] },
    ],
    createdAt: '2024-01-01T00:00:00Z',
    ...overrides,
  };
}

const OPTIONS: MetadataOptions = { dhcpDomain: 'novalocal', vendorData: { hello: 'world' } };

function json(files: Map<string, Buffer>, path: string): any {
  const body = files.get(path);
  assert.ok(body, `${path} is on the drive`);
  return JSON.parse(body.toString('utf8'));
}

describe('metadataFiles', () => {
  test('lays out the OpenStack and EC2 trees as Nova does', () => {
    const files = metadataFiles(info(), OPTIONS);
    const paths = [...files.keys()].sort();
    for (const v of ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27', '2020-10-14', 'latest']) {
      assert.ok(paths.includes(`openstack/${v}/meta_data.json`), v);
      assert.ok(paths.includes(`openstack/${v}/user_data`), v);
    }
    assert.ok(!paths.includes('openstack/2012-08-10/vendor_data.json'));
    assert.ok(paths.includes('openstack/2013-10-17/vendor_data.json'));
    assert.ok(!paths.includes('openstack/2013-10-17/network_data.json'));
    assert.ok(paths.includes('openstack/2015-10-15/network_data.json'));
    assert.ok(!paths.includes('openstack/2016-06-30/vendor_data2.json'));
    assert.ok(paths.includes('openstack/2016-10-06/vendor_data2.json'));
    for (const f of ['meta_data.json', 'user_data', 'vendor_data.json', 'network_data.json', 'vendor_data2.json']) assert.ok(paths.includes(`openstack/latest/${f}`), f);
    assert.deepEqual(
      paths.filter((p) => p.startsWith('ec2/')),
      ['ec2/2009-04-04/meta-data.json', 'ec2/2009-04-04/user-data', 'ec2/latest/meta-data.json', 'ec2/latest/user-data'],
    );
    assert.ok(!paths.some((p) => p.includes('password')), 'the password is the API\'s only');
  });

  test('meta_data.json says who the server is, with its key and the domain on its host name', () => {
    const files = metadataFiles(info(), OPTIONS);
    const md = json(files, 'openstack/latest/meta_data.json');
    assert.equal(md.uuid, '5f3c2a9e-1b7d-4c8e-9f00-aabbccddeeff');
    assert.equal(md.name, 'web server');
    assert.equal(md.hostname, 'web-server.novalocal');
    assert.equal(md.availability_zone, 'nova');
    assert.equal(md.project_id, 'p1');
    assert.equal(md.launch_index, 0);
    assert.deepEqual(md.meta, { role: 'web' });
    assert.deepEqual(md.public_keys, { mykey: KEY });
    assert.deepEqual(md.keys, [{ name: 'mykey', type: 'ssh', data: KEY }]);
    assert.deepEqual(md.devices, []);
    assert.deepEqual(md.dedicated_cpus, []);
    assert.equal(Buffer.from(md.random_seed, 'base64').length, 512);
    assert.equal('admin_pass' in md, false);
    const folsom = json(files, 'openstack/2012-08-10/meta_data.json');
    assert.equal('random_seed' in folsom, false);
    assert.equal('project_id' in folsom, false);
    assert.equal('devices' in json(files, 'openstack/2015-10-15/meta_data.json'), false);
    assert.notEqual(json(files, 'openstack/2013-04-04/meta_data.json').random_seed, md.random_seed, 'each seed is fresh');
  });

  test('the host name has no domain when none is set; no key, no metadata, no user data', () => {
    const files = metadataFiles(info({ keyName: null, keyData: null, userData: null, metadata: {}, availabilityZone: null }), { dhcpDomain: '', vendorData: {} });
    const md = json(files, 'openstack/latest/meta_data.json');
    assert.equal(md.hostname, 'web-server');
    assert.equal('public_keys' in md, false);
    assert.equal('keys' in md, false);
    assert.equal('meta' in md, false, 'Nova leaves out empty metadata');
    assert.equal(md.availability_zone, null);
    assert.ok(![...files.keys()].some((p) => p.endsWith('user_data') || p.endsWith('user-data')));
    assert.equal('public-keys' in json(files, 'ec2/latest/meta-data.json'), false);
    assert.deepEqual(json(files, 'openstack/latest/vendor_data.json'), {});
  });

  test('the admin password goes into meta_data.json only when given', () => {
    const md = json(metadataFiles(info(), OPTIONS, { adminPass: 's3cret' }), 'openstack/latest/meta_data.json');
    assert.equal(md.admin_pass, 's3cret');
  });

  test('user data is decoded from base64 to its bytes', () => {
    const files = metadataFiles(info({ userData: Buffer.from([0x1f, 0x8b, 0x00, 0xff]).toString('base64') }), OPTIONS);
    assert.deepEqual(files.get('openstack/latest/user_data'), Buffer.from([0x1f, 0x8b, 0x00, 0xff]));
    assert.deepEqual(files.get('ec2/latest/user-data'), Buffer.from([0x1f, 0x8b, 0x00, 0xff]));
    assert.equal(metadataFiles(info(), OPTIONS).get('openstack/latest/user_data')?.toString('utf8'), '#!/bin/sh\necho héllo\n');
  });

  test('network_data.json: a phy link per port, the first address of each family as a DHCP network', () => {
    const nd = json(metadataFiles(info(), OPTIONS), 'openstack/latest/network_data.json');
    assert.deepEqual(nd, {
      links: [
        { id: 'tap11112222-33', vif_id: '11112222-3333-4444-5555-666677778888', type: 'phy', mtu: 1450, ethernet_mac_address: 'fa:16:3e:00:00:01' },
        { id: 'tap99990000-33', vif_id: '99990000-3333-4444-5555-666677778888', type: 'phy', mtu: null, ethernet_mac_address: 'fa:16:3e:00:00:02' },
      ],
      networks: [
        { id: 'network0', type: 'ipv4_dhcp', link: 'tap11112222-33', network_id: 'net-1' },
        { id: 'network1', type: 'ipv6_dhcp', link: 'tap11112222-33', network_id: 'net-1' },
        { id: 'network2', type: 'ipv4_dhcp', link: 'tap99990000-33', network_id: 'net-2' },
      ],
      services: [],
    });
    assert.equal(networkData(info({ vifs: [] })), null);
    assert.deepEqual(json(metadataFiles(info({ vifs: [] }), OPTIONS), 'openstack/latest/network_data.json'), {});
    const given = { links: [], networks: [{ id: 'x' }], services: [] };
    assert.deepEqual(json(metadataFiles(info(), OPTIONS, { networkData: given }), 'openstack/latest/network_data.json'), given);
  });

  test('vendor data: static JSON, and under "static" in vendor_data2.json', () => {
    const files = metadataFiles(info(), OPTIONS);
    assert.deepEqual(json(files, 'openstack/latest/vendor_data.json'), { hello: 'world' });
    assert.deepEqual(json(files, 'openstack/latest/vendor_data2.json'), { static: { hello: 'world' } });
  });

  test('the EC2 meta-data.json: ids, addresses, keys without listing names, placement', () => {
    const md = json(metadataFiles(info({ securityGroups: ['default'], rootDeviceName: '/dev/vda' }), OPTIONS), 'ec2/latest/meta-data.json');
    assert.equal(md['instance-id'], 'i-5f3c2a9e');
    assert.equal(md['ami-id'], 'ami-0a1b2c3d');
    assert.equal(md['ami-launch-index'], 0);
    assert.equal(md.hostname, 'web-server.novalocal');
    assert.equal(md['local-hostname'], 'web-server.novalocal');
    assert.equal(md['local-ipv4'], '10.0.0.5');
    assert.equal(md['public-ipv4'], '');
    assert.equal(md['instance-type'], 'm1.tiny');
    assert.equal(md['reservation-id'], 'r-abc12345');
    assert.equal(md['instance-action'], 'none');
    assert.deepEqual(md['security-groups'], ['default']);
    assert.deepEqual(md.placement, { 'availability-zone': 'nova' });
    assert.deepEqual(md['block-device-mapping'], { ami: 'vda', root: '/dev/vda' });
    assert.deepEqual(md['public-keys'], { '0': { 'openssh-key': KEY } });
  });

  test('JSON is written as Python writes it', () => {
    assert.equal(toJson({ a: [1, 'é'], b: null }).toString('utf8'), '{"a": [1, "\\u00e9"], "b": null}');
  });
});
