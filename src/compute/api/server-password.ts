import type { FastifyInstance } from 'fastify';
import { contextOf, type ComputeService } from '../compute.js';
import { loadInstanceFor } from '../instances.js';
import { clearServerPassword, readServerPassword } from '../metadata/password.js';

/**
 * `/servers/{id}/os-server-password`: the encrypted password the guest
 * posted to the metadata service (`/openstack/latest/password`), '' when it
 * posted none; clearing it lets the guest post a new one.
 */
export function registerServerPassword(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req) => {
    const instance = await loadInstanceFor(compute, contextOf(req), req.params.id, 'os-server-password:show');
    return { password: await readServerPassword(compute.db, instance.uuid) };
  });
  app.delete<{ Params: { id: string } }>('/v2.1/servers/:id/os-server-password', async (req, reply) => {
    const instance = await loadInstanceFor(compute, contextOf(req), req.params.id, 'os-server-password:clear');
    await clearServerPassword(compute.db, instance.uuid);
    return reply.code(204).send();
  });
}
