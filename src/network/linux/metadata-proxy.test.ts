import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { processAlive, readPid, run } from '../../core/host-commands.js';
import type { RouterDetails } from '../agents/interfaces.js';
import { HostNet } from './host.js';
import { LinuxL3 } from './l3.js';
import { MetadataProxies, startMetadataAgent } from './metadata-proxy.js';
import { dhcpNamespace, routerNamespace, tapName } from './names.js';

// The whole metadata path with real packets: a VM namespace asks
// 169.254.169.254 through its router's namespace (REDIRECT to the proxy),
// the proxy forwards over the unix socket to the metadata agent in this
// process, which forwards, signed, to a fake metadata API on 127.0.0.1.

const root = process.getuid?.() === 0;
const suffix = () => randomBytes(4).toString('hex');
const HOST = `stx-${suffix()}`;
const VM = `stx-${suffix()}`;
const STRANGER = `stx-${suffix()}`;
const VM_IP = '10.8.0.5';
const STRANGER_IP = '10.8.0.6';
const SECRET = randomBytes(16).toString('hex');
const INSTANCE = randomUUID();
const PROJECT = randomUUID().replace(/-/g, '');
const BIG = randomBytes(3 * 1024 * 1024);

const log = pino({ level: 'silent' });
const host = new HostNet(HOST);
const routerId = randomUUID();
const ns = routerNamespace(routerId);
const networkId = randomUUID();
const dhcpNs = dhcpNamespace(networkId);
const subnet = randomUUID();
const external = randomUUID();
const router: RouterDetails = {
  id: routerId,
  project_id: PROJECT,
  admin_state_up: true,
  enable_snat: true,
  routes: [],
  gw_port: { id: randomUUID(), network_id: randomUUID(), mac_address: 'fa:16:3e:00:08:0e', mtu: 1500, fixed_ips: [{ subnet_id: external, ip_address: '172.31.8.10', prefixlen: 24 }], subnets: [{ id: external, cidr: '172.31.8.0/24', gateway_ip: '172.31.8.1', ip_version: 4, ipv6_ra_mode: null, ipv6_address_mode: null, dns_nameservers: [] }] },
  interfaces: [{ id: randomUUID(), network_id: randomUUID(), mac_address: 'fa:16:3e:00:08:01', mtu: 1450, fixed_ips: [{ subnet_id: subnet, ip_address: '10.8.0.1', prefixlen: 24 }], subnets: [{ id: subnet, cidr: '10.8.0.0/24', gateway_ip: '10.8.0.1', ip_version: 4, ipv6_ra_mode: null, ipv6_address_mode: null, dns_nameservers: [] }] }],
  floating_ips: [],
};

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodySha: string;
  bodyLength: number;
}

const seen: Seen[] = [];
let api: http.Server | null = null;
let agent: { stop(): Promise<void> } | null = null;
let tmp = '';
let socketPath = '';
let apiUrl = '';
let proxies: MetadataProxies | null = null;
let l3: LinuxL3 | null = null;

/** Nova's metadata API, as far as the agent can tell: records what it was sent, streams a big file back. */
function fakeApi(): http.Server {
  return http.createServer((req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodySha: hash.digest('hex'), bodyLength: length });
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(BIG);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ uuid: req.headers['x-instance-id'] }));
      }
    });
  });
}

function startAgent(): Promise<{ stop(): Promise<void> }> {
  return startMetadataAgent({
    socketPath,
    metadataUrl: apiUrl,
    secret: SECRET,
    resolve: async (ip, target) => (ip === VM_IP && (target.routerId === routerId || target.networkId === networkId) ? { instanceId: INSTANCE, projectId: PROJECT } : null),
    log,
  });
}

/** `curl` in `netns` of `urlPath` at 169.254.169.254 (or of a whole URL): the status code and the body and its sha256; rejects when it cannot connect. */
async function curl(netns: string, urlPath: string, extra: string[] = []): Promise<{ status: number; body: string; sha: string }> {
  const out = path.join(tmp, `out-${suffix()}`);
  const url = urlPath.startsWith('http://') ? urlPath : `http://169.254.169.254${urlPath}`;
  const status = await run('ip', ['netns', 'exec', netns, 'curl', '-sS', '--connect-timeout', '3', '--max-time', '20', '-o', out, '-w', '%{http_code}', ...extra, url]);
  const body = await fs.readFile(out);
  await fs.rm(out, { force: true });
  return { status: Number(status), body: body.toString('utf8'), sha: createHash('sha256').update(body).digest('hex') };
}

