import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../core/errors.js';
import { isoNow } from '../common.js';
import type { MetadefNamespaceRow, MetadefPropertyRow } from '../db/schema.js';
import { allowed, authorize, type ImageService } from '../image.js';
import { namespaceFor, namespaceTarget, queryParam, refuseIfProtected, requireName, unique } from './namespace-access.js';
import { BODIES, validateBody } from './schemas.js';
import { propertyDefinition, propertyView } from './views.js';

type Params = { namespace: string; name: string };

/** Property definitions of a namespace: what a key means, its type and allowed values. */
export function registerProperties(app: FastifyInstance, images: ImageService): void {
  const findProperty = async (namespace: MetadefNamespaceRow, name: string): Promise<MetadefPropertyRow> => {
    const row = await images.db.selectFrom('metadef_property').selectAll().where('namespace_id', '=', namespace.id).where('name', '=', name).executeTakeFirst();
    if (!row) throw new NotFound(`The metadata definition property with name=${name} was not found in namespace=${namespace.namespace}.`);
    return row;
  };
  const propertyBody = (body: unknown): { name: string; definition: Record<string, unknown> } => {
    const checked = validateBody(body, BODIES.property);
    return { name: requireName(checked.name, 'property'), definition: propertyDefinition(checked) };
  };

  app.get<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/properties', async (req) => {
    const namespace = await namespaceFor(images, req, 'get_metadef_properties');
    const rows = allowed(images, req.ctx, 'get_metadef_property', namespaceTarget(namespace))
      ? await images.db.selectFrom('metadef_property').selectAll().where('namespace_id', '=', namespace.id).orderBy('name').execute()
      : [];
    return { properties: Object.fromEntries(rows.map((row) => [row.name, propertyView(row, false)])) };
  });

  app.post<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/properties', async (req, reply) => {
    const { name, definition } = propertyBody(req.body);
    const namespace = await namespaceFor(images, req, 'add_metadef_property');
    const now = isoNow();
    const row: MetadefPropertyRow = { namespace_id: namespace.id, name, schema: JSON.stringify(definition), created_at: now, updated_at: now };
    await unique(() => images.db.insertInto('metadef_property').values(row).execute(), () => `A metadata definition property with name=${name} already exists in namespace=${namespace.namespace}.`);
    images.notify('metadef_property.create', propertyNotification(namespace, row));
    reply.code(201);
    return propertyView(row);
  });

  /**
   * With `resource_type`, the name given is the one used on that type: the
   * prefix of the namespace's association with the type is taken off first.
   */
  app.get<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/properties/:name', async (req) => {
    const namespace = await namespaceFor(images, req, 'get_metadef_property');
    let name = req.params.name;
    const resourceType = queryParam(req, 'resource_type');
    if (resourceType) {
      authorize(images, req, 'get_metadef_resource_type', namespaceTarget(namespace));
      const association = await images.db
        .selectFrom('metadef_namespace_resource_type')
        .selectAll()
        .where('namespace_id', '=', namespace.id)
        .where('resource_type', '=', resourceType)
        .executeTakeFirst();
      if (!association) throw new NotFound(`The metadata definition resource-type association of resource-type=${resourceType} to namespace=${namespace.namespace}, was not found.`);
      const prefix = association.prefix ?? '';
      if (!prefix || !name.startsWith(prefix)) throw new NotFound(`Property ${name} does not start with the expected resource type association prefix of '${prefix}'.`);
      name = name.slice(prefix.length);
    }
    return propertyView(await findProperty(namespace, name));
  });

  app.put<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/properties/:name', async (req) => {
    const { name, definition } = propertyBody(req.body);
    const namespace = await namespaceFor(images, req, 'modify_metadef_property');
    const old = await findProperty(namespace, req.params.name);
    const row: MetadefPropertyRow = { ...old, name, schema: JSON.stringify(definition), updated_at: isoNow() };
    await unique(
      () => images.db.updateTable('metadef_property').set({ name, schema: row.schema, updated_at: row.updated_at }).where('namespace_id', '=', namespace.id).where('name', '=', old.name).execute(),
      () => `Invalid update. It would result in a duplicate metadata definition property with the same name=${name} in namespace=${namespace.namespace}.`,
    );
    images.notify('metadef_property.update', { ...propertyNotification(namespace, row), name_old: old.name });
    return propertyView(row);
  });

  app.delete<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/properties/:name', async (req, reply) => {
    const namespace = await namespaceFor(images, req, 'remove_metadef_property');
    const row = await findProperty(namespace, req.params.name);
    refuseIfProtected(namespace, `Metadata definition property ${row.name} is protected and cannot be deleted.`);
    await images.db.deleteFrom('metadef_property').where('namespace_id', '=', namespace.id).where('name', '=', row.name).execute();
    images.notify('metadef_property.delete', { ...propertyNotification(namespace, row), deleted: true, deleted_at: isoNow() });
    reply.code(204);
  });
}

function propertyNotification(namespace: MetadefNamespaceRow, row: MetadefPropertyRow): Record<string, unknown> {
  return { namespace: namespace.namespace, name: row.name, name_old: row.name, ...propertyView(row, false), deleted: false, deleted_at: null };
}
