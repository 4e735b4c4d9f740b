import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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

function insertPort(networkId: string): Promise<PortForIpam> {
  return t.insertPort({ network_id: networkId, device_owner: 'compute:nova' });
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

test('many small subnets: each port gets an address of the first subnet with room, full ones are passed', async () => {
  const networkId = (await t.create(t.alpha, 'networks', 'network', {})).id as string;
  for (const third of [0, 8, 16]) {
    await t.create(t.alpha, 'subnets', 'subnet', { network_id: networkId, ip_version: 4, cidr: `10.3.0.${third}/29`, allocation_pools: [{ start: `10.3.0.${third + 2}`, end: `10.3.0.${third + 5}` }] });
  }
  const subnets = await subnetsOf(t.net.db, networkId);
  const pool = (s: SubnetRow): string[] => [2, 3, 4, 5].map((i) => formatIp(4, (parseIp(s.cidr.split('/')[0] ?? '')?.value ?? 0n) + BigInt(i)));
  // The first two also hold addresses outside their pools (the gateway, an
  // address asked for): they do not make a subnet full before its pool is.
  for (const s of subnets.slice(0, 2)) {
    const base = parseIp(s.cidr.split('/')[0] ?? '')?.value ?? 0n;
    await t.insertPort({ network_id: networkId, device_owner: 'network:router_interface' }, [{ subnet_id: s.id, ip_address: formatIp(4, base + 1n) }]);
    await t.insertPort({ network_id: networkId, device_owner: 'compute:nova' }, [{ subnet_id: s.id, ip_address: formatIp(4, base + 6n) }]);
  }
  const got: { subnet_id: string; ip_address: string }[] = [];
  for (let i = 0; i < 12; i++) {
    const port = await insertPort(networkId);
    const [allocation, ...more] = await t.net.db.transaction().execute((trx) => allocate(trx, port, subnets, undefined));
    assert.ok(allocation && more.length === 0, 'one address');
    got.push(allocation);
  }
  subnets.forEach((s, i) => {
    const mine = got.slice(4 * i, 4 * i + 4);
    assert.ok(mine.every((a) => a.subnet_id === s.id), `ports ${4 * i}-${4 * i + 3} on subnet ${i}: ${JSON.stringify(got)}`);
    assert.deepEqual(mine.map((a) => a.ip_address).sort(), pool(s), `subnet ${i} hands out its whole pool, nothing else`);
  });
  const extra = await insertPort(networkId);
  await assert.rejects(t.net.db.transaction().execute((trx) => allocate(trx, extra, subnets, undefined)), { type: 'IpAddressGenerationFailure' } as object, 'all full');
  // A pool address given back in the first subnet is found again, past nothing.
  const back = got[1];
  assert.ok(back, 'an allocation');
  await t.net.db.deleteFrom('ip_allocation').where('subnet_id', '=', back.subnet_id).where('ip_address', '=', back.ip_address).execute();
  const again = await t.net.db.transaction().execute((trx) => allocate(trx, extra, subnets, undefined));
  assert.deepEqual(again, [back], 'the freed address');
});
