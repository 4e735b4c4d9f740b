import path from 'node:path';
import {
  EC2_VERSIONS,
  OPENSTACK_VERSIONS,
  ec2MetaData,
  ec2Version,
  openstackFile,
  openstackListing,
  openstackVersion,
  userDataBytes,
  type Ec2Tree,
  type Ec2Value,
  type InstanceMetadataInfo,
  type MetadataOptions,
} from './content.js';

/** What a path of the metadata tree holds. */
export type MetadataAnswer =
  | { kind: 'data'; body: Buffer; contentType: string }
  /** The OpenStack `password` file: read or set by the caller. */
  | { kind: 'password' }
  | { kind: 'not-found' };

const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

/**
 * A request path as Nova reads it: normalised (`.`, `..`, repeated and
 * trailing slashes), split into tokens, with `ec2` put in front of anything
 * that is not the EC2 or OpenStack tree. `[]` is the root.
 */
export function metadataPathTokens(rawPath: string): string[] {
  const normal = path.posix.normalize(`/${rawPath}`).replace(/\/+$/, '');
  const tokens = normal.split('/').slice(1);
  if (tokens.length === 0) return [];
  return tokens[0] === 'ec2' || tokens[0] === 'openstack' ? tokens : ['ec2', ...tokens];
}

/** The root's text: the EC2 versions and `latest`, one per line (what `GET /` says). */
export function rootListing(): Buffer {
  return Buffer.from([...EC2_VERSIONS, 'latest'].join('\n'), 'utf8');
}

/**
 * What `rawPath` of the server's metadata holds (Nova's `lookup`): the EC2
 * tree (`/latest/meta-data/...`, `/2009-04-04/user-data`) as text listings
 * and values, and the OpenStack tree (`/openstack`, `/openstack/<v>`,
 * `/openstack/<v>/meta_data.json`, ...). `address` is the asker's address
 * (EC2's `local-ipv4` for a server without a fixed IPv4 address); `today`
 * (`YYYY-MM-DD`) hides OpenStack versions from the future as Nova does.
 */
export function lookupMetadata(info: InstanceMetadataInfo, options: MetadataOptions, rawPath: string, address: string | null, today: string = new Date().toISOString().slice(0, 10)): MetadataAnswer {
  const tokens = metadataPathTokens(rawPath);
  if (tokens.length === 0) return text(rootListing());
  const [tree, requested, ...rest] = tokens;
  if (requested === undefined) {
    const versions = tree === 'openstack' ? OPENSTACK_VERSIONS.filter((v) => v <= today) : [...EC2_VERSIONS];
    return text(Buffer.from([...versions, 'latest'].join('\n'), 'utf8'));
  }
  if (tree === 'openstack') {
    const version = openstackVersion(requested);
    if (version === null) return { kind: 'not-found' };
    if (rest.length === 0) return text(Buffer.from(openstackListing(info, version, true).join('\n'), 'utf8'));
    const name = rest.join('/');
    if (name === 'password') return openstackListing(info, version, true).includes('password') ? { kind: 'password' } : { kind: 'not-found' };
    const body = openstackFile(info, options, version, name);
    if (body === null) return { kind: 'not-found' };
    return { kind: 'data', body, contentType: name.endsWith('.json') ? JSON_TYPE : TEXT };
  }
  const version = ec2Version(requested);
  if (version === null) return { kind: 'not-found' };
  const root: Record<string, Ec2Value | Buffer> = { 'meta-data': ec2MetaData(info, options, version, address) };
  const userData = userDataBytes(info);
  if (userData) root['user-data'] = userData;
  let node: Ec2Value | Buffer | Record<string, Ec2Value | Buffer> = root;
  for (const token of rest) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || Buffer.isBuffer(node) || !Object.hasOwn(node, token)) return { kind: 'not-found' };
    node = (node as Record<string, Ec2Value | Buffer>)[token] ?? null;
  }
  return text(Buffer.isBuffer(node) ? node : Buffer.from(ec2Text(node), 'utf8'));
}

function text(body: Buffer): MetadataAnswer {
  return { kind: 'data', body, contentType: TEXT };
}

/**
 * An EC2 value as text: a directory lists its entries sorted, one per line,
 * sub-directories with a trailing `/` (or their listing name, `0=keyname`);
 * a list one item per line; a missing value as ''.
 */
function ec2Text(value: Ec2Value | Record<string, Ec2Value | Buffer>): string {
  if (value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return value.join('\n');
  return Object.keys(value)
    .filter((key) => key !== '_name')
    .sort()
    .map((key) => {
      const child = value[key];
      if (child === null || child === undefined || typeof child !== 'object' || Array.isArray(child) || Buffer.isBuffer(child)) return key;
      const name = (child as Ec2Tree)._name;
      return typeof name === 'string' ? name : `${key}/`;
    })
    .join('\n');
}
