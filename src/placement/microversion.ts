import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { negotiateMicroversion, type Microversion } from '../core/http/microversion.js';

/** The oldest microversion this placement speaks: 1.0 (Newton). */
export const MIN_VERSION = '1.0';
/** The newest: 1.39 (Yoga, also Zed's maximum). */
export const MAX_VERSION = '1.39';

const versions = new WeakMap<FastifyRequest, Microversion>();

/** The negotiated microversion of a request; null before negotiation (or when it failed). */
export function versionOf(req: FastifyRequest): Microversion | null {
  return versions.get(req) ?? null;
}

/** The minor number of the request's placement microversion (1.N). */
export function minorOf(req: FastifyRequest): number {
  return versions.get(req)?.minor ?? 0;
}

/** True when the request's microversion is at least 1.`minor`. */
export function atLeast(req: FastifyRequest, minor: number): boolean {
  return minorOf(req) >= minor;
}

/**
 * Negotiates `OpenStack-API-Version: placement X.Y` on every request after
 * authentication (a request refused as unauthenticated never gets this far,
 * as behind keystonemiddleware): no header means 1.0, `latest` 1.39, out of
 * range 406. The answer, errors included, carries the version and `Vary`.
 */
export function installMicroversion(app: FastifyInstance): void {
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const { version, responseHeaders } = negotiateMicroversion(req.headers, { service: 'placement', min: MIN_VERSION, max: MAX_VERSION });
    versions.set(req, version);
    reply.headers(responseHeaders);
  });
}
