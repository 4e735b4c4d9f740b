import type { FastifyInstance } from 'fastify';
import { contextOf, type ComputeService } from '../compute.js';
import { loadInstanceFor } from '../instances.js';

/**
 * `/servers/{id}/os-server-password`: the encrypted password a guest posts
 * to the metadata service. Stratus's metadata service takes no password
 * posts yet, so the password is always empty and clearing it changes
 * nothing; both answer as Nova does for a server without one.
 */
export function registerServerPassword(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req) => {
    await loadInstanceFor(compute, contextOf(req), req.params.id, 'os-server-password:show');
    return { password: '' };
  });
  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req, reply) => {
    await loadInstanceFor(compute, contextOf(req), req.params.id, 'os-server-password:clear');
    return reply.code(204).send();
  });
}
