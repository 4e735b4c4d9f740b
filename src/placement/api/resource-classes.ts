import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../errors.js';
import { atLeast } from '../microversion.js';
import { authorize, type PlacementService } from '../placement.js';
import { CUSTOM_NAME, createResourceClass, deleteResourceClass, ensureResourceClass, getResourceClass, listResourceClasses, renameResourceClass, type ResourceClass } from '../resource-classes.js';
import { jsonBody, requireJsonAccepted, type JsonSchema } from '../validation.js';
import { registerRoutes, sendEmpty, sendJson } from './routing.js';

const NAME_SCHEMA: JsonSchema = {
  type: 'object',
  properties: { name: { type: 'string', pattern: CUSTOM_NAME.source, maxLength: 255 } },
  required: ['name'],
  additionalProperties: false,
};

function classUrl(name: string): string {
  return `/resource_classes/${name}`;
}

function classView(rc: ResourceClass): Record<string, unknown> {
  return { name: rc.name, links: [{ rel: 'self', href: classUrl(rc.name) }] };
}

function nameParam(req: FastifyRequest): string {
  return (req.params as Record<string, string>).name ?? '';
}

/** `/resource_classes` (1.2): the standard classes and custom `CUSTOM_*` ones. */
export function registerResourceClasses(app: FastifyInstance, svc: PlacementService): void {
  registerRoutes(app, [
    {
      method: 'GET',
      url: '/resource_classes',
      since: 2,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_classes:list');
        requireJsonAccepted(req);
        const classes = await listResourceClasses(svc);
        const newest = classes.reduce<string | null>((acc, c) => (acc === null || c.updated_at > acc ? c.updated_at : acc), null);
        return sendJson(req, reply, 200, { resource_classes: classes.map(classView) }, newest);
      },
    },
    {
      method: 'POST',
      url: '/resource_classes',
      since: 2,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_classes:create');
        const body = jsonBody<{ name: string }>(req, NAME_SCHEMA);
        const rc = await createResourceClass(svc, body.name);
        return sendEmpty(reply, 201, { location: classUrl(rc.name) });
      },
    },
    {
      method: 'GET',
      url: '/resource_classes/:name',
      since: 2,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_classes:show');
        requireJsonAccepted(req);
        const rc = await getResourceClass(svc, nameParam(req));
        return sendJson(req, reply, 200, classView(rc), rc.updated_at);
      },
    },
    {
      method: 'PUT',
      url: '/resource_classes/:name',
      since: 2,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_classes:update');
        const name = nameParam(req);
        if (!atLeast(req, 7)) {
          const body = jsonBody<{ name: string }>(req, NAME_SCHEMA);
          return sendJson(req, reply, 200, classView(await renameResourceClass(svc, name, body.name)));
        }
        // From 1.7 a bodiless create-or-verify of a custom class.
        if (!CUSTOM_NAME.test(name) || name.length > 255) throw badRequest(`JSON does not validate: '${name}' does not match '${CUSTOM_NAME.source}'`);
        const { created, row } = await ensureResourceClass(svc, name);
        return sendEmpty(reply, created ? 201 : 204, { location: classUrl(row.name) });
      },
    },
    {
      method: 'DELETE',
      url: '/resource_classes/:name',
      since: 2,
      handler: async (req, reply) => {
        authorize(svc, req, 'placement:resource_classes:delete');
        await deleteResourceClass(svc, nameParam(req));
        return sendEmpty(reply, 204);
      },
    },
  ]);
}
