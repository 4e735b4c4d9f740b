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

/** The legacy v2.0 version document (Nova lists it first, SUPPORTED, without microversions). */
function v20(base: string): Record<string, unknown> {
  return {
    id: 'v2.0',
    status: 'SUPPORTED',
    version: '',
    min_version: '',
    updated: '2011-01-21T11:33:21Z',
    links: [
      { rel: 'self', href: `${base}/v2/` },
      { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2' }],
  };
}

/**
 * `GET /` (every version, no token needed: 200 as in Nova, whose clients
 * and Tempest expect v2.0 first), `GET /v2.1` (this version) and `GET /v2`
 * (the legacy version's document; its API is v2.1's, served under `/v2.1`).
 */
export function registerDiscovery(app: FastifyInstance, compute: ComputeService): void {
  app.get('/', { config: { public: true, noMicroversion: true } }, async () => {
    const versions = [v20(compute.publicUrl), v21(compute.publicUrl)].map(({ 'media-types': _media, ...doc }) => doc);
    return { versions };
  });
  app.get('/v2.1', { config: { public: true } }, async () => ({ version: v21(compute.publicUrl) }));
  app.get('/v2', { config: { public: true, noMicroversion: true } }, async () => ({ version: v20(compute.publicUrl) }));
}
