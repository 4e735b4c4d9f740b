import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud, type Account } from './cloud.js';

/**
 * The network service (Neutron v2.0) driven by Debian's real `openstack` CLI
 * against a `stratus up` on a fresh data directory, with the fake data plane:
 * networks, IPv4 and SLAAC IPv6 subnets, ports with fixed IPs, routers with
 * the bootstrap's `public` network as gateway, floating IPs, security groups,
 * quotas, and isolation between projects. Plus IPAM under 200 concurrent
 * port creations straight on the HTTP API.
 */
let cloud: Cloud;

const accounts: Record<'a' | 'b', Account> = {
  a: { user: 'net-user-a', password: 'net-pw-a-1', project: 'net-project-a', projectId: '' },
  b: { user: 'net-user-b', password: 'net-pw-b-1', project: 'net-project-b', projectId: '' },
};

before(async () => {
  cloud = await Cloud.create();
  await cloud.start();
  for (const account of Object.values(accounts)) cloud.addMember(account);
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

/** The addresses of a port as the CLI shows them (a list of {subnet_id, ip_address}). */
function addresses(port: { fixed_ips: unknown }): string[] {
  const fixed = port.fixed_ips as { ip_address: string }[];
  return fixed.map((f) => f.ip_address);
}

test('bootstrap made a shared external network "public" with a subnet', () => {
  const nets = cloud.json<{ Name: string; ID: string; Subnets: string[] | string }[]>(['network', 'list', '--external']);
  const pub = nets.find((n) => n.Name === 'public');
  assert.ok(pub, `public in ${JSON.stringify(nets)}`);
  const shown = cloud.json<Record<string, unknown>>(['network', 'show', 'public']);
  assert.equal(shown['router:external'], true, `router:external of ${JSON.stringify(shown)}`);
  const subnets = cloud.json<{ Name: string; Subnet: string }[]>(['subnet', 'list', '--network', 'public']);
  assert.deepEqual(subnets.map((s) => s.Subnet), ['172.24.4.0/24'], `public's subnet: ${JSON.stringify(subnets)}`);
  // As Neutron: an external network is visible to every project, its subnets only to its owner (and admins).
  const seen = cloud.asUserJson<{ Name: string }[]>(accounts.a, ['network', 'list']);
  assert.ok(seen.some((n) => n.Name === 'public'), `a member sees public: ${JSON.stringify(seen)}`);
});

test('network, IPv4 and SLAAC IPv6 subnets, a port with a fixed IP, a router to public, a floating IP', () => {
  const a = accounts.a;
  const net = cloud.asUserJson<{ id: string; name: string; status: string; mtu: number }>(a, ['network', 'create', 'net-a']);
  assert.equal(net.name, 'net-a', 'network name');
  assert.equal(net.status, 'ACTIVE', 'network status');
  const v4 = cloud.asUserJson<{ id: string; cidr: string; gateway_ip: string; allocation_pools: unknown }>(a, ['subnet', 'create', '--network', 'net-a', '--subnet-range', '10.0.0.0/24', 'sub-a-v4']);
  assert.equal(v4.cidr, '10.0.0.0/24', 'v4 cidr');
  assert.equal(v4.gateway_ip, '10.0.0.1', 'default gateway is the first address');
  const v6 = cloud.asUserJson<{ id: string; ip_version: number; ipv6_ra_mode: string; ipv6_address_mode: string; cidr: string }>(a, [
    'subnet', 'create', '--network', 'net-a', '--ip-version', '6', '--ipv6-ra-mode', 'slaac', '--ipv6-address-mode', 'slaac', '--subnet-range', 'fd00:a::/64', 'sub-a-v6',
  ]);
  assert.equal(v6.ip_version, 6, 'v6 subnet');
  assert.equal(v6.ipv6_ra_mode, 'slaac', 'ra mode');
  assert.equal(v6.ipv6_address_mode, 'slaac', 'address mode');

  const port = cloud.asUserJson<{ id: string; fixed_ips: unknown; mac_address: string; status: string }>(a, ['port', 'create', '--network', 'net-a', '--fixed-ip', 'subnet=sub-a-v4,ip-address=10.0.0.50', 'port-a']);
  const ips = addresses(port);
  assert.ok(ips.includes('10.0.0.50'), `fixed IP 10.0.0.50 in ${ips.join(', ')}`);
  assert.ok(ips.some((ip) => ip.startsWith('fd00:a::')), `a SLAAC address in ${ips.join(', ')}`);
  assert.match(port.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/, 'MAC under the base MAC');
  const taken = cloud.asUser(a, ['port', 'create', '--network', 'net-a', '--fixed-ip', 'subnet=sub-a-v4,ip-address=10.0.0.50', 'port-a2']);
  assert.notEqual(taken.status, 0, 'the same fixed IP twice is refused');
  assert.match(taken.stderr, /already allocated|IpAddressAlreadyAllocated|409/i, `refusal says why: ${taken.stderr}`);

  const router = cloud.asUserJson<{ id: string; status: string }>(a, ['router', 'create', 'router-a']);
  assert.equal(router.status, 'ACTIVE', 'router status');
  const added = cloud.asUser(a, ['router', 'add', 'subnet', 'router-a', 'sub-a-v4']);
  assert.equal(added.status, 0, `router add subnet: ${added.stderr}`);
  const gw = cloud.asUser(a, ['router', 'set', '--external-gateway', 'public', 'router-a']);
  assert.equal(gw.status, 0, `router set --external-gateway: ${gw.stderr}`);
  const shownRouter = cloud.asUserJson<{ external_gateway_info: any; interfaces_info?: unknown }>(a, ['router', 'show', 'router-a']);
  const info = typeof shownRouter.external_gateway_info === 'string' ? JSON.parse(shownRouter.external_gateway_info) : shownRouter.external_gateway_info;
  assert.ok(info?.network_id, `gateway info: ${JSON.stringify(shownRouter.external_gateway_info)}`);
  assert.equal(info.enable_snat, true, 'SNAT on by default');

  const fip = cloud.asUserJson<{ id: string; floating_ip_address: string; status: string }>(a, ['floating', 'ip', 'create', 'public']);
  assert.match(fip.floating_ip_address, /^172\.24\.4\./, `floating address from public: ${fip.floating_ip_address}`);
  const set = cloud.asUser(a, ['floating', 'ip', 'set', '--port', 'port-a', fip.id]);
  assert.equal(set.status, 0, `floating ip set --port: ${set.stderr}`);
  const associated = cloud.asUserJson<{ port_id: string; fixed_ip_address: string; router_id: string; status: string }>(a, ['floating', 'ip', 'show', fip.id]);
  assert.equal(associated.port_id, port.id, 'associated with the port');
  assert.equal(associated.fixed_ip_address, '10.0.0.50', 'to its IPv4 address');
  assert.equal(associated.router_id, router.id, 'through the router');
  const unset = cloud.asUser(a, ['floating', 'ip', 'unset', '--port', fip.id]);
  assert.equal(unset.status, 0, `floating ip unset --port: ${unset.stderr}`);
  assert.equal(cloud.asUserJson<{ port_id: string | null }>(a, ['floating', 'ip', 'show', fip.id]).port_id, null, 'disassociated');
});

test('security group with a tcp/22 rule; the same rule twice is a conflict', () => {
  const a = accounts.a;
  const group = cloud.asUserJson<{ id: string; name: string }>(a, ['security', 'group', 'create', 'ssh']);
  assert.equal(group.name, 'ssh', 'group name');
  const rule = cloud.asUserJson<{ id: string; protocol: string; port_range_min: number; port_range_max: number; direction: string }>(a, ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'ssh']);
  assert.equal(rule.protocol, 'tcp', 'protocol');
  assert.equal(rule.port_range_min, 22, 'port min');
  assert.equal(rule.port_range_max, 22, 'port max');
  assert.equal(rule.direction, 'ingress', 'ingress by default');
  const again = cloud.asUser(a, ['security', 'group', 'rule', 'create', '--protocol', 'tcp', '--dst-port', '22', 'ssh']);
  assert.notEqual(again.status, 0, 'a duplicate rule is refused');
  assert.match(again.stderr, /already exists|409/i, `refusal says why: ${again.stderr}`);
  const groups = cloud.asUserJson<{ Name: string }[]>(a, ['security', 'group', 'list']);
  assert.ok(groups.some((g) => g.Name === 'default'), `the project has its default group: ${JSON.stringify(groups)}`);
});

test('quota set --ports 5: the sixth port is refused', () => {
  const b = accounts.b;
  // python3-openstackclient 6.0 builds its compute client in `quota set` even
  // for network quotas, and fails without a compute endpoint: until the cloud
  // has compute, a copy of clouds.yaml points that client somewhere it never calls.
  const clouds = path.join(path.dirname(cloud.dataDir), 'clouds-network-only.yaml');
  const original = fs.readFileSync(path.join(cloud.dataDir, 'clouds.yaml'), 'utf8');
  fs.writeFileSync(clouds, original.replace(/^(\s+)auth:/m, '$1compute_endpoint_override: http://127.0.0.1:9/unused\n$1auth:'));
  const set = cloud.openstack(['--os-cloud', 'stratus', 'quota', 'set', '--ports', '5', b.project], { OS_CLIENT_CONFIG_FILE: clouds });
  assert.equal(set.status, 0, `quota set: ${set.stderr}`);
  cloud.asUserJson(b, ['network', 'create', 'net-b']);
  cloud.asUserJson(b, ['subnet', 'create', '--network', 'net-b', '--subnet-range', '10.1.0.0/24', 'sub-b']);
  for (let i = 1; i <= 5; i++) cloud.asUserJson(b, ['port', 'create', '--network', 'net-b', `port-b-${i}`]);
  const sixth = cloud.asUser(b, ['port', 'create', '--network', 'net-b', 'port-b-6']);
  assert.notEqual(sixth.status, 0, 'the sixth port is refused');
  assert.match(sixth.stderr, /Quota exceeded for resources: \['port'\]/, `Neutron's OverQuota message: ${sixth.stderr}`);
  assert.equal(cloud.asUserJson<unknown[]>(b, ['port', 'list', '--network', 'net-b']).length, 5, 'five ports, nothing half-created');
});

test("another project can neither see nor use a private network", () => {
  const [a, b] = [accounts.a, accounts.b];
  const net = cloud.asUserJson<{ id: string }>(a, ['network', 'create', 'private-a']);
  const seen = cloud.asUserJson<{ ID: string }[]>(b, ['network', 'list']);
  assert.ok(!seen.some((n) => n.ID === net.id), 'B does not list A\'s network');
  const shown = cloud.asUser(b, ['network', 'show', net.id]);
  assert.notEqual(shown.status, 0, 'B cannot show it');
  assert.match(shown.stderr, /No Network found|not found|404/i, `not found for B: ${shown.stderr}`);
  const port = cloud.asUser(b, ['port', 'create', '--network', net.id, 'sneaky']);
  assert.notEqual(port.status, 0, 'B cannot create a port on it');
});

test('200 concurrent port creations on a /24 get distinct addresses; past the pool, IpAddressGenerationFailure and nothing half-created', async () => {
  const token = await adminToken();
  const api = async (method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${cloud.networkUrl}${url}`, { method, headers: { 'x-auth-token': token, 'content-type': 'application/json', accept: 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };
  // The admin project's default quota (500 ports) leaves room for a whole /24.
  const net = await api('POST', '/v2.0/networks', { network: { name: 'ipam-net' } });
  assert.equal(net.status, 201, JSON.stringify(net.body));
  const netId = net.body.network.id as string;
  const sub = await api('POST', '/v2.0/subnets', { subnet: { network_id: netId, ip_version: 4, cidr: '10.9.0.0/24' } });
  assert.equal(sub.status, 201, JSON.stringify(sub.body));
  const createMany = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => api('POST', '/v2.0/ports', { port: { network_id: netId, name: `p${i}` } })));
  const first = await createMany(200);
  assert.deepEqual(first.filter((r) => r.status !== 201).map((r) => r.body), [], 'all 200 within the pool succeed');
  const ips = first.map((r) => r.body.port.fixed_ips[0].ip_address as string);
  assert.equal(new Set(ips).size, 200, 'every address distinct');
  // 253 addresses in 10.9.0.2-254; 60 more requests: 53 fit, 7 fail.
  const second = await createMany(60);
  const ok = second.filter((r) => r.status === 201);
  const failed = second.filter((r) => r.status !== 201);
  assert.equal(ok.length, 53, `53 more fit (got ${ok.length})`);
  assert.equal(failed.length, 7, 'the 254th and later fail');
  for (const f of failed) {
    assert.equal(f.status, 409, JSON.stringify(f.body));
    assert.equal(f.body.NeutronError.type, 'IpAddressGenerationFailure', JSON.stringify(f.body));
  }
  const all = new Set([...ips, ...ok.map((r) => r.body.port.fixed_ips[0].ip_address as string)]);
  assert.equal(all.size, 253, 'the whole pool, each address once');
  const listed = await api('GET', `/v2.0/ports?network_id=${netId}`);
  assert.equal(listed.body.ports.length, 253, 'exactly the acknowledged ports exist');
  // Deleting a port gives its address back.
  const victim = ok[0]!.body.port;
  assert.equal((await api('DELETE', `/v2.0/ports/${victim.id}`)).status, 204, 'delete a port');
  const reuse = await api('POST', '/v2.0/ports', { port: { network_id: netId } });
  assert.equal(reuse.status, 201, JSON.stringify(reuse.body));
  assert.equal(reuse.body.port.fixed_ips[0].ip_address, victim.fixed_ips[0].ip_address, 'the freed address is handed out again');
});

async function adminToken(): Promise<string> {
  const res = await fetch(`${cloud.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: 'e2e-admin-secret' } } },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    }),
  });
  const token = res.headers.get('x-subject-token');
  assert.ok(token, `admin token: ${res.status}`);
  return token;
}
