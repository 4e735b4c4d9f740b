import path from 'node:path';

/** A setting that cannot be used; the message names it. `runMain` ends with exit code 2 for it. */
export class UsageError extends Error {}

/** A whole number >= `min` from `env[name]`, `fallback` when unset or empty; UsageError otherwise. */
export function intEnv(name: string, fallback: number, min = 1, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name}=${raw}: a whole number >= ${min} is needed`);
  return n;
}

/** The OpenStack anchor scripts: STRATUS_ANCHORS, or ../shared/anchors/openstack next to the repository. */
export function anchorsDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.STRATUS_ANCHORS;
  return configured ? path.resolve(configured) : path.resolve(root, '..', 'shared', 'anchors', 'openstack');
}
