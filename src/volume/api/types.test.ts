import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createVolumeTestCloud, type TestVolumeCloud } from '../testing.js';

let cloud: TestVolumeCloud;
before(async () => {
  cloud = await createVolumeTestCloud();
});
after(async () => {
  await cloud.close();
});

async function createType(body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/types', { payload: { volume_type: body } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.volume_type;
}

test('create answers the manage view, show and list the v3 view', async () => {
  const created = await createType({ name: 'gold', description: 'fast disks', extra_specs: { volume_backend_name: 'fake-a', 'capabilities:x': '1' } });
  assert.deepEqual(Object.keys(created).sort(), ['description', 'extra_specs', 'id', 'is_public', 'name', 'os-volume-type-access:is_public']);
  assert.equal(created.is_public, true);
  assert.deepEqual(created.extra_specs, { volume_backend_name: 'fake-a', 'capabilities:x': '1' });

  const shown = await cloud.request('GET', `/types/${created.id}`);
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.body.volume_type, {
    id: created.id,
    name: 'gold',
    is_public: true,
    description: 'fast disks',
    extra_specs: { volume_backend_name: 'fake-a', 'capabilities:x': '1' },
    qos_specs_id: null,
    'os-volume-type-access:is_public': true,
  });

  // A member sees only the user-visible extra specs and no qos_specs_id.
  const asMember = await cloud.request('GET', `/types/${created.id}`, { user: cloud.alpha });
  assert.equal(asMember.status, 200);
  assert.deepEqual(asMember.body.volume_type.extra_specs, {});
  assert.equal('qos_specs_id' in asMember.body.volume_type, false);
  assert.equal(asMember.body.volume_type['os-volume-type-access:is_public'], true);
  // A reader does not get the access flag (the rule wants a member).
  const asReader = await cloud.request('GET', `/types/${created.id}`, { user: cloud.alphaReader });
  assert.equal(asReader.status, 200);
  assert.equal('os-volume-type-access:is_public' in asReader.body.volume_type, false);

  const list = await cloud.request('GET', '/types', { user: cloud.alpha });
  assert.equal(list.status, 200);
  assert.ok(list.body.volume_types.some((t: any) => t.name === 'gold'));
  assert.ok(list.body.volume_types.some((t: any) => t.name === '__DEFAULT__'));
});

test('create: 409 on a duplicate name, 400 on bad input, 403 for members; nothing changes', async () => {
  await createType({ name: 'dup' });
  const again = await cloud.request('POST', '/types', { payload: { volume_type: { name: 'dup' } } });
  assert.equal(again.status, 409);
  assert.deepEqual(again.body, { conflictingRequest: { code: 409, message: 'Volume Type dup already exists.' } });

  for (const [payload, needle] of [
    [{ volume_type: { name: '' } }, 'name'],
    [{ volume_type: { name: '   ' } }, "'name' can not be empty"],
    [{ volume_type: {} }, "'name' is a required property"],
    [{ volume_type: { name: 'x', bogus: 1 } }, "'bogus' was unexpected"],
    [{ volume_type: { name: 'x', extra_specs: { 'bad key!': 'v' } } }, 'extra_specs'],
    [{ volume_type: { name: 'x', extra_specs: { k: 5 } } }, 'is not of type'],
    [{ volume_type: { name: 'x', 'os-volume-type-access:is_public': 'maybe' } }, 'os-volume-type-access:is_public'],
    [{ volume_type: { name: 'x', description: 'a'.repeat(256) } }, 'description'],
    [{ type: { name: 'x' } }, "'volume_type' is a required property"],
  ] as const) {
    const res = await cloud.request('POST', '/types', { payload });
    assert.equal(res.status, 400, JSON.stringify(payload));
    assert.ok(res.body.badRequest.message.includes(needle), `${res.body.badRequest.message} names ${needle}`);
  }
  const denied = await cloud.request('POST', '/types', { user: cloud.alpha, payload: { volume_type: { name: 'mine' } } });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.forbidden.message, "Policy doesn't allow volume_extension:type_create to be performed.");
  const list = await cloud.request('GET', '/types?is_public=None');
  assert.equal(list.body.volume_types.filter((t: any) => ['x', 'mine'].includes(t.name)).length, 0);
});

