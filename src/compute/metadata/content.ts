/**
 * What the metadata service and the config drive say of a server: the
 * OpenStack tree (`openstack/<version>/meta_data.json`, `network_data.json`,
 * `user_data`, `vendor_data.json`, ...) and the EC2 tree. One pure function
 * of {@link InstanceMetadataInfo}, so that the config drive written on a
 * compute host and the answers of the metadata API are the same bytes.
 */

import { randomBytes } from 'node:crypto';
import type { StratusConfig } from '../../core/config.js';

/** A port of the server as its metadata describes it. */
export interface MetadataVif {
  portId: string;
  networkId: string;
  mac: string;
  mtu: number | null;
  fixedIps: { address: string; version: 4 | 6; subnetId: string; /** Floating IPs mapped to this address (EC2's `public-ipv4`). */ floatingIps?: string[] }[];
}

/** A block device of the server, for EC2's `block-device-mapping`. */
export interface MetadataBlockDevice {
  /** `/dev/vdb`, or null when none was chosen. */
  deviceName: string | null;
  /** `volume` (an EBS-like volume) or `local`. */
  destinationType: string;
  /** `image`, `volume`, `snapshot` or `blank`. */
  sourceType: string;
  /** `swap` for a swap disk. */
  guestFormat: string | null;
}

/** Everything of a server its metadata needs. */
export interface InstanceMetadataInfo {
  uuid: string;
  /** The display name. */
  name: string;
  /** The server's host name (without the DHCP domain). */
  hostname: string;
  projectId: string;
  availabilityZone: string | null;
  launchIndex: number;
  reservationId: string;
  /** The flavor's name (EC2's `instance-type`). */
  flavorName: string;
  imageRef: string;
  keyName: string | null;
  keyData: string | null;
  /** The key pair's type (`ssh` or `x509`; default `ssh`). */
  keyType?: string;
  /** User data as the API stored it (base64), or null. */
  userData: string | null;
  /** The server's metadata items. */
  metadata: Record<string, string>;
  vifs: MetadataVif[];
  /** ISO 8601 creation time. */
  createdAt: string;
  /** The security groups' names (EC2's `security-groups`; default none). */
  securityGroups?: string[];
  /** `/dev/vda`; absent or null: EC2's default mapping (`sda1`). */
  rootDeviceName?: string | null;
  /** The server's block devices, root included (EC2's `ebsN`, `ephemeralN`, `swap`). */
  blockDevices?: MetadataBlockDevice[];
}

/** How the cloud is set up for metadata (Nova's `dhcp_domain`, static vendor data). */
export interface MetadataOptions {
  dhcpDomain: string;
  vendorData: Record<string, unknown>;
}

/** The network description of `network_data.json` (Nova's `network_metadata`). */
export interface NetworkData {
  links: Record<string, unknown>[];
  networks: Record<string, unknown>[];
  services: Record<string, unknown>[];
}

/** What a config drive says beyond the stored server (Nova's `extra_md` and `network_metadata`). */
export interface MetadataExtra {
  /** The admin password the server was created with (`admin_pass` in `meta_data.json`). */
  adminPass?: string;
  /** Replaces the network description built from the server's ports. */
  networkData?: NetworkData;
}

/** The EC2 metadata versions, oldest first (`latest` is the last). */
export const EC2_VERSIONS = ['1.0', '2007-01-19', '2007-03-01', '2007-08-29', '2007-10-10', '2007-12-15', '2008-02-01', '2008-09-01', '2009-04-04'] as const;

/**
 * The OpenStack metadata versions, oldest first, as Nova (Zed) serves them:
 * Folsom, Grizzly (random_seed, password), Havana (vendor data), Liberty
 * (project_id, network data), Newton (devices; vendor_data2), Ocata, Rocky,
 * Victoria (dedicated_cpus). `latest` is the last.
 */
export const OPENSTACK_VERSIONS = ['2012-08-10', '2013-04-04', '2013-10-17', '2015-10-15', '2016-06-30', '2016-10-06', '2017-02-22', '2018-08-27', '2020-10-14'] as const;

