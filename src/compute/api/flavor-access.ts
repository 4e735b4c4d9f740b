import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { addFlavorAccess, flavorProjects, getFlavor, removeFlavorAccess } from '../flavors.js';
import { actionOf, bodyObject, checkKeys, checkText, verifyProjectId } from './request-checks.js';

/**
 * `/flavors/{id}/os-flavor-access` (the projects a private flavor is shared
 * with) and the flavor actions `addTenantAccess`/`removeTenantAccess`
 * (admin). From 2.7 sharing a public flavor is 409.
 */

const ADMIN_VIEW = { admin: true, projectId: null };

async function accessList(compute: ComputeService, flavorid: string): Promise<{ flavor_access: { flavor_id: string; tenant_id: string }[] }> {
  const projects = await flavorProjects(compute.db, flavorid);
  return { flavor_access: projects.map((tenant_id) => ({ flavor_id: flavorid, tenant_id })) };
}

function tenantOf(req: FastifyRequest, action: string): string {
  const body = bodyObject(req.body, action);
  checkKeys(body, action, ['tenant'], ['tenant']);
  return checkText(body.tenant, 'tenant', 1, 255);
}

async function addTenantAccess(compute: ComputeService, req: FastifyRequest, flavorid: string): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(compute, ctx, 'os-flavor-access:add_tenant_access');
  const tenant = tenantOf(req, 'addTenantAccess');
  if (!(await verifyProjectId(compute, ctx, tenant))) throw badRequest(`Project ID ${tenant} is not a valid project.`);
  const flavor = await getFlavor(compute.db, flavorid, ADMIN_VIEW);
  if (atLeast(req, '2.7') && Number(flavor.is_public) === 1) throw conflict('Can not add access to a public flavor.');
  await addFlavorAccess(compute.db, flavorid, tenant);
  return accessList(compute, flavorid);
}

async function removeTenantAccess(compute: ComputeService, req: FastifyRequest, flavorid: string): Promise<unknown> {
  const ctx = contextOf(req);
  authorize(compute, ctx, 'os-flavor-access:remove_tenant_access');
  const tenant = tenantOf(req, 'removeTenantAccess');
  // Whether the project still exists does not matter for removing it.
  await getFlavor(compute.db, flavorid, ADMIN_VIEW);
  await removeFlavorAccess(compute.db, flavorid, tenant);
  return accessList(compute, flavorid);
}

/** Registers `GET /flavors/{id}/os-flavor-access` and `POST /flavors/{id}/action`. */
export function registerFlavorAccess(app: FastifyInstance, compute: ComputeService): void {
  app.get<{ Params: { id: string } }>('/v2.1/flavors/:id/os-flavor-access', async (req) => {
    authorize(compute, contextOf(req), 'os-flavor-access');
    const flavor = await getFlavor(compute.db, req.params.id, ADMIN_VIEW);
    if (Number(flavor.is_public) === 1) throw notFound('Access list not available for public flavors.');
    return accessList(compute, flavor.flavorid);
  });

  app.post<{ Params: { id: string } }>('/v2.1/flavors/:id/action', async (req) => {
    const action = actionOf(req.body, ['addTenantAccess', 'removeTenantAccess']);
    return action === 'addTenantAccess' ? addTenantAccess(compute, req, req.params.id) : removeTenantAccess(compute, req, req.params.id);
  });
}