test('update renames, describes and flips visibility; 409 on a taken name; 400 on nothing to change', async () => {
  const t = await createType({ name: 'silver' });
  await createType({ name: 'bronze' });
  const res = await cloud.request('PUT', `/types/${t.id}`, { payload: { volume_type: { name: 'silver2', description: 'd', is_public: false } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(res.body.volume_type, { id: t.id, name: 'silver2', is_public: false, extra_specs: {}, description: 'd' });
  const taken = await cloud.request('PUT', `/types/${t.id}`, { payload: { volume_type: { name: 'bronze' } } });
  assert.equal(taken.status, 409);
  const nothing = await cloud.request('PUT', `/types/${t.id}`, { payload: { volume_type: {} } });
  assert.equal(nothing.status, 400);
  assert.equal(nothing.body.badRequest.message, 'Specify volume type name, description, is_public or a combination thereof.');
  const blank = await cloud.request('PUT', `/types/${t.id}`, { payload: { volume_type: { name: '  ' } } });
  assert.equal(blank.body.badRequest.message, 'Volume type name can not be empty.');
  const missing = await cloud.request('PUT', '/types/00000000-0000-0000-0000-000000000000', { payload: { volume_type: { name: 'zzz' } } });
  assert.equal(missing.status, 404);
  const shown = await cloud.request('GET', `/types/${t.id}`);
  assert.equal(shown.body.volume_type.name, 'silver2');
});

test('private types: hidden from other projects until access is given; access list and actions', async () => {
  const t = await createType({ name: 'private-a', 'os-volume-type-access:is_public': false });
  assert.equal(t.is_public, false);
  assert.equal((await cloud.request('GET', `/types/${t.id}`, { user: cloud.alpha })).status, 404);
  const listBefore = await cloud.request('GET', '/types', { user: cloud.alpha });
  assert.equal(listBefore.body.volume_types.some((x: any) => x.id === t.id), false);
  // Admins list public types by default, private ones with is_public=false.
  const adminPrivate = await cloud.request('GET', '/types?is_public=false');
  assert.ok(adminPrivate.body.volume_types.some((x: any) => x.id === t.id));
  assert.ok(adminPrivate.body.volume_types.every((x: any) => x.is_public === false));

  const add = await cloud.request('POST', `/types/${t.id}/action`, { payload: { addProjectAccess: { project: cloud.alpha.projectId } } });
  assert.equal(add.status, 202);
  const dupe = await cloud.request('POST', `/types/${t.id}/action`, { payload: { addProjectAccess: { project: cloud.alpha.projectId } } });
  assert.equal(dupe.status, 409);
  assert.equal((await cloud.request('GET', `/types/${t.id}`, { user: cloud.alpha })).status, 200);
  assert.equal((await cloud.request('GET', `/types/${t.id}`, { user: cloud.beta })).status, 404);
  const listed = await cloud.request('GET', `/types/${t.id}/os-volume-type-access`);
  assert.deepEqual(listed.body, { volume_type_access: [{ volume_type_id: t.id, project_id: cloud.alpha.projectId }] });
  assert.equal((await cloud.request('GET', `/types/${t.id}/os-volume-type-access`, { user: cloud.alpha })).status, 403);

  const remove = await cloud.request('POST', `/types/${t.id}/action`, { payload: { removeProjectAccess: { project: cloud.alpha.projectId } } });
  assert.equal(remove.status, 202);
  const again = await cloud.request('POST', `/types/${t.id}/action`, { payload: { removeProjectAccess: { project: cloud.alpha.projectId } } });
  assert.equal(again.status, 404);
  assert.equal((await cloud.request('GET', `/types/${t.id}`, { user: cloud.alpha })).status, 404);

  const pub = await createType({ name: 'public-b' });
  const onPublic = await cloud.request('POST', `/types/${pub.id}/action`, { payload: { addProjectAccess: { project: cloud.alpha.projectId } } });
  assert.equal(onPublic.status, 400);
  assert.equal(onPublic.body.badRequest.message, 'Invalid volume type: Type access modification is not applicable to public volume type.');
  const listPublic = await cloud.request('GET', `/types/${pub.id}/os-volume-type-access`);
  assert.equal(listPublic.status, 404);
  const bogus = await cloud.request('POST', `/types/${pub.id}/action`, { payload: { frobnicate: {} } });
  assert.equal(bogus.status, 400);
});

test('delete: 202, 404 for unknown, 400 for the default type and for a type in use', async () => {
  const t = await createType({ name: 'short-lived' });
  assert.equal((await cloud.request('DELETE', `/types/${t.id}`)).status, 202);
  assert.equal((await cloud.request('GET', `/types/${t.id}`)).status, 404);
  assert.equal((await cloud.request('DELETE', `/types/${t.id}`)).status, 404);

  const def = await cloud.request('GET', '/types/default');
  assert.equal(def.status, 200);
  assert.equal(def.body.volume_type.name, '__DEFAULT__');
  const refused = await cloud.request('DELETE', `/types/${def.body.volume_type.id}`);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.badRequest.message, `The volume type ${def.body.volume_type.id} is a default volume type and cannot be deleted.`);

  const used = await createType({ name: 'used' });
  await cloud.volume.db
    .insertInto('volume')
    .values({
      id: '11111111-1111-1111-1111-111111111111', project_id: cloud.alpha.projectId, user_id: 'u', host: null, size: 1, availability_zone: 'nova', status: 'available', attach_status: 'detached',
      migration_status: null, display_name: null, display_description: null, volume_type_id: used.id, source_volid: null, snapshot_id: null, image_id: null, bootable: 0, multiattach: 0,
      encryption_key_id: null, provider_location: null, previous_status: null, replication_status: null, group_id: null, scheduling_attempts: null, created_at: new Date().toISOString(), updated_at: null, launched_at: null,
    })
    .execute();
  try {
    const inUse = await cloud.request('DELETE', `/types/${used.id}`);
    assert.equal(inUse.status, 400);
    assert.equal(inUse.body.badRequest.message, 'Target volume type is still in use.');
    const specs = await cloud.request('POST', `/types/${used.id}/extra_specs`, { payload: { extra_specs: { a: 'b' } } });
    assert.equal(specs.status, 400);
    assert.equal(specs.body.badRequest.message, 'Volume Type is currently in use.');
  } finally {
    await cloud.volume.db.deleteFrom('volume').where('id', '=', '11111111-1111-1111-1111-111111111111').execute();
  }
});

test('extra specs: set, list, show, update one, delete; Cinder errors', async () => {
  const t = await createType({ name: 'specs', extra_specs: { spec1: 'val1' } });
  const set = await cloud.request('POST', `/types/${t.id}/extra_specs`, { payload: { extra_specs: { spec2: 'val2', multiattach: '<is> True' } } });
  assert.equal(set.status, 200);
  assert.deepEqual(set.body, { extra_specs: { spec2: 'val2', multiattach: '<is> True' } });
  const list = await cloud.request('GET', `/types/${t.id}/extra_specs`);
  assert.deepEqual(list.body, { extra_specs: { spec1: 'val1', spec2: 'val2', multiattach: '<is> True' } });
  const memberList = await cloud.request('GET', `/types/${t.id}/extra_specs`, { user: cloud.alpha });
  assert.deepEqual(memberList.body, { extra_specs: { multiattach: '<is> True' } });
  const one = await cloud.request('GET', `/types/${t.id}/extra_specs/spec2`);
  assert.deepEqual(one.body, { spec2: 'val2' });
  const upd = await cloud.request('PUT', `/types/${t.id}/extra_specs/spec2`, { payload: { spec2: 'val3' } });
  assert.equal(upd.status, 200);
  assert.deepEqual(upd.body, { spec2: 'val3' });
  assert.equal((await cloud.request('PUT', `/types/${t.id}/extra_specs/other`, { payload: { spec2: 'x' } })).status, 400);
  assert.equal((await cloud.request('PUT', `/types/${t.id}/extra_specs/spec2`, { payload: { spec2: 'x', spec3: 'y' } })).status, 400);
  assert.equal((await cloud.request('PUT', `/types/${t.id}/extra_specs/spec2`, { payload: null })).status, 400);
  assert.equal((await cloud.request('POST', `/types/${t.id}/extra_specs`, { payload: { extra_specs: ['invalid'] } })).status, 400);
  assert.equal((await cloud.request('POST', `/types/${t.id}/extra_specs`, { payload: { extra_specs: null } })).status, 400);
  const cache = await cloud.request('POST', `/types/${t.id}/extra_specs`, { payload: { extra_specs: { cacheable: '<is> True' } } });
  assert.equal(cache.status, 400);
  assert.equal(cache.body.badRequest.message, 'cacheable cannot be set with multiattach.');
  const del = await cloud.request('DELETE', `/types/${t.id}/extra_specs/spec2`);
  assert.equal(del.status, 202);
  const gone = await cloud.request('GET', `/types/${t.id}/extra_specs/spec2`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.itemNotFound.message, `Volume Type ${t.id} has no extra specs with key spec2.`);
  assert.equal((await cloud.request('DELETE', `/types/${t.id}/extra_specs/spec2`)).status, 404);
  const unknown = '00000000-0000-0000-0000-000000000001';
  assert.equal((await cloud.request('GET', `/types/${unknown}/extra_specs`)).status, 404);
  assert.equal((await cloud.request('POST', `/types/${unknown}/extra_specs`, { payload: { extra_specs: { a: 'b' } } })).status, 404);
  assert.equal((await cloud.request('PUT', `/types/${unknown}/extra_specs/a`, { payload: { a: 'b' } })).status, 404);
  assert.equal((await cloud.request('POST', `/types/${t.id}/extra_specs`, { user: cloud.alpha, payload: { extra_specs: { a: 'b' } } })).status, 403);
});

test('list: pagination with limit, marker and next link; sort; filters', async () => {
  for (const name of ['page-1', 'page-2', 'page-3']) await createType({ name, extra_specs: { group: 'paged' } });
  const first = await cloud.request('GET', "/types?limit=2&sort=name:asc&extra_specs={'group':'paged'}");
  assert.equal(first.status, 200);
  assert.deepEqual(first.body.volume_types.map((t: any) => t.name), ['page-1', 'page-2']);
  assert.equal(first.body.volume_type_links[0].rel, 'next');
  const marker = first.body.volume_types[1].id;
  assert.ok(first.body.volume_type_links[0].href.includes(`marker=${marker}`));
  const second = await cloud.request('GET', `/types?limit=2&sort=name:asc&marker=${marker}&extra_specs={'group':'paged'}`);
  assert.deepEqual(second.body.volume_types.map((t: any) => t.name), ['page-3']);
  assert.equal('volume_type_links' in second.body, false);
  // A member's filter on a sensitive spec matches nothing; 3.52 refuses other filters.
  const member = await cloud.request('GET', "/types?extra_specs={'group':'paged'}", { user: cloud.alpha, version: '3.52' });
  assert.deepEqual(member.body.volume_types, []);
  const badFilter = await cloud.request('GET', '/types?name=page-1', { user: cloud.alpha, version: '3.52' });
  assert.equal(badFilter.status, 400);
  assert.equal(badFilter.body.badRequest.message, 'Invalid filters name are found in query options.');
  assert.equal((await cloud.request('GET', '/types?is_public=perhaps')).status, 400);
  assert.equal((await cloud.request('GET', '/types?sort=bogus:asc')).status, 400);
});

test('encryption: create, show, show one key, update, delete', async () => {
  const t = await createType({ name: 'encrypted' });
  const create = await cloud.request('POST', `/types/${t.id}/encryption`, { payload: { encryption: { provider: 'luks', key_size: 256, cipher: 'aes-xts-plain64', control_location: 'front-end' } } });
  assert.equal(create.status, 200, JSON.stringify(create.body));
  assert.equal(create.body.encryption.volume_type_id, t.id);
  assert.equal(create.body.encryption.key_size, 256);
  const again = await cloud.request('POST', `/types/${t.id}/encryption`, { payload: { encryption: { provider: 'luks', control_location: 'front-end' } } });
  assert.equal(again.status, 400);
  const show = await cloud.request('GET', `/types/${t.id}/encryption`);
  assert.equal(show.body.provider, 'luks');
  assert.equal(show.body.cipher, 'aes-xts-plain64');
  assert.equal(show.body.encryption_id, create.body.encryption.encryption_id);
  const item = await cloud.request('GET', `/types/${t.id}/encryption/cipher`);
  assert.deepEqual(item.body, { cipher: 'aes-xts-plain64' });
  const upd = await cloud.request('PUT', `/types/${t.id}/encryption/provider`, { payload: { encryption: { key_size: 128, control_location: 'back-end' } } });
  assert.equal(upd.status, 200);
  assert.deepEqual(upd.body, { encryption: { key_size: 128, control_location: 'back-end' } });
  assert.equal((await cloud.request('GET', `/types/${t.id}/encryption`)).body.key_size, 128);
  const badLocation = await cloud.request('PUT', `/types/${t.id}/encryption/provider`, { payload: { encryption: { control_location: 'middle' } } });
  assert.equal(badLocation.status, 400);
  assert.equal((await cloud.request('DELETE', `/types/${t.id}/encryption/provider`)).status, 202);
  assert.deepEqual((await cloud.request('GET', `/types/${t.id}/encryption`)).body, {});
  assert.equal((await cloud.request('DELETE', `/types/${t.id}/encryption/provider`)).status, 404);
  assert.equal((await cloud.request('POST', '/types/00000000-0000-0000-0000-000000000002/encryption', { payload: { encryption: { provider: 'luks', control_location: 'front-end' } } })).status, 404);
});

test('default types (3.62): set, show, list, unset; older microversions do not have them', async () => {
  const t = await createType({ name: 'project-default' });
  const project = cloud.alpha.projectId;
  assert.equal((await cloud.request('GET', `/default-types/${project}`, { version: '3.61' })).status, 404);
  const set = await cloud.request('PUT', `/default-types/${project}`, { version: '3.62', payload: { default_type: { volume_type: 'project-default' } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body, { default_type: { project_id: project, volume_type_id: t.id } });
  const show = await cloud.request('GET', `/default-types/${project}`, { version: '3.62' });
  assert.deepEqual(show.body, set.body);
  const list = await cloud.request('GET', '/default-types', { version: '3.62' });
  assert.deepEqual(list.body, { default_types: [{ project_id: project, volume_type_id: t.id }] });
  // The project's members now get it as their default.
  const def = await cloud.request('GET', '/types/default', { user: cloud.alpha });
  assert.equal(def.body.volume_type.id, t.id);
  // It cannot be deleted while it is a default.
  assert.equal((await cloud.request('DELETE', `/types/${t.id}`)).status, 400);
  const unknownType = await cloud.request('PUT', `/default-types/${project}`, { version: '3.62', payload: { default_type: { volume_type: 'nope' } } });
  assert.equal(unknownType.status, 400);
  assert.equal(unknownType.body.badRequest.message, 'Volume type with name nope could not be found.');
  const denied = await cloud.request('PUT', `/default-types/${project}`, { user: cloud.alpha, version: '3.62', payload: { default_type: { volume_type: 'project-default' } } });
  assert.equal(denied.status, 403);
  assert.equal((await cloud.request('DELETE', `/default-types/${project}`, { version: '3.62' })).status, 204);
  assert.equal((await cloud.request('GET', `/default-types/${project}`, { version: '3.62' })).status, 404);
  assert.equal((await cloud.request('GET', '/types/default', { user: cloud.alpha })).body.volume_type.name, '__DEFAULT__');
});
