import type { FastifyInstance } from 'fastify';
import { EXTENSIONS, extensionView } from '../extensions.js';
import { baseUrl } from '../lists.js';
import { NeutronError } from '../errors.js';

/** The collections `GET /v2.0/` lists, as Neutron's core and L3 resources. */
const RESOURCES: [string, string][] = [
  ['network', 'networks'],
  ['subnet', 'subnets'],
  ['subnetpool', 'subnetpools'],
  ['port', 'ports'],
  ['router', 'routers'],
  ['floatingip', 'floatingips'],
  ['security_group', 'security-groups'],
  ['security_group_rule', 'security-group-rules'],
  ['quota', 'quotas'],
  ['agent', 'agents'],
  ['availability_zone', 'availability_zones'],
];

/** `/` (versions, no token needed), `/v2.0/` (resources) and `/v2.0/extensions`. */
export function registerDiscovery(app: FastifyInstance): void {
  app.get('/', { config: { public: true } }, async (req) => ({
    versions: [{ id: 'v2.0', status: 'CURRENT', links: [{ href: `${baseUrl(req)}/v2.0/`, rel: 'self' }] }],
  }));
  app.get('/v2.0', async (req) => ({
    resources: RESOURCES.map(([name, collection]) => ({ name, collection, links: [{ href: `${baseUrl(req)}/v2.0/${collection}`, rel: 'self' }] })),
  }));
  app.get('/v2.0/extensions', async () => ({ extensions: EXTENSIONS.map(extensionView) }));
  app.get<{ Params: { alias: string } }>('/v2.0/extensions/:alias', async (req) => {
    const extension = EXTENSIONS.find((e) => e.alias === req.params.alias);
    if (!extension) throw new NeutronError(404, 'HTTPNotFound', `Extension with alias ${req.params.alias} does not exist`);
    return { extension: extensionView(extension) };
  });
}
