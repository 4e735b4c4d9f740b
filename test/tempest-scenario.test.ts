import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Cloud, cleanupCloud, realNetworkEnv } from './cloud.js';
import { baseConf, runTempest } from './tempest.js';

/**
 * Tempest's network scenario tests that the test guest image can serve
 * (`test_network_basic_ops`, `test_server_basic_ops`,
 * `test_security_groups_basic_ops`, and `test_network_v6`: SLAAC and
 * DHCPv6-stateless addresses from the routers' advertisements, one or two
 * prefixes, on the first NIC or a second network) against `./stratus up` with real guests
 * (the qemu driver) and the Linux network data plane: Tempest makes its own
 * projects, networks, routers, security groups and floating IPs, boots the
 * `stratus-test` image, logs in over SSH (as root, with its keypair) through
 * the floating IPs and checks connectivity, DHCP, metadata and filtering
 * from inside the guests.
 */
let cloud: Cloud;
let workspace: string;

before(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-tempest-scenario-'));
  cloud = await Cloud.create('tempest-admin-secret', realNetworkEnv().env);
  await cloud.start();
});
after(async () => {
  await cloud.stop();
  cleanupCloud(cloud);
});

async function networkExtensions(): Promise<string[]> {
  const token = cloud.json<{ id: string }>(['token', 'issue']).id;
  const res = await fetch(`${cloud.networkUrl}/v2.0/extensions`, { headers: { 'x-auth-token': token } });
  const body = (await res.json()) as { extensions: { alias: string }[] };
  return body.extensions.map((e) => e.alias);
}

function tempestConf(options: { image: string; flavor: string; publicNetworkId: string; extensions: string[] }): string {
  return `${baseConf(cloud, workspace, { services: ['nova', 'glance', 'neutron'] })}
[compute]
image_ref = ${options.image}
image_ref_alt = ${options.image}
flavor_ref = ${options.flavor}
flavor_ref_alt = ${options.flavor}
build_interval = 1
build_timeout = 300
min_compute_nodes = 1

[compute-feature-enabled]
metadata_service = True
config_drive = True
interface_attach = True
console_output = True
resize = False
live_migration = False
cold_migration = False
vnc_console = False

[validation]
run_validation = True
connect_method = floating
auth_method = keypair
ip_version_for_ssh = 4
image_ssh_user = root
image_alt_ssh_user = root
ssh_timeout = 240
connect_timeout = 30
ping_timeout = 120
network_for_ssh = public

[network]
endpoint_type = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
project_networks_reachable = False
public_network_id = ${options.publicNetworkId}
floating_network_name = public
shared_physical_network = False
build_interval = 1
build_timeout = 120

[network-feature-enabled]
ipv6 = True
ipv6_subnet_attributes = True
port_security = True
port_admin_state_change = True
floating_ips = True
api_extensions = ${options.extensions.join(',')}

[scenario]
dhcp_client = udhcpc
`;
}

test("Tempest's network scenario tests pass with real guests and the Linux data plane", async () => {
  const image = cloud.json<{ id: string }>(['image', 'show', 'stratus-test']).id;
  const flavor = cloud.json<{ id: string }>(['flavor', 'show', 'm1.tiny']).id;
  const publicNetworkId = cloud.json<{ id: string }>(['network', 'show', 'public']).id;
  const conf = tempestConf({ image, flavor, publicNetworkId, extensions: await networkExtensions() });
  const bridgesBefore = new Set(networkBridges());
  // Two workers: each test boots TCG guests on this machine's two cores.
  const { passed, failed, skipped, output } = await runTempest(workspace, conf, '^tempest\\.scenario\\.(test_network_basic_ops|test_server_basic_ops|test_security_groups_basic_ops|test_network_v6)\\.', { concurrency: 2 });
  process.stdout.write(`tempest scenario: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  const lines = output.split('\n').filter((line) => /\.\.\. (FAILED|SKIPPED|ok)|^FAIL:/.test(line));
  process.stdout.write(`${lines.join('\n')}\n`);
  assert.ok(passed > 0, `nothing passed:\n${output.slice(-5000)}`);
  // The tracebacks, not the pages of captured logging around them.
  const tracebacks = [...output.matchAll(/Captured traceback:\n~+\n([\s\S]*?)\n\n/g)].map((m) => m[1]).join('\n---\n');
  assert.equal(failed, 0, `${failed} failed:\n${tracebacks || output.slice(-12000)}`);
  // Tempest deleted every network it made: their bridges went with them (a moment after their last port).
  let left: string[] = [];
  for (let i = 0; i < 60; i++) {
    left = networkBridges().filter((b) => !bridgesBefore.has(b));
    if (left.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.deepEqual(left, [], "the deleted networks' bridges are gone");
});

/** The network bridges (`brq<network>`) on this host. */
function networkBridges(): string[] {
  const out = spawnSync('ip', ['-j', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' }).stdout || '[]';
  return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter((name) => name.startsWith('brq'));
}
