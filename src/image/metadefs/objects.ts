import type { FastifyInstance } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { isoNow } from '../common.js';
import type { MetadefNamespaceRow, MetadefObjectRow } from '../db/schema.js';
import { allowed, type ImageService } from '../image.js';
import { namespaceFor, namespaceTarget, parseLimit, queryParam, refuseIfProtected, requireName, sortDir, unique } from './namespace-access.js';
import { BODIES, validateBody } from './schemas.js';
import { objectView, propertyMap } from './views.js';

type Params = { namespace: string; name: string };

/**
 * Checks an object body: the object schema, then each of its properties
 * against the property schema (a property in an object is named by its key).
 */
function objectBody(body: unknown): { name: string; description?: string; required?: string[]; properties?: Record<string, Record<string, unknown>> } {
  const object = validateBody(body, BODIES.object) as { name: string; description?: string; required?: string[]; properties?: Record<string, Record<string, unknown>> };
  requireName(object.name, 'object');
  for (const [name, definition] of Object.entries(object.properties ?? {})) {
    requireName(name, 'property');
    try {
      validateBody(definition, BODIES.objectProperty);
    } catch (err) {
      throw err instanceof BadRequest ? new BadRequest(`${err.message} (in property '${name}')`) : err;
    }
  }
  return object;
}

/** Objects of a namespace: named groups of property definitions (`CPU Limits`, ...). */
export function registerObjects(app: FastifyInstance, images: ImageService): void {
  const findObject = async (namespace: MetadefNamespaceRow, name: string): Promise<MetadefObjectRow> => {
    const row = await images.db.selectFrom('metadef_object').selectAll().where('namespace_id', '=', namespace.id).where('name', '=', name).executeTakeFirst();
    if (!row) throw new NotFound(`The metadata definition object with name=${name} was not found in namespace=${namespace.namespace}.`);
    return row;
  };
  const duplicate = (name: string, namespace: string) => () => `A metadata definition object with name=${name} already exists in namespace=${namespace}.`;

  app.get<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/objects', async (req) => {
    // Glance reads these and then ignores them; they are still checked.
    parseLimit(queryParam(req, 'limit'));
    sortDir(queryParam(req, 'sort_dir'), 'desc');
    const namespace = await namespaceFor(images, req, 'get_metadef_objects');
    const rows = allowed(images, req.ctx, 'get_metadef_object', namespaceTarget(namespace))
      ? await images.db.selectFrom('metadef_object').selectAll().where('namespace_id', '=', namespace.id).orderBy('created_at').orderBy('name').execute()
      : [];
    return { objects: rows.map((row) => objectView(namespace.namespace, row)), schema: '/v2/schemas/metadefs/objects' };
  });

  app.post<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/objects', async (req, reply) => {
    const body = objectBody(req.body);
    const namespace = await namespaceFor(images, req, 'add_metadef_object');
    const now = isoNow();
    const row: MetadefObjectRow = {
      namespace_id: namespace.id,
      name: body.name,
      description: body.description ?? null,
      required: JSON.stringify(body.required ?? []),
      properties: JSON.stringify(propertyMap(body.properties)),
      created_at: now,
      updated_at: now,
    };
    await unique(() => images.db.insertInto('metadef_object').values(row).execute(), duplicate(row.name, namespace.namespace));
    const view = objectView(namespace.namespace, row);
    images.notify('metadef_object.create', objectNotification(namespace, view));
    reply.code(201);
    return view;
  });

  app.get<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/objects/:name', async (req) => {
    const namespace = await namespaceFor(images, req, 'get_metadef_object');
    return objectView(namespace.namespace, await findObject(namespace, req.params.name));
  });

  app.put<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/objects/:name', async (req) => {
    const body = objectBody(req.body);
    const namespace = await namespaceFor(images, req, 'modify_metadef_object');
    const old = await findObject(namespace, req.params.name);
    // The object is replaced: what the body leaves out is gone.
    const row: MetadefObjectRow = {
      ...old,
      name: body.name,
      description: body.description ?? null,
      required: JSON.stringify(body.required ?? []),
      properties: JSON.stringify(propertyMap(body.properties)),
      updated_at: isoNow(),
    };
    await unique(
      () =>
        images.db
          .updateTable('metadef_object')
          .set({ name: row.name, description: row.description, required: row.required, properties: row.properties, updated_at: row.updated_at })
          .where('namespace_id', '=', namespace.id)
          .where('name', '=', old.name)
          .execute(),
      () => `Invalid update. It would result in a duplicate metadata definition object with the same name=${row.name} in namespace=${namespace.namespace}.`,
    );
    const view = objectView(namespace.namespace, row);
    images.notify('metadef_object.update', { ...objectNotification(namespace, view), name_old: old.name });
    return view;
  });

  app.delete<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/objects/:name', async (req, reply) => {
    const namespace = await namespaceFor(images, req, 'delete_metadef_object');
    const row = await findObject(namespace, req.params.name);
    refuseIfProtected(namespace, `Metadata definition object ${row.name} is protected and cannot be deleted.`);
    await images.db.deleteFrom('metadef_object').where('namespace_id', '=', namespace.id).where('name', '=', row.name).execute();
    images.notify('metadef_object.delete', { ...objectNotification(namespace, objectView(namespace.namespace, row)), deleted: true, deleted_at: isoNow() });
    reply.code(204);
  });
}

function objectNotification(namespace: MetadefNamespaceRow, view: Record<string, unknown>): Record<string, unknown> {
  const properties = Object.entries((view.properties as Record<string, Record<string, unknown>>) ?? {}).map(([name, definition]) => ({ name, ...definition }));
  return {
    namespace: namespace.namespace,
    name: view.name,
    name_old: view.name,
    properties,
    required: view.required,
    description: view.description ?? null,
    created_at: view.created_at,
    updated_at: view.updated_at,
    deleted: false,
    deleted_at: null,
  };
}
