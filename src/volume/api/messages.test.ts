import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { MessageRow } from '../db/schema.js';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
after(async () => {
  await cloud.close();
});

async function insertMessage(values: Partial<MessageRow> & { project_id: string }): Promise<MessageRow> {
  const created = new Date();
  const row: MessageRow = {
    id: randomUUID(),
    request_id: `req-${randomUUID()}`,
    resource_type: 'VOLUME',
    resource_uuid: randomUUID(),
    event_id: 'VOLUME_VOLUME_001_003',
    message_level: 'ERROR',
    action_id: '001',
    detail_id: '003',
    created_at: created.toISOString(),
    expires_at: new Date(created.getTime() + 3600_000).toISOString(),
    ...values,
  };
  await cloud.volume.db.insertInto('message').values(row).execute();
  return row;
}

test('show: Cinder fields and words; 404 for other projects, older microversions and expired messages', async () => {
  const m = await insertMessage({ project_id: cloud.alpha.projectId });
  const res = await cloud.request('GET', `/messages/${m.id}`, { user: cloud.alpha, version: '3.3' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const { links, created_at, guaranteed_until, ...rest } = res.body.message;
  assert.deepEqual(rest, {
    id: m.id,
    event_id: 'VOLUME_VOLUME_001_003',
    user_message: 'schedule allocate volume:Could not find any available weighted backend.',
    message_level: 'ERROR',
    request_id: m.request_id,
    resource_type: 'VOLUME',
    resource_uuid: m.resource_uuid,
  });
  assert.match(created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  assert.match(guaranteed_until, /^\d{4}-\d\d-\d\dT/);
  assert.ok(links[0].href.endsWith(`/v3/${cloud.alpha.projectId}/messages/${m.id}`));
  assert.equal((await cloud.request('GET', `/messages/${m.id}`, { user: cloud.beta, version: '3.3' })).status, 404);
  assert.equal((await cloud.request('GET', `/messages/${m.id}`, { version: '3.3' })).status, 200, 'an admin sees every project');
  assert.equal((await cloud.request('GET', `/messages/${m.id}`, { user: cloud.alpha, version: '3.2' })).status, 404);
  const expired = await insertMessage({ project_id: cloud.alpha.projectId, expires_at: new Date(Date.now() - 1000).toISOString() });
  assert.equal((await cloud.request('GET', `/messages/${expired.id}`, { user: cloud.alpha, version: '3.3' })).status, 404);
});

test('list: own project, filters, sort and paging from 3.5; invalid filters from 3.31', async () => {
  const project = cloud.beta.projectId;
  const a = await insertMessage({ project_id: project, event_id: 'VOLUME_VOLUME_001_003', created_at: '2030-01-01T00:00:01.000Z' });
  const b = await insertMessage({ project_id: project, event_id: 'VOLUME_VOLUME_002_021', action_id: '002', detail_id: '021', created_at: '2030-01-01T00:00:02.000Z' });
  const list = await cloud.request('GET', '/messages', { user: cloud.beta, version: '3.3' });
  assert.deepEqual(list.body.messages.map((m: any) => m.id), [b.id, a.id], 'newest first');
  assert.equal(list.body.messages[0].user_message, 'attach volume:Failed to attach volume.');
  const filtered = await cloud.request('GET', '/messages?event_id=VOLUME_VOLUME_002_021', { user: cloud.beta, version: '3.5' });
  assert.deepEqual(filtered.body.messages.map((m: any) => m.id), [b.id]);
  const like = await cloud.request('GET', '/messages?event_id~=001', { user: cloud.beta, version: '3.34' });
  assert.deepEqual(like.body.messages.map((m: any) => m.id), [a.id]);
  const page = await cloud.request('GET', '/messages?limit=1&sort=created_at:asc', { user: cloud.beta, version: '3.5' });
  assert.deepEqual(page.body.messages.map((m: any) => m.id), [a.id]);
  assert.ok(page.body.messages_links[0].href.includes(`marker=${a.id}`));
  const next = await cloud.request('GET', `/messages?limit=1&sort=created_at:asc&marker=${a.id}`, { user: cloud.beta, version: '3.5' });
  assert.deepEqual(next.body.messages.map((m: any) => m.id), [b.id]);
  const invalid = await cloud.request('GET', '/messages?project_id=x', { user: cloud.beta, version: '3.31' });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.badRequest.message, 'Invalid filters project_id are found in query options.');
  assert.ok((await cloud.request('GET', '/messages', { user: cloud.alpha, version: '3.3' })).body.messages.every((m: any) => m.id !== a.id));
});

test('delete: 204 for a member, 403 for a reader, 404 for another project', async () => {
  const m = await insertMessage({ project_id: cloud.alpha.projectId });
  assert.equal((await cloud.request('DELETE', `/messages/${m.id}`, { user: cloud.alphaReader, version: '3.3' })).status, 403);
  assert.equal((await cloud.request('DELETE', `/messages/${m.id}`, { user: cloud.beta, version: '3.3' })).status, 404);
  assert.equal((await cloud.request('DELETE', `/messages/${m.id}`, { user: cloud.alpha, version: '3.3' })).status, 204);
  assert.equal((await cloud.request('GET', `/messages/${m.id}`, { user: cloud.alpha, version: '3.3' })).status, 404);
});
