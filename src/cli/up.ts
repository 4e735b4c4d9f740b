import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createBus, type Bus } from '../core/bus/index.js';
import type { StratusConfig } from '../core/config.js';
import { configureLogging, rootLogger } from '../core/logging.js';
import { serveMetrics } from '../core/metrics.js';
import { bootstrap, type CatalogService } from '../identity/bootstrap.js';
import { startIdentity, type IdentityService } from '../identity/service.js';
import { startImage, type RunningImage } from '../image/service.js';
import { ensurePublicNetwork } from '../network/bootstrap.js';
import { startNetwork, type RunningNetwork } from '../network/service.js';
import { startPlacement, type RunningPlacement } from '../placement/service.js';
import { startNovncProxy } from '../compute/consoles/novnc-proxy.js';
import { startMetadataApi } from '../compute/metadata/api.js';
import { startCompute, type RunningCompute } from '../compute/service.js';
import { ensureTestImage, registerTestImage, type TestImageFiles } from '../compute/test-image.js';
import { resolveVirtDriver } from './virt-driver.js';
import { resolveNetworkDriver, startNetworkAgents } from './network-driver.js';
import { ServiceClient } from '../core/auth/service-client.js';
import { startVolume, type RunningVolume } from '../volume/service.js';
import { startObject, type RunningObject } from '../object/service.js';
import { writeCloudFiles } from './cloud-files.js';
import { ensurePackages } from './packages.js';
import { servicePassword } from './service-passwords.js';

/** A running cloud (all roles in this process) and how to stop it. */
export interface RunningCloud {
  identity: IdentityService;
  image: RunningImage | null;
  network: RunningNetwork | null;
  placement: RunningPlacement | null;
  compute: RunningCompute | null;
  volume: RunningVolume | null;
  object: RunningObject | null;
  bus: Bus;
  stop(): Promise<void>;
}

/** A catalog entry whose public, internal and admin endpoints are the same URL. */
function catalogEntry(type: string, name: string, description: string, url: string): CatalogService {
  return { type, name, description, urls: { public: url, internal: url, admin: url } };
}

function catalogServices(config: StratusConfig, identityPort: number): CatalogService[] {
  const host = config.public_host;
  return [
    catalogEntry('identity', 'keystone', 'Stratus Identity (Keystone v3)', `http://${host}:${identityPort}/v3`),
    ...(config.services.includes('image') ? [catalogEntry('image', 'glance', 'Stratus Image (Glance v2)', `http://${host}:${config.image.port}`)] : []),
    ...(config.services.includes('network') ? [catalogEntry('network', 'neutron', 'Stratus Networking (Neutron v2.0)', `http://${host}:${config.network.port}`)] : []),
    ...(config.services.includes('placement') ? [catalogEntry('placement', 'placement', 'Stratus Placement', `http://${host}:${config.placement.port}`)] : []),
    ...(config.services.includes('compute') ? [catalogEntry('compute', 'nova', 'Stratus Compute (Nova v2.1)', `http://${host}:${config.compute.port}/v2.1`)] : []),
    // Block Storage v3 under both names clients look for (`volumev3` for older ones, `block-storage` now), as DevStack registers it.
    ...(config.services.includes('volume')
      ? [
          catalogEntry('volumev3', 'cinderv3', 'Stratus Block Storage (Cinder v3)', `http://${host}:${config.volume.port}/v3/$(project_id)s`),
          catalogEntry('block-storage', 'cinder', 'Stratus Block Storage (Cinder v3)', `http://${host}:${config.volume.port}/v3/$(project_id)s`),
        ]
      : []),
    ...(config.services.includes('object')
      ? [catalogEntry('object-store', 'swift', 'Stratus Object Storage (Swift v1, S3)', `http://${host}:${config.object.port}/v1/${config.object.reseller_prefix}$(project_id)s`)]
      : []),
  ];
}

/**
 * `stratus up`: every enabled role in this process on the embedded defaults,
 * bootstrapped on first start, with `clouds.yaml` and `openrc` written to the
 * data directory. Resolves once the cloud answers.
 */
