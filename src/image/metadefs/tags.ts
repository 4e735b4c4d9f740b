import type { FastifyInstance } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { glanceTime, isoNow } from '../common.js';
import type { MetadefNamespaceRow, MetadefTagRow } from '../db/schema.js';
import type { ImageService } from '../image.js';
import { namespaceFor, parseLimit, queryParam, refuseIfProtected, requireName, sortDir, truthy, unique } from './namespace-access.js';
import { BODIES, validateBody } from './schemas.js';
import { tagView } from './views.js';

type Params = { namespace: string; name: string };

const SORT_KEYS = ['name', 'created_at', 'updated_at'] as const;
type SortKey = (typeof SORT_KEYS)[number];

/** Tag definitions of a namespace: the tags it suggests for resources. */
export function registerTags(app: FastifyInstance, images: ImageService): void {
  const findTag = async (namespace: MetadefNamespaceRow, name: string): Promise<MetadefTagRow> => {
    const row = await images.db.selectFrom('metadef_tag').selectAll().where('namespace_id', '=', namespace.id).where('name', '=', name).executeTakeFirst();
    if (!row) throw new NotFound(`The metadata definition tag with name=${name} was not found in namespace=${namespace.namespace}.`);
    return row;
  };
  const duplicate = (name: string, namespace: string) => () => `A metadata tag with name=${name} already exists in namespace=${namespace}.`;

  /** Sorted by `sort_key` (then creation time and name), a page of `limit` after `marker` (a tag name). */
  app.get<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/tags', async (req) => {
    const limit = parseLimit(queryParam(req, 'limit'));
    const dir = sortDir(queryParam(req, 'sort_dir'), 'desc');
    const sortKey = queryParam(req, 'sort_key') ?? 'created_at';
    if (!(SORT_KEYS as readonly string[]).includes(sortKey)) throw new BadRequest(`Invalid sort key: ${sortKey}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
    const keys = [...new Set<SortKey>([sortKey as SortKey, 'created_at', 'name'])];
    const namespace = await namespaceFor(images, req, 'get_metadef_tags');
    const markerName = queryParam(req, 'marker');
    const marker = markerName ? await findTag(namespace, markerName) : undefined;
    let query = images.db.selectFrom('metadef_tag').selectAll().where('namespace_id', '=', namespace.id);
    if (marker) {
      query = query.where((eb) =>
        eb.or(keys.map((key, i) => eb.and([...keys.slice(0, i).map((k) => eb(k, '=', marker[k])), eb(key, dir === 'asc' ? '>' : '<', marker[key])]))),
      );
    }
    for (const key of keys) query = query.orderBy(key, dir);
    // As in Glance, a limit of 0 means no limit.
    if (limit) query = query.limit(limit);
    const rows = await query.execute();
    return { tags: rows.map((row) => ({ name: row.name })) };
  });

  /** Creates several tags at once; without `X-Openstack-Append: true` they replace the namespace's tags. */
  app.post<{ Params: { namespace: string } }>('/v2/metadefs/namespaces/:namespace/tags', async (req, reply) => {
    const body = validateBody(req.body, BODIES.tags) as { tags: { name: string }[] };
    for (const tag of body.tags) requireName(tag.name, 'tag');
    const namespace = await namespaceFor(images, req, 'add_metadef_tags');
    const append = truthy(req.headers['x-openstack-append']);
    const now = isoNow();
    const rows: MetadefTagRow[] = body.tags.map((tag) => ({ namespace_id: namespace.id, name: tag.name, created_at: now, updated_at: now }));
    // An empty list changes nothing, even without append (as in Glance).
    if (rows.length) {
      await images.db.transaction().execute(async (trx) => {
        if (!append) await trx.deleteFrom('metadef_tag').where('namespace_id', '=', namespace.id).execute();
        for (const row of rows) await unique(() => trx.insertInto('metadef_tag').values(row).execute(), duplicate(row.name, namespace.namespace));
      });
      for (const row of rows) images.notify('metadef_tag.create', tagNotification(namespace, row));
    }
    reply.code(201);
    return { tags: rows.map((row) => ({ name: row.name })) };
  });

  app.post<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/tags/:name', async (req, reply) => {
    const namespace = await namespaceFor(images, req, 'add_metadef_tag');
    const name = requireName(req.params.name, 'tag');
    validateBody({ name }, BODIES.tag);
    const now = isoNow();
    const row: MetadefTagRow = { namespace_id: namespace.id, name, created_at: now, updated_at: now };
    await unique(() => images.db.insertInto('metadef_tag').values(row).execute(), duplicate(name, namespace.namespace));
    images.notify('metadef_tag.create', tagNotification(namespace, row));
    reply.code(201);
    return tagView(row);
  });

  app.get<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/tags/:name', async (req) => {
    const namespace = await namespaceFor(images, req, 'get_metadef_tag');
    return tagView(await findTag(namespace, req.params.name));
  });

  app.put<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/tags/:name', async (req) => {
    const body = validateBody(req.body, BODIES.tag);
    const name = requireName(body.name, 'tag');
    const namespace = await namespaceFor(images, req, 'modify_metadef_tag');
    const old = await findTag(namespace, req.params.name);
    const row: MetadefTagRow = { ...old, name, updated_at: isoNow() };
    await unique(
      () => images.db.updateTable('metadef_tag').set({ name, updated_at: row.updated_at }).where('namespace_id', '=', namespace.id).where('name', '=', old.name).execute(),
      duplicate(name, namespace.namespace),
    );
    images.notify('metadef_tag.update', { ...tagNotification(namespace, row), name_old: old.name });
    return tagView(row);
  });

  app.delete<{ Params: Params }>('/v2/metadefs/namespaces/:namespace/tags/:name', async (req, reply) => {
    const namespace = await namespaceFor(images, req, 'delete_metadef_tag');
    const row = await findTag(namespace, req.params.name);
    refuseIfProtected(namespace, `Metadata definition tag ${row.name} is protected and cannot be deleted.`);
    await images.db.deleteFrom('metadef_tag').where('namespace_id', '=', namespace.id).where('name', '=', row.name).execute();
    images.notify('metadef_tag.delete', { ...tagNotification(namespace, row), deleted: true, deleted_at: isoNow() });
    reply.code(204);
  });
}

function tagNotification(namespace: MetadefNamespaceRow, row: MetadefTagRow): Record<string, unknown> {
  return { namespace: namespace.namespace, name: row.name, name_old: row.name, created_at: glanceTime(row.created_at), updated_at: glanceTime(row.updated_at), deleted: false, deleted_at: null };
}
