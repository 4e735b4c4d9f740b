import type { FastifyInstance } from 'fastify';
import type { Identity } from '../identity.js';

const MEDIA_TYPES = [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }];
const UPDATED = '2022-09-07T00:00:00Z';
const V3_ID = 'v3.14';

function v3(identity: Identity): Record<string, unknown> {
  return {
    id: V3_ID,
    status: 'stable',
    updated: UPDATED,
    links: [{ rel: 'self', href: `${identity.publicUrl}/v3/` }],
    'media-types': MEDIA_TYPES,
  };
}

/** Version discovery as Keystone serves it: `/` lists v3 (300), `/v3` describes it. */
export function registerVersions(app: FastifyInstance, identity: Identity): void {
  app.get('/', { config: { public: true } }, async (_req, reply) => {
    reply.code(300);
    return { versions: { values: [v3(identity)] } };
  });
  app.get('/v3', { config: { public: true } }, async () => ({ version: v3(identity) }));
}