export async function up(config: StratusConfig, out: (line: string) => void): Promise<RunningCloud> {
  const withImage = config.services.includes('image');
  const withNetwork = config.services.includes('network');
  const withPlacement = config.services.includes('placement');
  const withCompute = config.services.includes('compute');
  const withVolume = config.services.includes('volume');
  const withObject = config.services.includes('object');
  // With one hypervisor host a resize can only stay on it (DevStack sets the same for its single host).
  if (withCompute && config.compute.fake_hosts === 0) config.compute.allow_resize_to_same_host = true;
  // The image service checks and converts image data with qemu-img (Debian's qemu-utils).
  if (withImage || withVolume) ensurePackages([[config.image.qemu_img, 'qemu-utils']], out);
  // Real guests when QEMU is there (installed first as root), else the fake driver; said either way.
  const virtDriver = withCompute ? resolveVirtDriver(config, out) : 'fake';
  // Real networking when the host allows it; fake guests keep the fake network (no tap would ever come for their ports).
  if (withCompute && virtDriver === 'fake' && config.network.driver === 'auto') config.network.driver = 'fake';
  const networkDriver = withNetwork ? resolveNetworkDriver(config, out) : 'fake';
  const started = process.hrtime.bigint();
  // The data directory holds secrets (token keys, password hashes): owner-only files.
  process.umask(0o077);
  fs.mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  configureLogging({ level: config.log.level, file: config.log.file || path.join(config.data_dir, 'stratus.log') });
  const log = rootLogger();
  const bus = await createBus(config.bus.url, { logger: log });
  const identity = await startIdentity(config, bus);
  const glancePassword = withImage ? servicePassword(config.data_dir, 'glance', config.image.service_password) : '';
  const neutronPassword = withNetwork ? servicePassword(config.data_dir, 'neutron', config.network.service_password) : '';
  const placementPassword = withPlacement ? servicePassword(config.data_dir, 'placement', config.placement.service_password) : '';
  const novaPassword = withCompute ? servicePassword(config.data_dir, 'nova', config.compute.service_password) : '';
  const cinderPassword = withVolume ? servicePassword(config.data_dir, 'cinder', config.volume.service_password) : '';
  const swiftPassword = withObject ? servicePassword(config.data_dir, 'swift', config.object.service_password) : '';
  const result = await bootstrap(identity.identity, {
    adminUser: config.identity.admin_user,
    adminProject: config.identity.admin_project,
    adminPassword: config.identity.admin_password,
    region: config.region,
    services: catalogServices(config, identity.port),
    serviceUsers: [
      ...(withImage ? [{ name: 'glance', password: glancePassword }] : []),
      ...(withNetwork ? [{ name: 'neutron', password: neutronPassword }] : []),
      ...(withPlacement ? [{ name: 'placement', password: placementPassword }] : []),
      ...(withCompute ? [{ name: 'nova', password: novaPassword }] : []),
      // Volume backups go to the volume's project account; cinder acts there when the user's token cannot (an admin restoring another project's backup).
      ...(withVolume ? [{ name: 'cinder', password: cinderPassword, roles: withObject ? [config.object.reseller_admin_role] : [] }] : []),
      ...(withObject ? [{ name: 'swift', password: swiftPassword }] : []),
    ],
    extraRoles: withObject ? [config.object.reseller_admin_role, 'swiftoperator'] : [],
  });
  const authUrl = `http://${config.public_host}:${identity.port}/v3`;
  const image = withImage ? await startImage(config, bus, { identity: { authUrl, password: glancePassword } }) : null;
  // The small test guest (built once per recipe and machine) and the KVM probe's kernel, before the agent starts.
  let testImage: TestImageFiles | null = null;
  if (virtDriver === 'qemu' && config.compute.test_image.build) {
    testImage = await ensureTestImage(log).catch((err: unknown) => {
      out(`warning: the test guest image was not built: ${String(err)}`);
      return null;
    });
  }
  if (testImage && image) {
    const glance = new ServiceClient({ authUrl, username: 'glance', password: glancePassword, projectName: 'service', region: config.region }, { logger: log, userAgent: 'stratus-up' });
    await registerTestImage(glance, config.compute.test_image.name, testImage.image, log).catch((err: unknown) => out(`warning: the test guest image was not registered: ${String(err)}`));
  }
  const network = withNetwork ? await startNetwork(config, bus, { identity: { authUrl, password: neutronPassword } }) : null;
  if (network) await ensurePublicNetwork(network.database.db, config.network, result.adminProjectId);
  const placement = withPlacement ? await startPlacement(config, { identity: { authUrl, password: placementPassword } }) : null;
  const compute = withCompute ? await startCompute(config, bus, { identity: { authUrl, password: novaPassword } }) : null;
  // The metadata API (nova-api-metadata) beside compute's API, on compute's database.
  const metadata = compute ? await startMetadataApi(config, { compute: compute.api.compute }) : null;
  // The VNC console proxy (nova-novncproxy).
  const novnc = compute && config.compute.vnc.enabled ? await startNovncProxy(config, compute.api.compute, log.child({ role: 'compute-novncproxy' })) : null;
  // This host's bridge, DHCP, L3 and metadata agents.
  const networkAgents = network && networkDriver === 'linux' ? await startNetworkAgents(config, bus, { host: os.hostname(), log: log.child({ role: 'network-agent' }) }) : null;
  const volume = withVolume ? await startVolume(config, bus, { identity: { authUrl, password: cinderPassword } }) : null;
  const object = withObject ? await startObject(config, { identity: { authUrl, password: swiftPassword } }) : null;
  const cloudsYaml = path.join(config.data_dir, 'clouds.yaml');
  const password = config.identity.admin_password || result.adminPassword;
  if (password) {
    writeCloudFiles(config.data_dir, { authUrl, username: config.identity.admin_user, password, projectName: config.identity.admin_project, region: config.region });
  } else if (!fs.existsSync(cloudsYaml)) {
    out('warning: the admin password was generated on an earlier start and is not known now; set STRATUS_ADMIN_PASSWORD to write clouds.yaml again');
  }
  let metrics: http.Server | null = null;
  if (config.metrics.enabled) {
    metrics = await serveMetrics(config.metrics.host, config.metrics.port).catch((err: unknown) => {
      out(`warning: metrics not served on ${config.metrics.host}:${config.metrics.port}: ${String(err)}`);
      return null;
    });
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const urls = [`identity ${authUrl}`, ...(image ? [`image http://${config.public_host}:${image.port}`] : []), ...(network ? [`network http://${config.public_host}:${network.port}`] : []), ...(placement ? [`placement http://${config.public_host}:${placement.port}`] : []), ...(compute ? [`compute http://${config.public_host}:${compute.api.port}/v2.1`] : []), ...(volume ? [`volume http://${config.public_host}:${volume.api.port}/v3`] : []), ...(object ? [`object http://${config.public_host}:${object.port}/v1`] : [])];
  out(`Stratus is up (${Math.round(ms)} ms): ${urls.join(', ')}`);
  if (result.created && result.adminPassword) out(`Generated admin password (shown once, also in clouds.yaml and openrc): ${result.adminPassword}`);
  out(`Use it:  export OS_CLIENT_CONFIG_FILE=${cloudsYaml} OS_CLOUD=stratus; openstack token issue`);
  out(`    or:  source ${path.join(config.data_dir, 'openrc')}`);
  out(`Logs: ${config.log.file || path.join(config.data_dir, 'stratus.log')}${metrics ? `; metrics: http://${config.metrics.host}:${config.metrics.port}/metrics` : ''}`);
  return {
    identity,
    image,
    network,
    placement,
    compute,
    volume,
    object,
    bus,
    async stop() {
      await object?.stop();
      await volume?.stop();
      await novnc?.stop();
      await metadata?.stop();
      await compute?.stop();
      await networkAgents?.stop();
      await placement?.stop();
      await network?.stop();
      await image?.stop();
      await identity.stop();
      await new Promise<void>((resolve) => (metrics ? metrics.close(() => resolve()) : resolve()));
      await bus.close();
    },
  };
}
