import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouterPort } from '../agents/interfaces.js';
import { radvdConfig } from './radvd.js';

type Subnet = RouterPort['subnets'][number];

function port(id: string, subnets: Partial<Subnet>[], mtu = 1450): RouterPort {
  return {
    id,
    network_id: 'n',
    mac_address: 'fa:16:3e:00:00:01',
    mtu,
    fixed_ips: [],
    subnets: subnets.map((s, i) => ({ id: `s${i}`, cidr: '10.0.0.0/24', gateway_ip: null, ip_version: 4, ipv6_ra_mode: null, ipv6_address_mode: null, dns_nameservers: [], ...s })),
  };
}

test('each RA mode sets its flags: slaac autonomous only, dhcpv6-stateless other-config too, dhcpv6-stateful managed without autonomous addresses', () => {
  const conf = radvdConfig([
    port('11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa', [{ ip_version: 6, cidr: '2001:db8:1::/64', ipv6_ra_mode: 'slaac' }]),
    port('22222222-aaaa-4aaa-8aaa-aaaaaaaaaaaa', [{ ip_version: 6, cidr: '2001:db8:2::/64', ipv6_ra_mode: 'dhcpv6-stateless', dns_nameservers: ['2001:db8::53', '10.0.0.53'] }], 1400),
    port('33333333-aaaa-4aaa-8aaa-aaaaaaaaaaaa', [{ ip_version: 6, cidr: '2001:db8:3::/64', ipv6_ra_mode: 'dhcpv6-stateful' }]),
  ]);
  assert.ok(conf);
  const blocks = conf.split('\n\n');
  assert.equal(blocks.length, 3);
  assert.match(blocks[0] ?? '', /^interface qr-11111111-aa\n\{\n {2}AdvSendAdvert on;/);
  assert.match(blocks[0] ?? '', /AdvManagedFlag off;\n {2}AdvOtherConfigFlag off;\n {2}prefix 2001:db8:1::\/64\n {2}\{\n {4}AdvOnLink on;\n {4}AdvAutonomous on;/);
  assert.match(blocks[1] ?? '', /AdvLinkMTU 1400;/);
  assert.match(blocks[1] ?? '', /AdvManagedFlag off;\n {2}AdvOtherConfigFlag on;/);
  assert.match(blocks[1] ?? '', /RDNSS 2001:db8::53\n/, 'IPv6 DNS servers only');
  assert.match(blocks[2] ?? '', /AdvManagedFlag on;/);
  assert.match(blocks[2] ?? '', /AdvAutonomous off;/);
});

test('no IPv6 subnet with an RA mode: no configuration; a prefix other than /64 is on-link but not for SLAAC', () => {
  assert.equal(radvdConfig([port('11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa', [{}, { ip_version: 6, cidr: '2001:db8::/64' }])]), null);
  const conf = radvdConfig([port('11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa', [{ ip_version: 6, cidr: '2001:db8::/56', ipv6_ra_mode: 'slaac' }])]);
  assert.match(conf ?? '', /prefix 2001:db8::\/56\n {2}\{\n {4}AdvOnLink on;\n {4}AdvAutonomous off;/);
});
