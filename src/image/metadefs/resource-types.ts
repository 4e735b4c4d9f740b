import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../core/errors.js';
import { glanceTime, isoNow } from '../common.js';
import type { MetadefAssociationRow, MetadefNamespaceRow } from '../db/schema.js';
import { allowed, authorize, type ImageService } from '../image.js';
import { namespaceFor, namespaceTarget, refuseIfProtected, requireName, unique, type Db } from './namespace-access.js';
import { BODIES, validateBody } from './schemas.js';
import { associationView, resourceTypeView } from './views.js';

/**
 * Associates a namespace with a resource type, creating the type when it is
 * new (as Glance does). 409 when the namespace already has that type.
 */
export async function addAssociation(
  images: ImageService,
  trx: Db,
  namespace: MetadefNamespaceRow,
  body: { name: string; prefix?: string; properties_target?: string },
  now: string,
): Promise<MetadefAssociationRow> {
  const newType = trx.insertInto('metadef_resource_type').values({ name: body.name, protected: 0, created_at: now, updated_at: now });
  // Two callers may add the same new type at once: the second one keeps the first one's row.
  await (images.dialect === 'mysql' ? newType.ignore() : newType.onConflict((oc) => oc.column('name').doNothing())).execute();
  const row: MetadefAssociationRow = {
    namespace_id: namespace.id,
    resource_type: body.name,
    prefix: body.prefix ?? null,
    properties_target: body.properties_target ?? null,
    created_at: now,
    updated_at: now,
  };
  await unique(
    () => trx.insertInto('metadef_namespace_resource_type').values(row).execute(),
    () => `The metadata definition resource-type association of resource-type=${body.name} to namespace=${namespace.namespace} already exists.`,
  );
  return row;
}

/** Resource types, and the associations of a namespace with them. */
export function registerResourceTypes(app: FastifyInstance, images: ImageService): void {
  app.get('/v2/metadefs/resource_types', async (req) => {
    authorize(images, req, 'list_metadef_resource_types', { project_id: req.ctx.projectId ?? '' });
    const rows = await images.db.selectFrom('metadef_resource_type').selectAll().orderBy('created_at').orderBy('name').execute();
    return { resource_types: rows.map(resourceTypeView) };
  });

  app.get<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/resource_types', async (req) => {
    const namespace = await namespaceFor(images, req, 'list_metadef_resource_types');
    const target = namespaceTarget(namespace);
    const rows = await images.db.selectFrom('metadef_namespace_resource_type').selectAll().where('namespace_id', '=', namespace.id).orderBy('created_at').orderBy('resource_type').execute();
    const shown = allowed(images, req.ctx, 'get_metadef_resource_type', target) ? rows : [];
    return { resource_type_associations: shown.map(associationView) };
  });

  app.post<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/resource_types', async (req, reply) => {
    const body = validateBody(req.body, BODIES.resourceType) as { name: string; prefix?: string; properties_target?: string };
    requireName(body.name, 'resource type');
    const namespace = await namespaceFor(images, req, 'add_metadef_resource_type_association');
    const row = await images.db.transaction().execute((trx) => addAssociation(images, trx, namespace, body, isoNow()));
    images.notify('metadef_resource_type.create', associationNotification(namespace, row));
    reply.code(201);
    return associationView(row);
  });

  app.delete<{ Params: { namespace: string; name: string } }>('/v2/metadefs/namespaces/:namespace/resource_types/:name', async (req, reply) => {
    const namespace = await namespaceFor(images, req, 'remove_metadef_resource_type_association');
    const name = req.params.name;
    const row = await images.db.selectFrom('metadef_namespace_resource_type').selectAll().where('namespace_id', '=', namespace.id).where('resource_type', '=', name).executeTakeFirst();
    if (!row) throw new NotFound(`Failed to find resource type ${name} to delete`);
    refuseIfProtected(namespace, `Metadata definition resource-type-association ${name} is protected and cannot be deleted.`);
    await images.db.deleteFrom('metadef_namespace_resource_type').where('namespace_id', '=', namespace.id).where('resource_type', '=', name).execute();
    images.notify('metadef_resource_type.delete', { ...associationNotification(namespace, row), deleted: true, deleted_at: isoNow() });
    reply.code(204);
  });
}

function associationNotification(namespace: MetadefNamespaceRow, row: MetadefAssociationRow): Record<string, unknown> {
  return {
    namespace: namespace.namespace,
    name: row.resource_type,
    name_old: row.resource_type,
    prefix: row.prefix,
    properties_target: row.properties_target,
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
    deleted: false,
    deleted_at: null,
  };
}