const GRIZZLY = '2013-04-04';
const HAVANA = '2013-10-17';
const LIBERTY = '2015-10-15';
const NEWTON_ONE = '2016-06-30';
const NEWTON_TWO = '2016-10-06';
const VICTORIA = '2020-10-14';

/** The EC2 versions a config drive carries (Nova's default `config_drive_skip_versions` leaves these). */
const CONFIG_DRIVE_EC2_VERSIONS = ['2009-04-04', 'latest'];

/** The metadata options of a cloud's configuration (`compute.metadata`). */
export function metadataOptions(config: StratusConfig): MetadataOptions {
  return { dhcpDomain: config.compute.metadata.dhcp_domain, vendorData: config.compute.metadata.vendor_data };
}

/** The OpenStack version `version` stands for (`latest`: the newest), or null when there is no such version. */
export function openstackVersion(version: string): string | null {
  if (version === 'latest') return OPENSTACK_VERSIONS[OPENSTACK_VERSIONS.length - 1] ?? null;
  return (OPENSTACK_VERSIONS as readonly string[]).includes(version) ? version : null;
}

/** The EC2 version `version` stands for (`latest`: 2009-04-04), or null. */
export function ec2Version(version: string): string | null {
  if (version === 'latest') return EC2_VERSIONS[EC2_VERSIONS.length - 1] ?? null;
  return (EC2_VERSIONS as readonly string[]).includes(version) ? version : null;
}

function atLeast(versions: readonly string[], required: string, requested: string): boolean {
  return versions.indexOf(requested) >= versions.indexOf(required);
}

/** The host name guests are told: the server's with `.<dhcp_domain>` when one is set. */
export function metadataHostname(info: InstanceMetadataInfo, options: MetadataOptions): string {
  return options.dhcpDomain ? `${info.hostname}.${options.dhcpDomain}` : info.hostname;
}

/** The user data as bytes (decoded from the stored base64), or null when the server has none. */
export function userDataBytes(info: InstanceMetadataInfo): Buffer | null {
  return info.userData === null ? null : Buffer.from(info.userData, 'base64');
}

/**
 * `meta_data.json` of OpenStack version `version` (a dated one, already
 * resolved from `latest`). `random_seed` is fresh on every call.
 */
export function openstackMetaData(info: InstanceMetadataInfo, options: MetadataOptions, version: string, extra: MetadataExtra = {}): Record<string, unknown> {
  const md: Record<string, unknown> = { uuid: info.uuid };
  if (Object.keys(info.metadata).length > 0) md.meta = { ...info.metadata };
  if (extra.adminPass !== undefined) md.admin_pass = extra.adminPass;
  if (info.keyName !== null && info.keyData !== null) {
    md.public_keys = { [info.keyName]: info.keyData };
    md.keys = [{ name: info.keyName, type: info.keyType ?? 'ssh', data: info.keyData }];
  }
  md.hostname = metadataHostname(info, options);
  md.name = info.name;
  md.launch_index = info.launchIndex;
  md.availability_zone = info.availabilityZone;
  if (atLeast(OPENSTACK_VERSIONS, GRIZZLY, version)) md.random_seed = randomBytes(512).toString('base64');
  if (atLeast(OPENSTACK_VERSIONS, LIBERTY, version)) md.project_id = info.projectId;
  if (atLeast(OPENSTACK_VERSIONS, NEWTON_ONE, version)) md.devices = [];
  if (atLeast(OPENSTACK_VERSIONS, VICTORIA, version)) md.dedicated_cpus = [];
  return md;
}

/** The guest-side name of a port's link: Nova's tap device name (`tap` + the port id's first 11 characters). */
export function linkName(portId: string): string {
  return `tap${portId.slice(0, 11)}`;
}

/**
 * `network_data.json`: one `phy` link per port with an address, and per port
 * its first IPv4 address as an `ipv4_dhcp` network and its first IPv6
 * address as an `ipv6_dhcp` one (Nova exposes the first subnet of each
 * family only); null when the server has no ports (served as `{}`).
 */
