import assert from 'node:assert/strict';
import type { TestReply, TestUser, TestVolumeCloud } from '../testing.js';

/**
 * Helpers of the volume, snapshot and attachment API tests: make
 * resources through the API and wait for them, check fault bodies.
 */

/** Checks a Cinder fault: the status, `{"<key>": {"code": status, "message": ...}}`, and the message when given. */
export function expectFault(res: TestReply, status: number, message?: string | RegExp, key?: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const [first] = Object.keys(res.body);
  if (key) assert.equal(first, key, JSON.stringify(res.body));
  const fault = first ? res.body[first] : undefined;
  assert.equal(fault?.code, status, `fault body ${JSON.stringify(res.body)}`);
  if (typeof message === 'string') assert.equal(fault?.message, message);
  else if (message) assert.match(String(fault?.message), message);
}

/** Creates a volume as `user` and waits until it is `available`; returns the shown volume. */
export async function availableVolume(cloud: TestVolumeCloud, user: TestUser, volume: Record<string, unknown> = {}, version?: string): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/volumes', { user, payload: { volume: { size: 1, ...volume } }, ...(version ? { version } : {}) });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return cloud.waitVolume(res.body.volume.id, (v) => v.status !== 'creating' && v.status === 'available');
}

/** Polls a snapshot (as admin) until `done` holds. */
export async function waitSnapshot(cloud: TestVolumeCloud, id: string, done: (s: Record<string, any> | null) => boolean): Promise<Record<string, any> | null> {
  let last: Record<string, any> | null = null;
  for (let i = 0; i < 500; i++) {
    const res = await cloud.request('GET', `/snapshots/${id}`);
    last = res.status === 404 ? null : (res.body.snapshot ?? null);
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`snapshot ${id} did not reach the expected state; last seen: ${JSON.stringify(last)}`);
}

/** Polls until the volume is gone (404 to the admin). */
export async function waitVolumeGone(cloud: TestVolumeCloud, id: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await cloud.request('GET', `/volumes/${id}`)).status === 404) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`volume ${id} was not deleted`);
}

/** Creates a snapshot as `user` and waits until it is `available`. */
export async function availableSnapshot(cloud: TestVolumeCloud, user: TestUser, volumeId: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/snapshots', { user, payload: { snapshot: { volume_id: volumeId, ...extra } } });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const snap = await waitSnapshot(cloud, res.body.snapshot.id, (s) => s !== null && s.status !== 'creating');
  assert.equal(snap?.status, 'available');
  return snap ?? {};
}

/** Sets a project's quota limit directly (the quota API is tested elsewhere). */
export async function setQuota(cloud: TestVolumeCloud, projectId: string, resource: string, limit: number): Promise<void> {
  await cloud.volume.db.deleteFrom('quota').where('project_id', '=', projectId).where('resource', '=', resource).execute();
  await cloud.volume.db.insertInto('quota').values({ project_id: projectId, resource, hard_limit: limit }).execute();
}

/** Creates a public volume type with extra specs (as admin, through the types API). */
export async function volumeType(cloud: TestVolumeCloud, name: string, extraSpecs: Record<string, string> = {}): Promise<Record<string, any>> {
  const res = await cloud.request('POST', '/types', { payload: { volume_type: { name, extra_specs: extraSpecs } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.volume_type;
}
