import assert from 'node:assert/strict';
import { parse } from 'node:querystring';
import { after, before, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import type { PortRow } from './db/schema.js';
import { NeutronError } from './errors.js';
import { listResponse, parseListQuery, sqlListResponse, STANDARD_ATTRIBUTES, type ListSpec, type SortColumn } from './lists.js';
import { createTestNetwork, type TestNetwork } from './testing.js';

// The SQL page must answer exactly as the in-memory one (Neutron's paging:
// neutron/api/api_common.py, the pagination helpers and their links).

let t: TestNetwork;
let networkId: string;
let otherPortId: string;
let rows: PortRow[];

const SPEC: ListSpec = { collection: 'ports', resource: 'port', attributes: [...STANDARD_ATTRIBUTES, 'network_id', 'status', 'admin_state_up', 'created_at'] };
const SORT_COLUMNS: Record<string, SortColumn> & { id: SortColumn } = {
  id: { column: 'id', text: true },
  name: { column: 'name', text: true },
  network_id: { column: 'network_id', text: true },
  admin_state_up: { column: 'admin_state_up', text: false },
  revision_number: { column: 'revision_number', text: false },
};

/** The view the tests list: a few columns, as the API would show them. */
function view(row: PortRow): Record<string, unknown> {
  return { id: row.id, name: row.name, network_id: row.network_id, status: row.status, admin_state_up: Number(row.admin_state_up) === 1, revision_number: Number(row.revision_number), tags: [] };
}

before(async () => {
  t = await createTestNetwork();
  networkId = (await t.create(t.admin, 'networks', 'network', { name: 'paged' })).id as string;
  const other = (await t.create(t.admin, 'networks', 'network', { name: 'other' })).id as string;
  // Names with ties (broken by id), case and accents (compared by code point, not by locale),
  // revisions that sort differently as numbers and as text.
  const names = ['b', 'B', 'a', 'dup', 'dup', 'dup', 'é', 'z', 'Z', '', 'a b', 'ab', 'dup', '10'];
  rows = [];
  for (const [i, name] of names.entries()) {
    rows.push(await t.insertPort({ network_id: networkId, name, revision_number: [1, 2, 10, 9, 100][i % 5] ?? 1, admin_state_up: i % 3 === 0 ? 0 : 1, mac_address: `fa:16:3e:00:00:${i.toString(16).padStart(2, '0')}` }));
  }
  otherPortId = (await t.insertPort({ network_id: other, name: 'elsewhere', mac_address: 'fa:16:3e:00:01:00' })).id;
});

after(async () => {
  await t?.close();
});

function request(query: string): FastifyRequest {
  return { query: parse(query), headers: { host: 'network.test:9696' }, protocol: 'http' } as unknown as FastifyRequest;
}

/** Both paths' answers to one query string: the in-memory one on every view, and the SQL one (null when it declines). */
async function both(query: string, options: { views?: (found: PortRow[]) => Record<string, unknown>[] | null; filtersInSql?: string[] } = {}) {
  const req = request(query);
  const parsed = parseListQuery(req, SPEC);
  let base = t.net.db.selectFrom('port').selectAll();
  for (const key of ['network_id', 'name'] as const) {
    const values = parsed.filters.get(key);
    if (values) base = base.where(key, 'in', values);
  }
  const all = await base.execute();
  const memory = await settle(() => listResponse(req, SPEC, all.map(view), parsed));
  let largest = 0;
  const sql = await settle(() =>
    sqlListResponse(req, SPEC, parsed, {
      rows: base,
      filtersInSql: new Set(options.filtersInSql ?? ['network_id', 'name']),
      sortColumns: SORT_COLUMNS,
      dialect: t.net.dialect,
      views: async (found) => {
        largest = Math.max(largest, found.length);
        return options.views ? options.views(found) : found.map(view);
      },
    }),
  );
  return { memory, sql, largest, limit: parsed.limit };
}

/** The body, or the Neutron error thrown, so that both paths' failures compare too. */
async function settle<T>(run: () => T | Promise<T>): Promise<T | { status: number; type: string; message: string }> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof NeutronError)) throw err;
    return { status: err.status, type: err.type, message: err.message };
  }
}

