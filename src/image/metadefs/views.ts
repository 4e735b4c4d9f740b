import { glanceTime } from '../common.js';
import type { MetadefAssociationRow, MetadefNamespaceRow, MetadefObjectRow, MetadefPropertyRow, MetadefResourceTypeRow, MetadefTagRow } from '../db/schema.js';
import { parseJson, type Db } from './namespace-access.js';

/**
 * What the metadefs API shows. As in Glance, attributes without a value are
 * left out rather than shown as null.
 */
type View = Record<string, unknown>;

/** The keywords a property definition keeps (Glance's PropertyType); anything else is dropped. */
const PROPERTY_KEYWORDS = [
  'type',
  'title',
  'description',
  'operators',
  'default',
  'readonly',
  'minimum',
  'maximum',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'confidential',
  'items',
  'uniqueItems',
  'minItems',
  'maxItems',
  'additionalItems',
] as const;

function compact(view: View): View {
  return Object.fromEntries(Object.entries(view).filter(([, value]) => value !== null && value !== undefined));
}

/** A property definition as stored: its known keywords only, without its name. */
export function propertyDefinition(body: Record<string, unknown>): View {
  const kept: View = {};
  for (const key of PROPERTY_KEYWORDS) if (body[key] !== undefined && body[key] !== null) kept[key] = body[key];
  const items = kept.items;
  if (items && typeof items === 'object' && !Array.isArray(items)) {
    const { type, enum: values } = items as Record<string, unknown>;
    kept.items = compact({ type, enum: values });
  }
  return kept;
}

/** Each definition of a `properties` map, cleaned as `propertyDefinition` does. */
export function propertyMap(map: unknown): Record<string, View> {
  if (!map || typeof map !== 'object') return {};
  return Object.fromEntries(Object.entries(map as Record<string, Record<string, unknown>>).map(([name, body]) => [name, propertyDefinition(body)]));
}

export const namespaceHref = (name: string): string => `/v2/metadefs/namespaces/${name}`;

export function namespaceView(row: MetadefNamespaceRow): View {
  return compact({
    namespace: row.namespace,
    display_name: row.display_name,
    description: row.description,
    visibility: row.visibility,
    protected: row.protected === 1,
    owner: row.owner,
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
    self: namespaceHref(row.namespace),
    schema: '/v2/schemas/metadefs/namespace',
  });
}

export function objectView(namespace: string, row: MetadefObjectRow): View {
  return compact({
    name: row.name,
    description: row.description,
    required: parseJson<string[]>(row.required, []),
    properties: parseJson<Record<string, View>>(row.properties, {}),
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
    self: `${namespaceHref(namespace)}/objects/${row.name}`,
    schema: '/v2/schemas/metadefs/object',
  });
}

/** A property on its own carries its name; inside a `properties` map the key is the name. */
export function propertyView(row: MetadefPropertyRow, named = true): View {
  return { ...(named ? { name: row.name } : {}), ...parseJson<View>(row.schema, {}) };
}

export function tagView(row: MetadefTagRow): View {
  return { name: row.name, created_at: glanceTime(row.created_at), updated_at: glanceTime(row.updated_at) };
}

export function resourceTypeView(row: MetadefResourceTypeRow): View {
  return { name: row.name, created_at: glanceTime(row.created_at), updated_at: glanceTime(row.updated_at) };
}

export function associationView(row: MetadefAssociationRow): View {
  return compact({
    name: row.resource_type,
    prefix: row.prefix,
    properties_target: row.properties_target,
    created_at: glanceTime(row.created_at),
    updated_at: glanceTime(row.updated_at),
  });
}

/** The resource type associations of namespaces, by namespace id (one query). */
export async function associationsOf(db: Db, namespaceIds: string[]): Promise<Map<string, MetadefAssociationRow[]>> {
  const byNamespace = new Map<string, MetadefAssociationRow[]>();
  if (namespaceIds.length === 0) return byNamespace;
  const rows = await db.selectFrom('metadef_namespace_resource_type').selectAll().where('namespace_id', 'in', namespaceIds).orderBy('created_at').orderBy('resource_type').execute();
  for (const row of rows) {
    const list = byNamespace.get(row.namespace_id) ?? [];
    list.push(row);
    byNamespace.set(row.namespace_id, list);
  }
  return byNamespace;
}

/**
 * A namespace with everything in it: resource type associations, properties,
 * objects and tags (each left out when empty). With `resourceType`, the
 * prefix of that type's association goes in front of every property name,
 * in objects too, so that the names are the ones to set on such a resource.
 */
export async function namespaceDetail(db: Db, row: MetadefNamespaceRow, resourceType?: string): Promise<View> {
  const [associations, properties, objects, tags] = await Promise.all([
    associationsOf(db, [row.id]).then((map) => map.get(row.id) ?? []),
    db.selectFrom('metadef_property').selectAll().where('namespace_id', '=', row.id).orderBy('name').execute(),
    db.selectFrom('metadef_object').selectAll().where('namespace_id', '=', row.id).orderBy('created_at').orderBy('name').execute(),
    db.selectFrom('metadef_tag').selectAll().where('namespace_id', '=', row.id).orderBy('created_at').orderBy('name').execute(),
  ]);
  const prefix = (resourceType ? associations.find((a) => a.resource_type === resourceType)?.prefix : null) ?? '';
  const prefixed = (map: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(map).map(([name, value]) => [prefix + name, value]));
  const view = namespaceView(row);
  if (associations.length) view.resource_type_associations = associations.map(associationView);
  if (properties.length) view.properties = prefixed(Object.fromEntries(properties.map((p) => [p.name, propertyView(p, false)])));
  if (objects.length) {
    view.objects = objects.map((o) => {
      const object = objectView(row.namespace, o);
      if (!prefix) return object;
      return { ...object, properties: prefixed(object.properties as Record<string, unknown>), required: (object.required as string[]).map((name) => prefix + name) };
    });
  }
  if (tags.length) view.tags = tags.map((t) => ({ name: t.name }));
  return view;
}
