import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { sshFingerprint } from '../keypairs.js';
import { createTestCompute, expectComputeError, type TestCompute } from '../testing.js';

let t: TestCompute;
before(async () => {
  t = await createTestCompute();
});
after(async () => {
  await t.close();
});

/** Public keys made with ssh-keygen and the fingerprints `ssh-keygen -l -E md5` printed for them. */
const KEYS = {
  ed25519: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxE1KKdUGbAEv++kn8RGdGLGD77/R+W7XQnOMWX3oZ4 test@host', 'a7:31:47:33:74:17:44:31:f1:ef:49:e0:8c:04:ea:9e'],
  rsa: [
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC93NWxqVgHQHftYdEgjEXYlEzAplGdTQLTmZSaQKhMmeXKOwwFDQOblMzC4k4DLGP6c2HSi4zfY6zcFAspvaIRx0ORarnyamyWSaZLFw+Uj2Df+6eD+s3se6fgMtZ8pl0OtLE197rcXGpwQhnbLhyZ5/m9cd/iV+afC+2Q35EOQw== root@vm',
    '78:87:dc:7b:61:a3:27:55:8b:f8:fe:5f:1c:52:c2:b9',
  ],
  p256: [
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMNvvTxthj+0RwsHsEFzOGtBPaWvGmEqbe9vMq96o2RopKwba0g3mNAHGyDcd0zXWQScRyc6k+kLf11cibF3Gks= root@vm',
    'fd:cc:53:3c:1c:28:64:05:bb:95:90:d0:35:ad:62:f0',
  ],
  p384: [
    'ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBG+VRyMDgAHCV4n/NLru7b5XR9991AdtQSvfw0yWlTmUviIsqHD8zYt2lIlWsh/RTfCMO9sBx0CYJyM21c94Yc8X3FLfYCtupWqX3bQTptLJcxgPda21egs72GIEzjT7fQ== root@vm',
    '0d:d6:c7:3a:0e:0f:85:fe:2b:be:5f:f4:36:13:d4:60',
  ],
  p521: [
    'ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAGKGCM6sJKV93l84f6S+RriyNbKRYpasO0xeus/7VtMhfzqbYDHUPf1BL+CDAtNRf33I686GmYcsfEEjJdzeJh5qQEIwRspq1y5qe7780zLLS3dcxLQagN1gIBND1VAeLCXmfgpbvTwxX86b84kh+9RducAMLSmKR4Fq0jkVxms38GU9w== root@vm',
    '89:bd:6e:70:b4:ab:c0:96:92:ed:ba:04:94:6e:8c:26',
  ],
} as const;

test('fingerprints of imported keys are the MD5 ones ssh-keygen prints', () => {
  for (const [kind, [key, fingerprint]] of Object.entries(KEYS)) assert.equal(sshFingerprint(key), fingerprint, kind);
});

test('import: 200 at 2.1 without type; 201 with type ssh at 2.2', async () => {
  const old = await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'imported-old', public_key: KEYS.rsa[0] } } });
  assert.equal(old.status, 200, JSON.stringify(old.body));
  assert.deepEqual(old.body.keypair, { name: 'imported-old', public_key: KEYS.rsa[0], fingerprint: KEYS.rsa[1], user_id: t.alpha.userId }, 'v2.1 create view');
  const v22 = await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'imported-22', public_key: KEYS.ed25519[0] } }, version: '2.2' });
  assert.equal(v22.status, 201, JSON.stringify(v22.body));
  assert.equal(v22.body.keypair.type, 'ssh', 'type defaults to ssh');
  assert.equal(v22.body.keypair.fingerprint, KEYS.ed25519[1], 'ed25519 fingerprint');
  assert.equal('private_key' in v22.body.keypair, false, 'no private key for an import');
});