test('a page read in SQL is the in-memory page: items, order, links, for every limit, marker, sort and direction', async () => {
  const byName = [...rows].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  const markers = [undefined, byName[0]?.id, byName[4]?.id, byName[7]?.id, byName.at(-1)?.id];
  const sorts = ['', 'sort_key=name', 'sort_key=name&sort_dir=desc', 'sort_key=revision_number&sort_dir=desc&sort_key=name&sort_dir=asc', 'sort_key=admin_state_up&sort_key=id&sort_dir=asc&sort_dir=desc', 'sort_key=id&sort_dir=desc'];
  let compared = 0;
  for (const limit of ['', 'limit=1', 'limit=3', 'limit=14', 'limit=20']) {
    for (const sort of sorts) {
      for (const reverse of ['', 'page_reverse=True']) {
        for (const marker of markers) {
          if (!limit && !marker) continue;
          const query = [`network_id=${networkId}`, limit, sort, reverse, marker ? `marker=${marker}` : ''].filter(Boolean).join('&');
          const { memory, sql, largest, limit: parsedLimit } = await both(query);
          assert.notEqual(sql, null, `${query}: paged in SQL`);
          assert.deepEqual(sql, memory, query);
          if (parsedLimit !== null) assert.ok(largest <= parsedLimit + 2, `${query}: read ${largest} rows, not the whole list`);
          compared++;
        }
      }
    }
  }
  assert.equal(compared, 5 * 6 * 2 * 4 + 4 * 6 * 2, 'every combination compared');
  // A page's links name the same query with the marker, and the first page has a next link.
  const { sql } = await both(`network_id=${networkId}&limit=2&sort_key=name`);
  const links = (sql as Record<string, any>).ports_links as { rel: string; href: string }[];
  const page = (sql as Record<string, any>).ports as { id: string }[];
  assert.deepEqual(links, [{ rel: 'next', href: `http://network.test:9696/v2.0/ports?network_id=${networkId}&limit=2&sort_key=name&marker=${page[1]?.id}` }], 'next link');
});

test('filters applied in SQL, fields, and a marker outside the list: the same answer, 404 for the marker', async () => {
  for (const query of [`network_id=${networkId}&name=dup&limit=2`, `network_id=${networkId}&name=dup&name=a&limit=3&marker=${rows[3]?.id}`, `network_id=${networkId}&limit=4&fields=name`]) {
    const { memory, sql } = await both(query);
    assert.deepEqual(sql, memory, query);
  }
  const notFound = { status: 404, type: 'PortNotFound' };
  for (const marker of ['00000000-0000-0000-0000-000000000000', otherPortId, rows.find((r) => r.name !== 'dup')?.id]) {
    const query = `network_id=${networkId}&name=dup&limit=2&marker=${marker}`;
    const { memory, sql } = await both(query);
    assert.deepEqual(memory, { ...notFound, message: `Port ${marker} could not be found.` }, `in memory: ${query}`);
    assert.deepEqual(sql, memory, `in SQL: ${query}`);
  }
});

test('queries SQL cannot page as the views would are left to the in-memory path', async () => {
  const declined: [string, Parameters<typeof both>[1]][] = [
    [`network_id=${networkId}`, {}],
    [`network_id=${networkId}&sort_key=name`, {}],
    [`network_id=${networkId}&limit=2&tags=red`, {}],
    [`network_id=${networkId}&limit=2&status=DOWN`, {}],
    [`network_id=${networkId}&limit=2&sort_key=created_at`, {}],
    [`network_id=${networkId}&limit=2`, { views: () => null }],
    [`network_id=${networkId}&limit=2&marker=${rows[0]?.id}`, { views: (found) => (found.some((r) => r.id === rows[0]?.id) ? null : found.map(view)) }],
    // A view that does not pass a filter SQL applied (a hidden attribute, say).
    [`network_id=${networkId}&limit=2`, { views: (found) => found.map((r) => ({ ...view(r), network_id: undefined })) }],
  ];
  for (const [query, options] of declined) {
    const { sql } = await both(query, options);
    assert.equal(sql, null, query);
  }
});
