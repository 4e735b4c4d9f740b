import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Cloud } from './cloud.js';

/** Services Tempest may be told are there; horizon never is. */
export type TempestService = 'glance' | 'neutron' | 'nova' | 'cinder' | 'swift';

const ini = (value: boolean): string => (value ? 'True' : 'False');

/**
 * The part of tempest.conf every run shares: where the cloud is, its admin
 * (the cloud's admin password), identity v3 only (plus `identityFeatures`
 * in [identity-feature-enabled]), and in [service_available] the
 * `services` that are there.
 */
export function baseConf(cloud: Cloud, workspace: string, options: { services?: TempestService[]; identityFeatures?: Record<string, boolean> } = {}): string {
  if (!cloud.adminPassword) throw new Error('Tempest needs a cloud with a configured admin password');
  const services = options.services ?? [];
  const features = Object.entries(options.identityFeatures ?? {}).map(([name, on]) => `${name} = ${ini(on)}\n`);
  return `[DEFAULT]
log_dir = ${workspace}/logs
log_file = tempest.log

[oslo_concurrency]
lock_path = ${workspace}/lock

[auth]
use_dynamic_credentials = True
admin_username = admin
admin_password = ${cloud.adminPassword}
admin_project_name = admin
admin_domain_name = Default
admin_user_domain_name = Default
admin_project_domain_name = Default
default_credentials_domain_name = Default

[identity]
uri_v3 = ${cloud.authUrl}
auth_version = v3
region = RegionOne
v3_endpoint_type = public
admin_role = admin
default_domain_id = default

[identity-feature-enabled]
api_v2 = False
api_v3 = True
${features.join('')}
[service_available]
nova = ${ini(services.includes('nova'))}
glance = ${ini(services.includes('glance'))}
neutron = ${ini(services.includes('neutron'))}
cinder = ${ini(services.includes('cinder'))}
swift = ${ini(services.includes('swift'))}
horizon = False
`;
}

export interface TempestResult {
  passed: number;
  failed: number;
  skipped: number;
  output: string;
}

export interface TempestRunOptions {
  /** Worker processes (default 2). */
  concurrency?: number;
  /**
   * Hand tests to workers one by one instead of a class at a time (Tempest's
   * own grouping). A class whose tests mostly wait (Tempest sleeps 10 s
   * before every subnet delete) then no longer holds one worker for ten
   * minutes while the others idle; each worker sets the class up for the
   * tests it gets.
   */
  byTest?: boolean;
}

const TEMPEST_LIMIT_MS = 20 * 60_000;

/**
 * Makes a Tempest workspace in `workspace` (with a private registry: the
 * default one, ~/.tempest, refuses a name twice), writes `conf`, and runs the
 * tests matching `regex` without blocking this process (a test may serve
 * something to the cloud meanwhile). Bounded by 20 minutes: a run that does
 * not finish by then throws, with the end of its output.
 */
export async function runTempest(workspace: string, conf: string, regex: string, options: TempestRunOptions = {}): Promise<TempestResult> {
  const concurrency = options.concurrency ?? 2;
  const ws = path.join(workspace, 'ws');
  const init = spawnSync('tempest', ['init', '--workspace-path', path.join(workspace, 'workspaces.yaml'), '--name', path.basename(workspace), ws], { encoding: 'utf8', cwd: workspace });
  if (init.status !== 0) throw new Error(`tempest init failed: ${init.stdout}${init.stderr}`);
  fs.writeFileSync(path.join(ws, 'etc', 'tempest.conf'), conf);
  if (options.byTest) {
    const stestrConf = path.join(ws, '.stestr.conf');
    fs.writeFileSync(stestrConf, fs.readFileSync(stestrConf, 'utf8').replace(/^group_regex=.*\n?/m, ''));
  }
  let timedOut = false;
  const output = await new Promise<string>((resolve) => {
    const child = spawn('tempest', ['run', '--regex', regex, '--concurrency', String(concurrency)], { cwd: ws, env: { ...process.env, OS_TEST_TIMEOUT: '300' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TEMPEST_LIMIT_MS);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
  fs.writeFileSync(path.join(workspace, 'tempest-output.txt'), output);
  if (timedOut) throw new Error(`Tempest did not finish within ${TEMPEST_LIMIT_MS / 60_000} minutes; the end of its output:\n${output.slice(-3000)}`);
  const count = (label: string): number => Number(new RegExp(`- ${label}: (\\d+)`).exec(output)?.[1] ?? NaN);
  return { passed: count('Passed'), failed: count('Failed'), skipped: count('Skipped'), output };
}
