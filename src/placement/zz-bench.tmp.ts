import { randomUUID } from 'node:crypto';
import { createTestPlacement } from './testing.js';

async function main(): Promise<void> {
const HOSTS = Number(process.env.HOSTS ?? 200);
const t = await createTestPlacement();
const v = '1.39';
const hosts: string[] = [];
for (let i = 0; i < HOSTS; i++) {
  const rp = await t.request('POST', '/resource_providers', { user: t.admin, version: v, payload: { name: `cn-${i}` } });
  const uuid = rp.body.uuid as string;
  await t.request('PUT', `/resource_providers/${uuid}/inventories`, { user: t.admin, version: v, payload: { resource_provider_generation: 0, inventories: { VCPU: { total: 64, allocation_ratio: 4 }, MEMORY_MB: { total: 262144, reserved: 512 }, DISK_GB: { total: 2000 } } } });
  await t.request('PUT', `/resource_providers/${uuid}/traits`, { user: t.admin, version: v, payload: { traits: ['HW_CPU_X86_AVX2', 'COMPUTE_NET_ATTACH_INTERFACE', 'COMPUTE_VOLUME_EXTEND'], resource_provider_generation: 1 } });
  hosts.push(uuid);
}
async function boot(): Promise<void> {
  const c = await t.request('GET', '/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&root_required=!COMPUTE_STATUS_DISABLED&limit=1000', { user: t.admin, version: v });
  if (c.status !== 200) throw new Error(JSON.stringify(c.body));
  const reqs = c.body.allocation_requests as { allocations: Record<string, unknown> }[];
  const pick = reqs[Math.floor(Math.random() * reqs.length)];
  const res = await t.request('PUT', `/allocations/${randomUUID()}`, { user: t.admin, version: v, payload: { allocations: pick?.allocations, project_id: 'p', user_id: 'u', consumer_generation: null, consumer_type: 'INSTANCE' } });
  if (res.status !== 204) throw new Error(`claim ${res.status} ${JSON.stringify(res.body)}`);
}
for (let i = 0; i < 20; i++) await boot();
for (const conc of [1, 8]) {
  const N = 400;
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => { while (next++ < N) await boot(); }));
  const s = (performance.now() - start) / 1000;
  console.log(`hosts=${HOSTS} concurrency=${conc}: ${(N / s).toFixed(1)} boots/s (candidates+claim)`);
}
const start = performance.now();
for (let i = 0; i < 200; i++) await t.request('GET', '/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=1000', { user: t.admin, version: v });
console.log(`candidates only: ${(200 / ((performance.now() - start) / 1000)).toFixed(1)} req/s`);
await t.close();
}
void main();