export function networkData(info: InstanceMetadataInfo): NetworkData | null {
  if (info.vifs.length === 0) return null;
  const links: Record<string, unknown>[] = [];
  const networks: Record<string, unknown>[] = [];
  for (const vif of info.vifs) {
    const v4 = vif.fixedIps.find((ip) => ip.version === 4);
    const v6 = vif.fixedIps.find((ip) => ip.version === 6);
    if (!v4 && !v6) continue;
    const id = linkName(vif.portId);
    links.push({ id, vif_id: vif.portId, type: 'phy', mtu: vif.mtu, ethernet_mac_address: vif.mac });
    for (const [ip, type] of [[v4, 'ipv4_dhcp'], [v6, 'ipv6_dhcp']] as const) {
      if (ip) networks.push({ id: `network${networks.length}`, type, link: id, network_id: vif.networkId });
    }
  }
  return { links, networks, services: [] };
}

/** `vendor_data.json`: the static vendor data. */
export function vendorData(options: MetadataOptions): Record<string, unknown> {
  return options.vendorData;
}

/** `vendor_data2.json`: the static vendor data under `static` (there are no dynamic providers). */
export function vendorData2(options: MetadataOptions): Record<string, unknown> {
  return { static: options.vendorData };
}

/** The files of an OpenStack version's directory, as Nova lists them (`password` is the API's only). */
export function openstackListing(info: InstanceMetadataInfo, version: string, withPassword: boolean): string[] {
  const names = ['meta_data.json'];
  if (info.userData !== null) names.push('user_data');
  if (withPassword && atLeast(OPENSTACK_VERSIONS, GRIZZLY, version)) names.push('password');
  if (atLeast(OPENSTACK_VERSIONS, HAVANA, version)) names.push('vendor_data.json');
  if (atLeast(OPENSTACK_VERSIONS, LIBERTY, version)) names.push('network_data.json');
  if (atLeast(OPENSTACK_VERSIONS, NEWTON_TWO, version)) names.push('vendor_data2.json');
  return names;
}

/**
 * One file of an OpenStack version's directory (`version` already resolved
 * from `latest`), or null when that version has no such file or the server
 * no user data. `password` is not here: it is the API's.
 */
export function openstackFile(info: InstanceMetadataInfo, options: MetadataOptions, version: string, name: string, extra: MetadataExtra = {}): Buffer | null {
  switch (name) {
    case 'meta_data.json':
      return toJson(openstackMetaData(info, options, version, extra));
    case 'user_data':
      return userDataBytes(info);
    case 'vendor_data.json':
      return atLeast(OPENSTACK_VERSIONS, HAVANA, version) ? toJson(vendorData(options)) : null;
    case 'vendor_data2.json':
      return atLeast(OPENSTACK_VERSIONS, NEWTON_TWO, version) ? toJson(vendorData2(options)) : null;
    case 'network_data.json':
      return atLeast(OPENSTACK_VERSIONS, LIBERTY, version) ? toJson(extra.networkData ?? networkData(info) ?? {}) : null;
    default:
      return null;
  }
}

/** A tree of EC2 metadata: directories are objects, `_name` a directory's listing name (`0=keyname`). */
export type Ec2Tree = { [key: string]: Ec2Value };
/** A value of {@link Ec2Tree}. */
export type Ec2Value = string | number | null | string[] | Ec2Tree;

/** The EC2 id of a uuid (`i-` / `ami-` + 8 hex digits): stable, as Nova's are per object. */
function ec2Id(prefix: string, uuid: string): string {
  const hex = uuid.replace(/-/g, '').slice(0, 8);
  return `${prefix}-${/^[0-9a-f]{8}$/i.test(hex) ? hex.toLowerCase() : '00000000'}`;
}