test('generate: an RSA key with its private key before 2.92, refused from 2.92', async () => {
  const res = await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'generated' } }, version: '2.91' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const kp = res.body.keypair;
  assert.match(kp.public_key, /^ssh-rsa \S+ Generated-by-Nova$/, 'public key line');
  assert.equal(sshFingerprint(kp.public_key), kp.fingerprint, 'fingerprint of the public key');
  assert.equal(createPrivateKey(kp.private_key).asymmetricKeyDetails?.modulusLength, 2048, 'a 2048-bit RSA private key');
  assert.match(kp.private_key, /^-----BEGIN RSA PRIVATE KEY-----/, 'PEM, PKCS#1');
  expectComputeError(await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'gen-292' } }, version: '2.92' }), 400, /'public_key' is a required property/);
  const shown = await t.request('GET', '/os-keypairs/generated', { user: t.alpha, version: '2.2' });
  assert.equal('private_key' in shown.body.keypair, false, 'the private key is never shown again');
});

test('x509: generated certificate and imported one', async () => {
  const res = await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'cert', type: 'x509' } }, version: '2.2' });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const cert = new X509Certificate(res.body.keypair.public_key);
  assert.equal(cert.subject, `CN=${t.alpha.userId}`, 'subject names the user');
  assert.equal(res.body.keypair.fingerprint, cert.fingerprint.toLowerCase(), 'SHA-1 fingerprint');
  assert.ok(Buffer.from(res.body.keypair.private_key, 'base64').length > 1000, 'a PKCS#12 bundle');
  const imported = await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'cert-import', type: 'x509', public_key: res.body.keypair.public_key } }, version: '2.2' });
  assert.equal(imported.body.keypair.fingerprint, res.body.keypair.fingerprint, 'same fingerprint on import');
  expectComputeError(await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'bad-cert', type: 'x509', public_key: 'not a cert' } }, version: '2.2' }), 400, /Keypair data is invalid: failed to generate X509 fingerprint/);
  expectComputeError(await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'typed', type: 'x509' } } }), 400, /'type' was unexpected/);
});

test('invalid keys and names are 400, duplicates 409', async () => {
  const create = (keypair: Record<string, unknown>, version = '2.2') => t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair }, version });
  for (const key of ['ssh-rsa JUNK nova@ubuntu', ' ', `ssh-rsa ${'A'.repeat(2048)} openstack@ubuntu`, KEYS.rsa[0].replace('ssh-rsa', 'ssh-ed25519')]) {
    expectComputeError(await create({ name: 'bad-key', public_key: key }), 400, 'Keypair data is invalid: failed to generate fingerprint');
  }
  expectComputeError(await create({ name: '' }), 400);
  expectComputeError(await create({ name: 'k'.repeat(256) }), 400);
  expectComputeError(await create({ name: 'key_/.\\@:' }), 400, /does not match/);
  expectComputeError(await create({ name: 'a@b.c', public_key: KEYS.p256[0] }, '2.91'), 400, /does not match/);
  assert.equal((await create({ name: 'a@b.c', public_key: KEYS.p256[0] }, '2.92')).status, 201, '2.92 allows @ and .');
  expectComputeError(await create({ name: 'a@b.c', public_key: KEYS.p384[0] }, '2.92'), 409, "Key pair 'a@b.c' already exists.");
  expectComputeError(await create({ name: 'x', extra: 1 }), 400, /'extra' was unexpected/);
});

