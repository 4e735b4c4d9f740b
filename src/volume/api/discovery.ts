import type { FastifyInstance } from 'fastify';
import { MAX_VERSION, MIN_VERSION, type VolumeService } from '../volume.js';

/**
 * Version discovery: `GET /` (300 Multiple Choices, as Cinder) and
 * `GET /v3/` (200), both `{"versions": [...]}` with the one version this
 * API serves, v3.0 with microversions 3.0-3.70 (Zed). The list needs no
 * token; `/v3/` does, as in Cinder (it sits behind the token check).
 */

/** The date Cinder gives the Zed API (`api_version_request.UPDATED`). */
const UPDATED = '2022-08-31T00:00:00Z';

export function versionDocument(volume: VolumeService): Record<string, unknown> {
  return {
    id: 'v3.0',
    status: 'CURRENT',
    version: MAX_VERSION,
    min_version: MIN_VERSION,
    updated: UPDATED,
    links: [
      { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
      { rel: 'self', href: `${volume.publicUrl}/v3/` },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}

/** Registers `/` and `/v3/`. */
export function registerDiscovery(app: FastifyInstance, volume: VolumeService): void {
  app.get('/', { config: { public: true, noVolumeMicroversion: true } }, async (_req, reply) => reply.code(300).send({ versions: [versionDocument(volume)] }));
  // The server ignores a trailing slash: this is `/v3/` too.
  app.get('/v3', async () => ({ versions: [versionDocument(volume)] }));
}
