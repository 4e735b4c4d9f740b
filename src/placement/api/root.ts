import type { FastifyInstance } from 'fastify';
import { MAX_VERSION, MIN_VERSION } from '../microversion.js';
import { registerRoutes, sendJson } from './routing.js';

/** `GET /`: the version document (no token needed). Its link is relative, as placement's. */
export function registerRoot(app: FastifyInstance): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/',
      public: true,
      handler: async (req, reply) =>
        sendJson(req, reply, 200, {
          versions: [{ id: `v${MIN_VERSION}`, max_version: MAX_VERSION, min_version: MIN_VERSION, status: 'CURRENT', links: [{ rel: 'self', href: '' }] }],
        }),
    },
  ]);
}
