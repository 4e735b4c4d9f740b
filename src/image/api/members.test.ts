import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createTestImage, type TestImage, type TestReply, type TestUser } from '../testing.js';

// Facts from Glance's api-ref (images-sharing-v2.inc) and glance/api/v2/image_members.py.

type Json = Record<string, any>;

let t: TestImage;

before(async () => {
  t = await createTestImage();
});

after(async () => {
  await t.close();
});

function assertFault(res: TestReply, status: number): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.ok(String(res.body.code).startsWith(`${status} `), `Glance error body ${JSON.stringify(res.body)}`);
}

function addMember(user: TestUser, imageId: string, member: unknown): Promise<TestReply> {
  return t.request('POST', `/v2/images/${imageId}/members`, { user, payload: { member } });
}

function setStatus(user: TestUser, imageId: string, member: string, status: unknown): Promise<TestReply> {
  return t.request('PUT', `/v2/images/${imageId}/members/${member}`, { user, payload: { status } });
}

async function listed(user: TestUser, query = ''): Promise<string[]> {
  const res = await t.request('GET', `/v2/images?${query}`, { user });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.images as Json[]).map((i) => i.id as string);
}

test('the owner adds a member to a shared image: pending, with the member view', async () => {
  const image = await t.createImage(t.alpha);
  const res = await addMember(t.alpha, image.id, t.beta.projectId);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.image_id, image.id);
  assert.equal(res.body.member_id, t.beta.projectId);
  assert.equal(res.body.status, 'pending');
  assert.equal(res.body.schema, '/v2/schemas/member');
  assert.match(res.body.created_at as string, /Z$/);
  assert.match(res.body.updated_at as string, /Z$/);
});

test('members only for shared images: 403 on private, public and community images', async () => {
  for (const [user, visibility] of [[t.alpha, 'private'], [t.admin, 'public'], [t.alpha, 'community']] as const) {
    const image = await t.createImage(user, { visibility });
    assertFault(await addMember(user, image.id, t.beta.projectId), 403);
    assertFault(await t.request('GET', `/v2/images/${image.id}/members`, { user }), 403);
  }
});

test('a duplicate member is 409; a bad body is 400; an unknown image is 404', async () => {
  const image = await t.createImage(t.alpha);
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assertFault(await addMember(t.alpha, image.id, t.beta.projectId), 409);
  assertFault(await t.request('POST', `/v2/images/${image.id}/members`, { user: t.alpha, payload: {} }), 400);
  assertFault(await addMember(t.alpha, image.id, 5), 400);
  assertFault(await addMember(t.alpha, image.id, ''), 400);
  assertFault(await addMember(t.alpha, randomUUID(), t.beta.projectId), 404);
});

test('a reader cannot add members; a member cannot add others', async () => {
  const image = await t.createImage(t.alpha);
  assertFault(await addMember(t.alphaReader, image.id, t.beta.projectId), 403);
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assertFault(await addMember(t.beta, image.id, 'third-project'), 403);
});

test('the owner lists every member; a member sees only itself; others get 404', async () => {
  const image = await t.createImage(t.alpha);
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assert.equal((await addMember(t.alpha, image.id, 'other-project')).status, 200);
  const asOwner = await t.request('GET', `/v2/images/${image.id}/members`, { user: t.alpha });
  assert.equal(asOwner.status, 200, JSON.stringify(asOwner.body));
  assert.deepEqual((asOwner.body.members as Json[]).map((m) => m.member_id).sort(), [t.beta.projectId, 'other-project'].sort());
  assert.equal(asOwner.body.schema, '/v2/schemas/members');
  const asReader = await t.request('GET', `/v2/images/${image.id}/members`, { user: t.alphaReader });
  assert.equal(asReader.status, 200, 'a reader of the owner project lists members');
  assert.equal(asReader.body.members.length, 2);
  const asMember = await t.request('GET', `/v2/images/${image.id}/members`, { user: t.beta });
  assert.equal(asMember.status, 200, JSON.stringify(asMember.body));
  assert.deepEqual((asMember.body.members as Json[]).map((m) => m.member_id), [t.beta.projectId]);

  const one = await t.request('GET', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.beta });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.equal(one.body.member_id, t.beta.projectId);
  assertFault(await t.request('GET', `/v2/images/${image.id}/members/other-project`, { user: t.beta }), 404);
  assertFault(await t.request('GET', `/v2/images/${image.id}/members/nobody`, { user: t.alpha }), 404);

  const lonely = await t.createImage(t.alpha);
  assertFault(await t.request('GET', `/v2/images/${lonely.id}/members`, { user: t.beta }), 404);
});