async function addVm(netns: string, ip: string): Promise<void> {
  const outer = `v${netns.slice(4, 12)}`;
  await run('ip', ['netns', 'add', netns]);
  await run('ip', ['-n', HOST, 'link', 'add', 'name', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', outer, 'master', 'br-int', 'up']);
  await run('ip', ['-n', netns, 'link', 'set', 'dev', 'lo', 'up']);
  await run('ip', ['-n', netns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'up']);
  await run('ip', ['-n', netns, 'route', 'add', 'default', 'via', '10.8.0.1']);
}

async function proxyPids(): Promise<number[]> {
  return (await run('ip', ['netns', 'pids', ns]))
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

before(async () => {
  if (!root) return;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'stx-metadata-'));
  socketPath = path.join(tmp, 'metadata_proxy');
  api = fakeApi();
  await new Promise<void>((resolve) => api?.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  agent = await startAgent();
  await run('ip', ['netns', 'add', HOST]);
  await run('ip', ['-n', HOST, 'link', 'add', 'name', 'br-int', 'type', 'bridge']);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', 'br-int', 'up']);
  await run('ip', ['-n', HOST, 'link', 'add', 'name', 'br-ext', 'type', 'bridge']);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', 'br-ext', 'up']);
  await run('ip', ['-n', HOST, 'addr', 'add', '172.31.8.1/24', 'dev', 'br-ext']);
  await addVm(VM, VM_IP);
  await addVm(STRANGER, STRANGER_IP);
  proxies = new MetadataProxies(host, { socketPath, stateDir: path.join(tmp, 'metadata'), port: 9697, log });
  l3 = new LinuxL3(host, { stateDir: path.join(tmp, 'l3'), metadata: proxies, metadataPort: 9697, log });
  await l3.setupRouter(router);
  for (const p of router.interfaces) await run('ip', ['-n', HOST, 'link', 'set', 'dev', tapName(p.id), 'master', 'br-int']);
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', tapName(router.gw_port?.id ?? ''), 'master', 'br-ext']);
});

after(async () => {
  if (!root) return;
  await l3?.teardownRouter(routerId).catch(() => undefined);
  await proxies?.stop(dhcpNs).catch(() => undefined);
  for (const netns of [ns, dhcpNs, VM, STRANGER, HOST]) await run('ip', ['netns', 'delete', netns]).catch(() => undefined);
  await agent?.stop().catch(() => undefined);
  api?.closeAllConnections();
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
  await fs.rm(tmp, { recursive: true, force: true });
});

test("a VM gets its metadata through its router, and the API is told who it is, signed", async () => {
  seen.length = 0;
  // What a guest claims about itself is overwritten.
  const spoof = ['-H', `X-Instance-ID: ${randomUUID()}`, '-H', 'X-Forwarded-For: 10.8.0.99', '-H', 'X-Neutron-Network-ID: nope', '-H', 'X-Tenant-ID: nope'];
  const answer = await curl(VM, '/openstack/latest/meta_data.json', spoof);
  assert.equal(answer.status, 200);
  assert.deepEqual(JSON.parse(answer.body), { uuid: INSTANCE });
  const request = seen.at(-1);
  assert.equal(request?.url, '/openstack/latest/meta_data.json');
  assert.equal(request?.headers['x-instance-id'], INSTANCE);
  assert.equal(request?.headers['x-tenant-id'], PROJECT);
  assert.equal(request?.headers['x-instance-id-signature'], createHmac('sha256', SECRET).update(INSTANCE).digest('hex'));
  assert.equal(request?.headers['x-forwarded-for'], VM_IP, "the VM's own address");
  assert.equal(request?.headers['x-neutron-network-id'], undefined);
});

test('an address nobody has behind this router gets 404, and the API is not asked', async () => {
  seen.length = 0;
  const answer = await curl(STRANGER, '/openstack/latest/meta_data.json');
  assert.equal(answer.status, 404);
  assert.equal(seen.length, 0);
});

test("the proxy's port answers the internal networks only", async () => {
  assert.equal((await curl(VM, 'http://10.8.0.1:9697/openstack/latest/meta_data.json')).status, 200, 'from a VM behind the router');
  // From outside, anyone could claim an internal address: the port is closed there.
  await assert.rejects(curl(HOST, 'http://172.31.8.10:9697/openstack/latest/meta_data.json'));
  assert.equal((await run('ip', ['netns', 'exec', HOST, 'ping', '-c', '1', '-W', '2', '172.31.8.10'])).includes('1 received'), true, 'while the gateway itself answers');
});

test('bodies stream whole both ways (a POSTed password, a big answer)', async () => {
  seen.length = 0;
  const payload = randomBytes(512 * 1024);
  const file = path.join(tmp, 'payload');
  await fs.writeFile(file, payload);
  const posted = await curl(VM, '/openstack/2013-04-04/password', ['--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream']);
  assert.equal(posted.status, 200);
  assert.equal(seen.at(-1)?.method, 'POST');
  assert.equal(seen.at(-1)?.bodyLength, payload.length);
  assert.equal(seen.at(-1)?.bodySha, createHash('sha256').update(payload).digest('hex'));
  const big = await curl(VM, '/big');
  assert.equal(big.status, 200);
  assert.equal(big.sha, createHash('sha256').update(BIG).digest('hex'));
});

test('ensure keeps the running proxy, also from a restarted agent; setting the router up again too', async () => {
  assert.ok(proxies && l3);
  const pidFile = proxies.pidFile(ns);
  const pid = await readPid(pidFile);
  assert.ok(pid !== null && (await processAlive(pid, pidFile)));
  await proxies.ensure(ns, { routerId });
  await new MetadataProxies(host, { socketPath, stateDir: path.join(tmp, 'metadata'), port: 9697, log }).ensure(ns, { routerId });
  await l3.setupRouter(router);
  assert.equal(await readPid(pidFile), pid, 'the same process');
  assert.deepEqual(await proxyPids(), [pid], 'one process in the namespace');
});

test("a network's proxy answers 169.254.169.254:80 itself (isolated metadata in a DHCP namespace)", async () => {
  assert.ok(proxies);
  // What the DHCP data plane makes: a port with 169.254.169.254/32 in qdhcp-<network>, a host route to it in the VM.
  await host.ensureNamespace(dhcpNs);
  const dhcpPort = randomUUID();
  await host.ensureVeth(tapName(dhcpPort), 'ns-metadata', dhcpNs, {});
  await run('ip', ['-n', HOST, 'link', 'set', 'dev', tapName(dhcpPort), 'master', 'br-int']);
  await run('ip', ['-n', dhcpNs, 'addr', 'add', '10.8.0.2/24', 'dev', 'ns-metadata']);
  await run('ip', ['-n', dhcpNs, 'addr', 'add', '169.254.169.254/32', 'dev', 'ns-metadata']);
  await proxies.ensure(dhcpNs, { networkId });
  await run('ip', ['-n', VM, 'route', 'add', '169.254.169.254/32', 'via', '10.8.0.2']);
  try {
    seen.length = 0;
    const answer = await curl(VM, '/openstack/latest/meta_data.json');
    assert.equal(answer.status, 200);
    assert.equal(seen.at(-1)?.headers['x-instance-id'], INSTANCE);
    assert.equal(seen.at(-1)?.headers['x-forwarded-for'], VM_IP);
  } finally {
    await run('ip', ['-n', VM, 'route', 'delete', '169.254.169.254/32']);
  }
  await proxies.stop(dhcpNs);
  await host.deleteNamespace(dhcpNs);
});

test('502 while the metadata agent is away; back when it is', async () => {
  await agent?.stop();
  agent = null;
  assert.equal((await curl(VM, '/openstack/latest/meta_data.json')).status, 502);
  agent = await startAgent();
  assert.equal((await curl(VM, '/openstack/latest/meta_data.json')).status, 200);
});

test('502 when the metadata API is unreachable', async () => {
  api?.closeAllConnections();
  await new Promise<void>((resolve) => (api ? api.close(() => resolve()) : resolve()));
  api = null;
  assert.equal((await curl(VM, '/openstack/latest/meta_data.json')).status, 502);
});

test('stop ends the proxy; stopping again is fine', async () => {
  assert.ok(proxies);
  const pidFile = proxies.pidFile(ns);
  const pid = await readPid(pidFile);
  assert.ok(pid !== null);
  await proxies.stop(ns);
  assert.equal(await processAlive(pid, pidFile), false, 'the process is gone');
  assert.deepEqual(await proxyPids(), []);
  await assert.rejects(curl(VM, '/openstack/latest/meta_data.json'), 'nobody answers');
  await proxies.stop(ns);
});