function blockDeviceMapping(info: InstanceMetadataInfo): Ec2Tree {
  const root = info.rootDeviceName ?? null;
  if (root === null) return { ami: 'sda1', 'ephemeral0': 'sda2', root: '/dev/sda1', swap: 'sda3' };
  const mapping: Ec2Tree = { ami: root.replace(/^\/dev\//, ''), root };
  const devices = info.blockDevices ?? [];
  const ebs = devices.filter((d) => d.destinationType === 'volume').map((d) => d.deviceName);
  ebs.sort((a, b) => (a === null ? -1 : b === null ? 1 : a < b ? -1 : a > b ? 1 : 0));
  ebs.forEach((name, i) => (mapping[`ebs${i}`] = name));
  const blanks = devices.filter((d) => d.destinationType !== 'volume' && d.sourceType === 'blank');
  const swap = blanks.filter((d) => d.guestFormat === 'swap').pop();
  if (swap) mapping.swap = swap.deviceName;
  blanks.filter((d) => d.guestFormat !== 'swap').forEach((d, i) => (mapping[`ephemeral${i}`] = d.deviceName));
  return mapping;
}

/**
 * The EC2 `meta-data` tree of version `version` (already resolved from
 * `latest`). `address` is the asker's address, EC2's `local-ipv4` when the
 * server has no fixed IPv4 address.
 */
export function ec2MetaData(info: InstanceMetadataInfo, options: MetadataOptions, version: string, address: string | null = null): Ec2Tree {
  const hostname = metadataHostname(info, options);
  const v4 = info.vifs.flatMap((v) => v.fixedIps.filter((ip) => ip.version === 4));
  const floating = v4.flatMap((ip) => ip.floatingIps ?? []);
  const md: Ec2Tree = {
    'ami-id': ec2Id('ami', info.imageRef),
    'ami-launch-index': info.launchIndex,
    'ami-manifest-path': 'FIXME',
    'instance-id': ec2Id('i', info.uuid),
    hostname,
    'local-ipv4': v4[0]?.address ?? address,
    'reservation-id': info.reservationId,
    'security-groups': [...(info.securityGroups ?? [])],
  };
  if (info.keyName !== null && info.keyData !== null) md['public-keys'] = { '0': { _name: `0=${info.keyName}`, 'openssh-key': info.keyData } };
  const at = (required: string): boolean => atLeast(EC2_VERSIONS, required, version);
  if (at('2007-01-19')) {
    md['local-hostname'] = hostname;
    md['public-hostname'] = hostname;
    md['public-ipv4'] = floating[0] ?? '';
  }
  if (at('2007-08-29')) md['instance-type'] = info.flavorName;
  if (at('2007-12-15')) md['block-device-mapping'] = blockDeviceMapping(info);
  if (at('2008-02-01')) md.placement = { 'availability-zone': info.availabilityZone };
  if (at('2008-09-01')) md['instance-action'] = 'none';
  return md;
}

/** The EC2 tree as a config drive writes it: `public-keys` without the listing names. */
function withoutNames(tree: Ec2Tree): Ec2Tree {
  const out: Ec2Tree = {};
  for (const [key, value] of Object.entries(tree)) {
    if (key === '_name') continue;
    out[key] = value !== null && typeof value === 'object' && !Array.isArray(value) ? withoutNames(value) : value;
  }
  return out;
}

/**
 * JSON as Nova writes it (Python's `json.dumps`: `", "` and `": "` between
 * items, non-ASCII escaped), so that guests' parsers see what they expect.
 */
export function toJson(value: unknown): Buffer {
  return Buffer.from(pyJson(value), 'utf8');
}

function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`)
      .join(', ')}}`;
  }
  return 'null';
}

/**
 * The files of the server's config drive, by path from the drive's root:
 * `openstack/<version>/{meta_data.json, user_data, vendor_data.json,
 * network_data.json, vendor_data2.json}` for every OpenStack version that has
 * them and `latest`, and `ec2/{2009-04-04,latest}/{meta-data.json,user-data}`
 * (user data only when the server has some). Pure but for each
 * `meta_data.json`'s fresh `random_seed`.
 */
export function metadataFiles(info: InstanceMetadataInfo, options: MetadataOptions, extra: MetadataExtra = {}): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const userData = userDataBytes(info);
  for (const name of CONFIG_DRIVE_EC2_VERSIONS) {
    const version = ec2Version(name) ?? name;
    if (userData) files.set(`ec2/${name}/user-data`, userData);
    files.set(`ec2/${name}/meta-data.json`, toJson(withoutNames(ec2MetaData(info, options, version))));
  }
  for (const name of [...OPENSTACK_VERSIONS, 'latest']) {
    const version = openstackVersion(name) ?? name;
    for (const file of openstackListing(info, version, false)) {
      const body = openstackFile(info, options, version, file, extra);
      if (body) files.set(`openstack/${name}/${file}`, body);
    }
  }
  return files;
}
