import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cloud, type Account } from './cloud.js';

/**
 * A crash in the middle of an object PUT: `stratus up` (proxy and storage
 * servers in one process) is killed with SIGKILL while a client is still
 * sending the body. After a restart the half-sent object is neither listed
 * nor served, and every object whose PUT was acknowledged before the crash
 * is there, byte for byte.
 */
let cloud: Cloud;
const account: Account = { user: 'crash-user', password: 'crash-pw-1', project: 'crash-project', projectId: '' };

before(async () => {
  cloud = await Cloud.create();
  await cloud.start();
  cloud.addMember(account);
});

after(async () => {
  await cloud.stop();
  fs.rmSync(path.dirname(cloud.dataDir), { recursive: true, force: true });
});

function token(): string {
  return cloud.asUserJson<{ id: string }>(account, ['token', 'issue']).id;
}

async function request(method: string, url: string, authToken: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url, { method, headers: { 'X-Auth-Token': authToken }, ...(body ? { body } : {}) });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** Files under the devices' `tmp` directories: where object servers write bodies before they commit them. */
function tempFiles(): string[] {
  const devices = path.join(cloud.dataDir, 'object', 'devices');
  if (!fs.existsSync(devices)) return [];
  return fs.readdirSync(devices).flatMap((device) => {
    const dir = path.join(devices, device, 'tmp');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  });
}

test('SIGKILL in the middle of a PUT: the partial object is never listed or served; acknowledged ones survive', async () => {
  const authToken = token();
  const base = `${cloud.objectUrl}/v1/AUTH_${account.projectId}`;
  assert.equal((await request('PUT', `${base}/crash`, authToken)).status, 201);
  const kept = randomBytes(256 * 1024);
  assert.equal((await request('PUT', `${base}/crash/kept.bin`, authToken, kept)).status, 201);

  // A chunked PUT that sends 8 MiB and then stalls, as a slow client would.
  const url = new URL(`${base}/crash/partial.bin`);
  const put = http.request({ method: 'PUT', host: url.hostname, port: url.port, path: url.pathname, headers: { 'X-Auth-Token': authToken, 'Transfer-Encoding': 'chunked' } });
  put.on('error', () => {});
  for (let i = 0; i < 8; i++) put.write(randomBytes(1024 * 1024));
  for (let i = 0; i < 400 && tempFiles().length === 0; i++) await sleep(25);
  assert.ok(tempFiles().length > 0, 'the object servers began writing the body');
  await cloud.kill();
  put.destroy();

  await cloud.start();
  const fresh = token();
  const listing = await request('GET', `${base}/crash?format=json`, fresh);
  assert.equal(listing.status, 200);
  assert.deepEqual(
    (JSON.parse(listing.body.toString()) as { name: string }[]).map((o) => o.name),
    ['kept.bin'],
  );
  assert.equal((await request('GET', `${base}/crash/partial.bin`, fresh)).status, 404);
  assert.equal((await request('HEAD', `${base}/crash/partial.bin`, fresh)).status, 404);
  const got = await request('GET', `${base}/crash/kept.bin`, fresh);
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(kept), 'the acknowledged object is intact');
});