test('list, show and delete are the caller\'s own; admins use user_id from 2.10', async () => {
  await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'beta-key', public_key: KEYS.p521[0] } } });
  const list = await t.request('GET', '/os-keypairs', { user: t.beta, version: '2.2' });
  const names = list.body.keypairs.map((k: any) => k.keypair.name);
  assert.ok(names.includes('beta-key') && !names.includes('imported-old'), 'only beta\'s key pairs');
  assert.deepEqual(Object.keys(list.body.keypairs[0].keypair).sort(), ['fingerprint', 'name', 'public_key', 'type'], 'list view keys');
  const show = await t.request('GET', '/os-keypairs/beta-key', { user: t.beta, version: '2.2' });
  assert.deepEqual(
    Object.keys(show.body.keypair).sort(),
    ['created_at', 'deleted', 'deleted_at', 'fingerprint', 'id', 'name', 'public_key', 'type', 'updated_at', 'user_id'],
    'show view keys',
  );
  assert.equal(Number.isInteger(show.body.keypair.id), true, 'an integer id');
  assert.match(show.body.keypair.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?$/, 'created_at as Nova writes it');
  expectComputeError(await t.request('GET', '/os-keypairs/beta-key', { user: t.alpha }), 404, `Keypair beta-key not found for user ${t.alpha.userId}`);
  const asAdmin = await t.request('GET', `/os-keypairs/beta-key?user_id=${t.beta.userId}`, { user: t.admin, version: '2.10' });
  assert.equal(asAdmin.body.keypair.user_id, t.beta.userId, 'admin shows another user\'s key');
  const adminList = await t.request('GET', `/os-keypairs?user_id=${t.beta.userId}`, { user: t.admin, version: '2.10' });
  assert.ok(adminList.body.keypairs.some((k: any) => k.keypair.name === 'beta-key'), 'admin lists another user\'s keys');
  expectComputeError(await t.request('GET', `/os-keypairs?user_id=${t.beta.userId}`, { user: t.alpha, version: '2.10' }), 403, /os-keypairs:index/);
  const forOther = await t.request('POST', '/os-keypairs', { user: t.admin, payload: { keypair: { name: 'made-for-alpha', public_key: KEYS.p256[0], user_id: t.alpha.userId } }, version: '2.10' });
  assert.equal(forOther.body.keypair.user_id, t.alpha.userId, 'admin creates for another user');
  expectComputeError(await t.request('POST', '/os-keypairs', { user: t.alpha, payload: { keypair: { name: 'steal', public_key: KEYS.p256[0], user_id: t.beta.userId } }, version: '2.10' }), 403);

  expectComputeError(await t.request('DELETE', '/os-keypairs/beta-key', { user: t.alpha }), 404);
  const old = await t.request('DELETE', '/os-keypairs/imported-old', { user: t.alpha });
  assert.equal(old.status, 202, 'delete answers 202 at 2.1');
  const v22 = await t.request('DELETE', '/os-keypairs/beta-key', { user: t.beta, version: '2.2' });
  assert.equal(v22.status, 204, 'and 204 from 2.2');
  expectComputeError(await t.request('DELETE', '/os-keypairs/beta-key', { user: t.beta }), 404);
});

test('paging from 2.35', async () => {
  for (const name of ['page-a', 'page-b', 'page-c']) {
    await t.request('POST', '/os-keypairs', { user: t.alphaReader, payload: { keypair: { name, public_key: KEYS.ed25519[0] } } });
  }
  const first = await t.request('GET', '/os-keypairs?limit=2', { user: t.alphaReader, version: '2.35' });
  assert.deepEqual(first.body.keypairs.map((k: any) => k.keypair.name), ['page-a', 'page-b'], 'first page by name');
  assert.equal(first.body.keypairs_links[0].href, 'http://compute.test:8774/v2.1/os-keypairs?limit=2&marker=page-b', 'next link');
  const second = await t.request('GET', '/os-keypairs?limit=2&marker=page-b', { user: t.alphaReader, version: '2.35' });
  assert.deepEqual(second.body.keypairs.map((k: any) => k.keypair.name), ['page-c'], 'second page');
  assert.equal(second.body.keypairs_links, undefined, 'no next link on the last page');
  expectComputeError(await t.request('GET', '/os-keypairs?marker=nope', { user: t.alphaReader, version: '2.35' }), 400, 'Marker nope could not be found.');
  const unpaged = await t.request('GET', '/os-keypairs?limit=1', { user: t.alphaReader, version: '2.34' });
  assert.equal(unpaged.body.keypairs.length, 3, 'limit is ignored before 2.35');
  expectComputeError(await t.request('GET', '/os-keypairs?foo=1', { user: t.alphaReader, version: '2.75' }), 400, /Additional properties/);
});

test('the key_pairs quota is per user', async () => {
  await t.compute.db.insertInto('quota').values({ project_id: t.beta.projectId, user_id: t.beta.userId, resource: 'key_pairs', hard_limit: 1 }).execute();
  const existing = await t.request('GET', '/os-keypairs', { user: t.beta });
  for (const k of existing.body.keypairs) await t.request('DELETE', `/os-keypairs/${encodeURIComponent(k.keypair.name)}`, { user: t.beta });
  assert.equal((await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'q1', public_key: KEYS.p256[0] } } })).status, 200, 'the first fits');
  expectComputeError(await t.request('POST', '/os-keypairs', { user: t.beta, payload: { keypair: { name: 'q2', public_key: KEYS.p256[0] } } }), 403, 'Quota exceeded, too many key pairs.');
});