test('the member accepts or rejects; the owner cannot (403); an invalid status is 400', async () => {
  const image = await t.createImage(t.alpha);
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assertFault(await setStatus(t.alpha, image.id, t.beta.projectId, 'accepted'), 403);
  assertFault(await setStatus(t.beta, image.id, t.beta.projectId, 'maybe'), 400);
  assertFault(await t.request('PUT', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.beta, payload: {} }), 400);
  const accepted = await setStatus(t.beta, image.id, t.beta.projectId, 'accepted');
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  assert.equal(accepted.body.status, 'accepted');
  const rejected = await setStatus(t.beta, image.id, t.beta.projectId, 'rejected');
  assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
  assert.equal(rejected.body.status, 'rejected');
  const back = await setStatus(t.beta, image.id, t.beta.projectId, 'pending');
  assert.equal(back.body.status, 'pending', 'a member may go back to pending');
  const shown = await t.request('GET', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.alpha });
  assert.equal(shown.body.status, 'pending');
  assertFault(await setStatus(t.beta, image.id, 'other-project', 'accepted'), 404);
});

test('the member sees the image in its list only after accepting (member_status=pending before)', async () => {
  const image = await t.createImage(t.alpha, { name: 'shared-with-beta' });
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assert.ok(!(await listed(t.beta)).includes(image.id), 'not listed while pending');
  assert.ok((await listed(t.beta, 'member_status=pending')).includes(image.id), 'listed with member_status=pending');
  assert.ok(!(await listed(t.beta, 'member_status=accepted')).includes(image.id), 'not listed as accepted');
  assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.beta })).status, 200, 'shown while pending');
  assert.equal((await setStatus(t.beta, image.id, t.beta.projectId, 'accepted')).status, 200);
  assert.ok((await listed(t.beta)).includes(image.id), 'listed once accepted');
  assert.ok(!(await listed(t.beta, 'member_status=pending')).includes(image.id), 'no longer pending');
  assert.equal((await setStatus(t.beta, image.id, t.beta.projectId, 'rejected')).status, 200);
  assert.ok(!(await listed(t.beta)).includes(image.id), 'not listed once rejected');
  assert.ok((await listed(t.beta, 'member_status=rejected')).includes(image.id), 'listed with member_status=rejected');
});

test('the owner deletes a member: 204, then the image is invisible to it; the member cannot delete', async () => {
  const image = await t.createImage(t.alpha);
  assert.equal((await addMember(t.alpha, image.id, t.beta.projectId)).status, 200);
  assert.equal((await setStatus(t.beta, image.id, t.beta.projectId, 'accepted')).status, 200);
  assertFault(await t.request('DELETE', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.beta }), 403);
  assertFault(await t.request('DELETE', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.alphaReader }), 403);
  const res = await t.request('DELETE', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.alpha });
  assert.equal(res.status, 204, JSON.stringify(res.body));
  assertFault(await t.request('GET', `/v2/images/${image.id}`, { user: t.beta }), 404);
  assert.ok(!(await listed(t.beta)).includes(image.id), 'no longer listed');
  assertFault(await t.request('DELETE', `/v2/images/${image.id}/members/${t.beta.projectId}`, { user: t.alpha }), 404);
  const members = await t.request('GET', `/v2/images/${image.id}/members`, { user: t.alpha });
  assert.deepEqual(members.body.members, []);
});

test('an admin adds members to any shared image', async () => {
  const image = await t.createImage(t.beta);
  const res = await addMember(t.admin, image.id, t.alpha.projectId);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal((await t.request('GET', `/v2/images/${image.id}`, { user: t.alpha })).status, 200);
});
