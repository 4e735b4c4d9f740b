import assert from 'node:assert/strict';
import type { TestUser } from '../../identity/testing.js';
import { addBootFixtures, createTestCloud, type TestCloud } from '../test-cloud/testing.js';

/**
 * A test cloud with what booting needs (a public image with data, a
 * project network with a subnet), and the helpers the server flow tests
 * share: boot, poll until a state, act, read placement.
 */
export interface FlowCloud {
  cloud: TestCloud;
  imageId: string;
  networkId: string;
  /** Boots a server as `user` (default alpha) on the network; returns its id. */
  boot(name: string, extra?: Record<string, unknown>, user?: TestUser): Promise<string>;
  /** Polls the server (as admin) until `done`; each poll is a real GET. Resolves `{status: 'DELETED'}` when gone. */
  waitFor(id: string, done: (server: Record<string, any>) => boolean): Promise<Record<string, any>>;
  /** Waits until the server has no task and is not building. */
  settle(id: string): Promise<Record<string, any>>;
  /** `POST /servers/{id}/action`; returns the reply. */
  act(id: string, body: Record<string, unknown>, options?: { user?: TestUser; version?: string }): Promise<{ status: number; body: any }>;
  /** Placement allocations of a consumer, by provider. */
  allocations(consumer: string): Promise<Record<string, { resources: Record<string, number> }>>;
  /** The placement provider uuid (= hypervisor id) of a host. */
  providerOf(host: string): Promise<string>;
  close(): Promise<void>;
}

export async function createFlowCloud(options: { hosts?: string[]; volume?: boolean } = {}): Promise<FlowCloud> {
  const cloud = await createTestCloud({ ...(options.hosts ? { hosts: options.hosts } : {}), ...(options.volume ? { volume: true } : {}) });
  const { imageId, networkId } = await addBootFixtures(cloud);

  const waitFor = async (id: string, done: (server: Record<string, any>) => boolean): Promise<Record<string, any>> => {
    for (let i = 0; i < 400; i++) {
      const res = await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' });
      if (res.status === 404) return { status: 'DELETED' };
      if (done(res.body.server)) return res.body.server;
      await new Promise((r) => setTimeout(r, 25));
    }
    const last = await cloud.request('GET', `/servers/${id}`, { user: cloud.admin, version: '2.93' });
    throw new Error(`server ${id} never reached the state: ${JSON.stringify(last.body)}`);
  };
  const flows: FlowCloud = {
    cloud,
    imageId,
    networkId,
    async boot(name, extra = {}, user = cloud.alpha) {
      const res = await cloud.request('POST', '/servers', { user, version: '2.93', payload: { server: { name, imageRef: imageId, flavorRef: '1', networks: [{ uuid: networkId }], ...extra } } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const id = res.body.server.id as string;
      const server = await waitFor(id, (s) => s.status !== 'BUILD');
      assert.equal(server.status, 'ACTIVE', JSON.stringify(server.fault));
      return id;
    },
    waitFor,
    settle: (id) => waitFor(id, (s) => s['OS-EXT-STS:task_state'] === null && s.status !== 'BUILD'),
    async act(id, body, opts = {}) {
      return cloud.request('POST', `/servers/${id}/action`, { user: opts.user ?? cloud.alpha, version: opts.version ?? '2.93', payload: body });
    },
    async allocations(consumer) {
      const res = await cloud.call('placement', 'GET', `/allocations/${consumer}`, { user: cloud.admin, headers: { 'OpenStack-API-Version': 'placement 1.28' } });
      return res.body.allocations ?? {};
    },
    async providerOf(host) {
      const res = await cloud.request('GET', `/os-hypervisors/detail`, { user: cloud.admin, version: '2.53' });
      const found = (res.body.hypervisors as { id: string; service: { host: string } }[]).find((h) => h.service.host === host);
      assert.ok(found, `a hypervisor on ${host}`);
      return found.id;
    },
    close: () => cloud.close(),
  };
  return flows;
}

/** The host a server is on (admin view). */
export function hostOf(server: Record<string, any>): string | null {
  return server['OS-EXT-SRV-ATTR:host'] ?? null;
}
