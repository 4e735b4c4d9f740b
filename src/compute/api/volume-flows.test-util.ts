import assert from 'node:assert/strict';
import type { TestUser } from '../../identity/testing.js';
import type { TestCloud } from '../test-cloud/testing.js';
import type { FakeDriver } from '../virt/fake/fake-driver.js';

/**
 * Block storage helpers for compute's flow tests on a test cloud that runs
 * the volume service (`volume: true`): requests to its API at 3.44, volumes
 * made and waited for, and what the fake hypervisors were asked.
 */
export interface VolumeFlows {
  /** A request to the volume API (`/v3` + path) as `user` (default alpha) at microversion 3.44 (or `version`). */
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, options?: { user?: TestUser; payload?: unknown; version?: string }): Promise<{ status: number; body: any }>;
  /** Creates a volume as `user` (default alpha) and waits until it is `available`; returns it. */
  create(volume: Record<string, unknown>, user?: TestUser): Promise<Record<string, any>>;
  /** Polls a volume (as admin) until `done`; returns it, or `{status: 'deleted'}` once it is gone. */
  waitFor(id: string, done: (volume: Record<string, any>) => boolean): Promise<Record<string, any>>;
  /** The fake driver of a host. */
  driver(host: string): FakeDriver;
}

export function volumeFlows(cloud: TestCloud): VolumeFlows {
  const call: VolumeFlows['call'] = (method, path, opts = {}) =>
    cloud.call('volume', method, path, { user: opts.user ?? cloud.alpha, ...(opts.payload === undefined ? {} : { payload: opts.payload }), headers: { 'OpenStack-API-Version': `volume ${opts.version ?? '3.44'}` } });
  const waitFor: VolumeFlows['waitFor'] = async (id, done) => {
    let last: unknown = null;
    for (let i = 0; i < 500; i++) {
      const res = await call('GET', `/volumes/${id}`, { user: cloud.admin });
      if (res.status === 404) return { id, status: 'deleted' };
      last = res.body;
      if (res.status === 200 && done(res.body.volume)) return res.body.volume;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`volume ${id} never reached the state; last seen: ${JSON.stringify(last)}`);
  };
  return {
    call,
    waitFor,
    async create(volume, user = cloud.alpha) {
      const res = await call('POST', '/volumes', { user, payload: { volume } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const created = await waitFor(res.body.volume.id as string, (v) => v.status !== 'creating' && v.status !== 'downloading');
      assert.equal(created.status, 'available', JSON.stringify(created));
      return created;
    },
    driver(host) {
      const agent = cloud.agents.find((a) => a.host === host);
      assert.ok(agent, `an agent on ${host}`);
      return agent.driver as FakeDriver;
    },
  };
}
