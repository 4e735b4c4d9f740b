import type { FastifyInstance } from 'fastify';
import type { ComputeService } from '../compute.js';
import { MAX_VERSION, MIN_VERSION } from '../compute.js';

/** The v2.1 version document (Nova's: `updated` is the date v2.1 froze). */
function v21(base: string): Record<string, unknown> {
  return {
    id: 'v2.1',
    status: 'CURRENT',
    version: MAX_VERSION,
    min_version: MIN_VERSION,
    updated: '2013-07-23T11:33:21Z',
    links: [
      { rel: 'self', href: `${base}/v2.1/` },
      { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

/**
 * `GET /` (every version, no token needed) and `GET /v2.1` (this version).
 * Only v2.1 is served; the legacy v2.0 is not listed.
 */
export function registerDiscovery(app: FastifyInstance, compute: ComputeService): void {
  app.get('/', { config: { public: true, noMicroversion: true } }, async (_req, reply) => {
    const { 'media-types': _media, ...doc } = v21(compute.publicUrl);
    return reply.code(300).send({ versions: [doc] });
  });
  app.get('/v2.1', { config: { public: true } }, async () => ({ version: v21(compute.publicUrl) }));
}
