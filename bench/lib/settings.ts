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

/**
 * Flags are another spelling of the environment: `--total-ports 2000` or
 * `--total-ports=2000` sets TOTAL_PORTS for this run (a flag wins). `-h` and
 * `--help` point at `readme`, where the settings are described.
 */
export function applyFlags(argv: string[], env: NodeJS.ProcessEnv, readme: string): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-h' || arg === '--help') throw new UsageError(`see ${readme} for the settings (environment variables or --flags)`);
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/i.exec(arg);
    if (!m?.[1]) throw new UsageError(`unexpected argument ${arg} (settings are --name=value or environment variables; see ${readme})`);
    let value = m[2];
    if (value === undefined) {
      value = argv[i + 1];
      i++;
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
    }
    env[m[1].toUpperCase().replaceAll('-', '_')] = value;
  }
}

/** A comma-separated setting's items, trimmed, empty ones dropped; `fallback` when unset or empty. */
export function listEnv(name: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[name] || fallback)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}
