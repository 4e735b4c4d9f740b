import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoNow, newUuid } from '../common.js';
import type { SubnetRow } from '../db/schema.js';
import { subnetsOf } from '../networks.js';
import { createTestNetwork, type TestNetwork } from '../testing.js';
import { eui64, formatIp, parseIp } from './addresses.js';
import { allocate, release, retryOnConflict, type PortForIpam } from './allocator.js';

// IPAM under concurrency: addresses are unique by the ip_allocation primary
// key; a transaction that loses a race is run again whole.

let t: TestNetwork;

before(async () => {
  t = await createTestNetwork();
});

after(async () => {
  await t.close();
});

async function insertPort(networkId: string, deviceOwner = 'compute:nova'): Promise<PortForIpam> {
  const id = newUuid();
  const now = isoNow();
  const mac = `fa:16:3e:${id.slice(0, 2)}:${id.slice(2, 4)}:${id.slice(4, 6)}`;
  await t.net.db
    .insertInto('port')
    .values({
      id, project_id: t.alpha.projectId, name: '', description: '', created_at: now, updated_at: now, revision_number: 1, network_id: networkId,
      mac_address: mac, admin_state_up: 1, status: 'DOWN', device_id: '', device_owner: deviceOwner, binding_host_id: '', binding_vif_type: 'unbound',
      binding_vif_details: '{}', binding_vnic_type: 'normal', binding_profile: '{}', port_security_enabled: 1, allowed_address_pairs: '[]', extra_dhcp_opts: '[]', dns_name: '',
    })
    .execute();
  return { id, network_id: networkId, mac_address: mac, device_owner: deviceOwner };
}

async function subnetOn(cidr: string, extra: Record<string, unknown> = {}): Promise<{ networkId: string; subnets: SubnetRow[] }> {
  const networkId = (await t.create(t.alpha, 'networks', 'network', {})).id as string;
  await t.create(t.alpha, 'subnets', 'subnet', { network_id: networkId, ip_version: cidr.includes(':') ? 6 : 4, cidr, ...extra });
  return { networkId, subnets: await subnetsOf(t.net.db, networkId) };
}

test('concurrent allocations on a small subnet get distinct addresses, then the subnet is full', async () => {
  const { networkId, subnets } = await subnetOn('10.0.0.0/28');
  const ports = await Promise.all(Array.from({ length: 13 }, () => insertPort(networkId)));
  const results = await Promise.all(ports.map((port) => retryOnConflict(() => t.net.db.transaction().execute((trx) => allocate(trx, port, subnets, undefined)))));
  const addresses = results.map((r) => r[0]?.ip_address);
  assert.equal(new Set(addresses).size, 13, `distinct: ${addresses.join(',')}`);
  assert.ok(!addresses.includes('10.0.0.1'), 'never the gateway');
  const extra = await insertPort(networkId);
  await assert.rejects(t.net.db.transaction().execute((trx) => allocate(trx, extra, subnets, undefined)), { type: 'IpAddressGenerationFailure' } as object, 'full');
  const first = ports[0];
  assert.ok(first, 'a port');
  await release(t.net.db, first.id);
  const again = await t.net.db.transaction().execute((trx) => allocate(trx, extra, subnets, undefined));
  assert.equal(again[0]?.ip_address, addresses[0], 'a released address is handed out again');
});

test('specific addresses: taken, outside, gateway', async () => {
  const { networkId, subnets } = await subnetOn('10.1.0.0/24');
  const subnet = subnets[0];
  assert.ok(subnet, 'subnet');
  const a = await insertPort(networkId);
  const b = await insertPort(networkId);
  const got = await allocate(t.net.db, a, subnets, [{ ip_address: '10.1.0.50' }]);
  assert.deepEqual(got, [{ subnet_id: subnet.id, ip_address: '10.1.0.50' }], 'asked address');
  await assert.rejects(allocate(t.net.db, b, subnets, [{ ip_address: '10.1.0.50' }]), { type: 'IpAddressAlreadyAllocated' } as object, 'taken');
  await assert.rejects(allocate(t.net.db, b, subnets, [{ ip_address: '10.2.0.5' }]), { type: 'InvalidIpForNetwork' } as object, 'outside');
  await assert.rejects(allocate(t.net.db, b, subnets, [{ ip_address: '10.1.0.1' }]), { type: 'IpAddressAlreadyAllocated' } as object, 'the gateway is not for ports');
});

test('SLAAC subnets give the EUI-64 address', async () => {
  const { networkId, subnets } = await subnetOn('2001:db8:5::/64', { ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' });
  const port = await insertPort(networkId);
  const got = await allocate(t.net.db, port, subnets, undefined);
  const expected = formatIp(6, eui64({ version: 6, network: parseIp('2001:db8:5::')?.value ?? 0n, prefix: 64 }, port.mac_address));
  assert.deepEqual(got.map((g) => g.ip_address), [expected], 'EUI-64 from the MAC');
  assert.ok(expected.startsWith('2001:db8:5:0:f816:3eff:fe'), expected);
});
