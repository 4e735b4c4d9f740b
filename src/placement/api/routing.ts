import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PlacementError, notFound } from '../errors.js';
import { atLeast, minorOf } from '../microversion.js';

/** A placement route: method and path, the microversion it appeared in, the handler. */
export interface RouteSpec {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  url: string;
  /** First microversion (1.N) with the route; older requests get `missingStatus`. */
  since?: number;
  /** What an older microversion gets (placement: 404, 405 for some methods). */
  missingStatus?: 404 | 405;
  /** No token needed (the version document). */
  public?: boolean;
  handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

const METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH'] as const;

function methodNotAllowed(allow: string): PlacementError {
  const error = new PlacementError(405, 'The method specified is not allowed for this resource.');
  error.headers.allow = allow;
  return error;
}

/**
 * Registers routes as placement's router does: a version-gated handler per
 * method, and for a known path with another method a 405 naming the allowed
 * ones in `Allow`.
 */
export function registerRoutes(app: FastifyInstance, routes: RouteSpec[]): void {
  const byUrl = new Map<string, RouteSpec[]>();
  for (const route of routes) byUrl.set(route.url, [...(byUrl.get(route.url) ?? []), route]);
  for (const [url, specs] of byUrl) {
    for (const spec of specs) {
      app.route({
        method: spec.method,
        url,
        config: { public: spec.public === true },
        handler: async (req, reply) => {
          if (spec.since !== undefined && minorOf(req) < spec.since) {
            if (spec.missingStatus === 405) throw methodNotAllowed(specs.filter((s) => s.since === undefined || atLeast(req, s.since)).map((s) => s.method).join(', '));
            throw notFound('The resource could not be found.');
          }
          return spec.handler(req, reply);
        },
      });
    }
    const taken = new Set<string>(specs.map((s) => s.method));
    const others: string[] = METHODS.filter((m) => !taken.has(m));
    if (!taken.has('GET')) others.push('HEAD');
    const allow = specs.map((s) => s.method).join(', ');
    app.route({
      method: others as ('PUT' | 'POST' | 'DELETE' | 'PATCH' | 'GET' | 'HEAD')[],
      url,
      config: { public: specs.some((s) => s.public === true) },
      handler: async () => {
        throw methodNotAllowed(allow);
      },
    });
  }
}

/** An HTTP date of a stored ISO time (now when absent). */
function httpDate(iso: string | null | undefined): string {
  const when = iso ? new Date(iso) : new Date();
  return Number.isNaN(when.getTime()) ? new Date().toUTCString() : when.toUTCString();
}

/**
 * Sends a JSON answer; from 1.15 with `Last-Modified` (the given time, or
 * now) and `Cache-Control: no-cache`, as placement.
 */
export function sendJson(req: FastifyRequest, reply: FastifyReply, status: number, body: unknown, lastModified?: string | null): FastifyReply {
  if (atLeast(req, 15)) reply.header('last-modified', httpDate(lastModified)).header('cache-control', 'no-cache');
  return reply.code(status).type('application/json').send(body);
}

/** Sends an answer without a body (201, 204), with extra headers such as `Location`. */
export function sendEmpty(reply: FastifyReply, status: number, headers: Record<string, string> = {}): FastifyReply {
  reply.code(status).headers(headers);
  reply.removeHeader('content-type');
  return reply.send();
}

/** The UUID path parameter. */
export function uuidParam(req: FastifyRequest, name = 'uuid'): string {
  return (req.params as Record<string, string>)[name] ?? '';
}
