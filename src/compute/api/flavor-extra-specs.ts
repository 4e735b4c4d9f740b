import type { FastifyInstance, FastifyRequest } from 'fastify';
import { atLeast, authorize, contextOf, type ComputeService } from '../compute.js';
import { badRequest, notFound } from '../errors.js';
import { deleteExtraSpec, flavorViewer, getFlavor, setExtraSpecs } from '../flavors.js';
import { validateExtraSpec } from './extra-spec-validators.js';
import { bodyObject, invalidField, isObject, pyRepr, type Obj } from './request-checks.js';

/**
 * `/flavors/{id}/os-extra_specs`: read by anyone who sees the flavor,
 * written by admins. Keys are `^[a-zA-Z0-9-_:. ]{1,255}$`, values strings
 * (numbers are taken and kept as text) up to 255 characters; from 2.86 the
 * specs Nova knows are validated. Writes answer with the body as sent.
 */

const KEY = /^[a-zA-Z0-9-_:. ]{1,255}$/;

/** Validates specs as Nova's metadata schema does and returns them as text. */
function checkSpecs(req: FastifyRequest, specs: Obj, field: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(specs)) {
    if (!KEY.test(key)) throw invalidField(field, specs, `Additional properties are not allowed ('${key}' was unexpected)`);
    let text: string;
    if (typeof value === 'string') {
      if (value.length > 255) throw invalidField(key, value, `'${value}' is too long`);
      text = value;
    } else if (typeof value === 'number') {
      text = String(value);
      if (text.length > 255) throw badRequest('Invalid input received: extra_specs value has more than 255 characters.');
    } else {
      throw invalidField(key, value, `${pyRepr(value)} is not of type 'string', 'number'`);
    }
    out[key] = text;
  }
  if (atLeast(req, '2.86')) for (const [key, value] of Object.entries(out)) validateExtraSpec(key, value);
  return out;
}

/** Registers the extra spec routes of flavors. */
export function registerFlavorExtraSpecs(app: FastifyInstance, compute: ComputeService): void {
  const base = '/v2.1/flavors/:id/os-extra_specs';

  app.get<{ Params: { id: string } }>(base, async (req) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-flavor-extra-specs:index');
    const flavor = await getFlavor(compute.db, req.params.id, flavorViewer(compute, ctx));
    return { extra_specs: flavor.extra_specs };
  });

  app.post<{ Params: { id: string } }>(base, async (req) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-flavor-extra-specs:create');
    const specs = checkSpecs(req, bodyObject(req.body, 'extra_specs'), 'extra_specs');
    await getFlavor(compute.db, req.params.id, flavorViewer(compute, ctx));
    await setExtraSpecs(compute.db, req.params.id, specs);
    return req.body;
  });

  app.get<{ Params: { id: string; key: string } }>(`${base}/:key`, async (req) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-flavor-extra-specs:show');
    const flavor = await getFlavor(compute.db, req.params.id, flavorViewer(compute, ctx));
    const value = flavor.extra_specs[req.params.key];
    if (value === undefined) throw notFound(`Flavor ${req.params.id} has no extra specs with key ${req.params.key}.`);
    return { [req.params.key]: value };
  });

  app.put<{ Params: { id: string; key: string } }>(`${base}/:key`, async (req) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-flavor-extra-specs:update');
    const body = req.body;
    if (!isObject(body)) throw badRequest(`${pyRepr(body ?? null)} is not of type 'object'`);
    const count = Object.keys(body).length;
    if (count < 1) throw badRequest('{} does not have enough properties');
    if (count > 1) throw badRequest(`${pyRepr(body)} has too many properties`);
    const specs = checkSpecs(req, body, 'extra_specs');
    if (!(req.params.key in specs)) throw badRequest('Request body and URI mismatch');
    await getFlavor(compute.db, req.params.id, flavorViewer(compute, ctx));
    await setExtraSpecs(compute.db, req.params.id, specs);
    return body;
  });

  app.delete<{ Params: { id: string; key: string } }>(`${base}/:key`, async (req, reply) => {
    const ctx = contextOf(req);
    authorize(compute, ctx, 'os-flavor-extra-specs:delete');
    await getFlavor(compute.db, req.params.id, flavorViewer(compute, ctx));
    await deleteExtraSpec(compute.db, req.params.id, req.params.key);
    return reply.code(200).send();
  });
}
