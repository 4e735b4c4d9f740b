import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../../core/auth/context.js';
import { atLeast, type ComputeService } from '../compute.js';
import { badRequest, ComputeError, forbidden, notFound } from '../errors.js';

/**
 * What the deprecated proxy APIs share (`os-security-groups`,
 * `os-floating-ips`, `os-networks`, `/images`...): Nova answers them only
 * up to 2.35 and passes them on to the network or image service with the
 * caller's token, so that service's rules (ownership, sharing) apply.
 */

/** Nova's 404 for a proxy API from 2.36 on. */
export function proxyUntil235(req: FastifyRequest): void {
  if (atLeast(req, '2.36')) throw new ComputeError(404, 'The resource could not be found.');
}

/** The body of another service's error answer, as text for a Nova message. */
export function upstreamMessage(body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    const inner = Object.values(body as Record<string, unknown>)[0];
    if (typeof inner === 'object' && inner !== null && typeof (inner as { message?: unknown }).message === 'string') return (inner as { message: string }).message;
    if (typeof inner === 'string') return inner;
  }
  return typeof body === 'string' ? body : JSON.stringify(body);
}

/** A call to the network service as the caller; throws Nova's error for a 4xx/5xx per `onError`. */
export async function neutron<T>(
  compute: ComputeService,
  ctx: RequestContext,
  method: string,
  path: string,
  body?: unknown,
  onError: (status: number, message: string) => ComputeError | null = () => null,
): Promise<T> {
  const res = await compute.client.request<T>('network', method, path, { userToken: ctx.authToken, ...(body === undefined ? {} : { body }) });
  if (res.status < 400) return res.body;
  const message = upstreamMessage(res.body);
  const mapped = onError(res.status, message);
  if (mapped) throw mapped;
  if (res.status === 404) throw notFound(message);
  if (res.status === 403) throw forbidden(message);
  if (res.status === 409 || res.status === 400) throw badRequest(message);
  throw new ComputeError(500, `The network service answered ${res.status}: ${message}`);
}
