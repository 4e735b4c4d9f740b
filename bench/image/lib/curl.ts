import fs from 'node:fs';
import { now, track } from '../../lib/proc.js';
import { cpuOf, cpuDelta, RssSampler, type CpuTimes, type Samples } from './sampler.js';

/** One transfer done with curl. */
export interface Transfer {
  /** HTTP status (0: no answer). */
  status: number;
  /** curl's own time_total (request sent to response complete), seconds. */
  seconds: number;
  /** Wall time around the curl process (includes its start), seconds. */
  wall_s: number;
  bytes_up: number;
  bytes_down: number;
  /** CPU of curl itself (bash `times` of its children). */
  client_cpu: CpuTimes | null;
  /** CPU of the server's processes during the transfer. */
  server_cpu: CpuTimes;
  /** RSS samples of the server during the transfer. */
  memory: Samples;
  /** The response body when it is small (error messages), else ''. */
  body: string;
  /** curl's exit code and stderr, when it failed. */
  curl_error: string;
}

/** How to run one transfer. */
export interface TransferSpec {
  method: 'PUT' | 'GET';
  url: string;
  token: string;
  /** PUT: the file sent as the body (application/octet-stream). */
  upload?: string;
  /** Where the response body goes (a download: /dev/null). */
  output: string;
  timeoutS: number;
  /** PIDs of the server's processes (RSS and CPU are measured over their trees). */
  serverPids: number[];
  sampleMs: number;
}

// curl in a bash that reports, with `times`, the CPU of its children (curl) on stderr.
const WRAPPER = 'curl "$@"; rc=$?; times >&2; exit $rc';

function parseTimes(stderr: string): CpuTimes | null {
  // `times` prints the shell's own times, then its children's: "0m0.010s 0m0.200s".
  const lines = [...stderr.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)];
  const children = lines[lines.length - 1];
  if (!children) return null;
  const sec = (m: string | undefined, s: string | undefined): number => Number(m ?? 0) * 60 + Number(s ?? 0);
  return { user_s: sec(children[1], children[2]), sys_s: sec(children[3], children[4]) };
}

/**
 * Runs one upload or download with curl (`-T FILE` streams the file; no
 * `Expect: 100-continue`), sampling the server's RSS and CPU meanwhile.
 * Never rejects for an HTTP error: the status says it.
 */
export async function curlTransfer(spec: TransferSpec): Promise<Transfer> {
  const args = [
    '-c',
    WRAPPER,
    'bash',
    '-sS',
    '--max-time',
    String(spec.timeoutS),
    '-o',
    spec.output,
    '-w',
    '%{http_code} %{time_total} %{size_upload} %{size_download}',
    '-X',
    spec.method,
    '-H',
    `X-Auth-Token: ${spec.token}`,
  ];
  if (spec.upload) args.push('-H', 'Content-Type: application/octet-stream', '-H', 'Expect:', '-T', spec.upload);
  args.push(spec.url);
  const bytes = spec.upload ? fs.statSync(spec.upload).size : 0;
  const cpu0 = cpuOf(spec.serverPids);
  const t0 = now();
  const child = track('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const sampler = new RssSampler(spec.serverPids, spec.sampleMs, spec.upload && child.pid !== undefined ? { launcherPid: child.pid, bytes } : null);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  // curl's --max-time bounds the transfer; this bounds curl itself.
  const guard = setTimeout(() => child.kill('SIGKILL'), (spec.timeoutS + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('close', (c) => resolve(c));
  });
  clearTimeout(guard);
  const wall = now() - t0;
  const memory = sampler.stop();
  const server_cpu = cpuDelta(cpu0, cpuOf(spec.serverPids));
  const [status, seconds, up, down] = stdout.trim().split(/\s+/).map(Number);
  let body = '';
  if (spec.output !== '/dev/null') {
    try {
      if (fs.statSync(spec.output).size < 65536) body = fs.readFileSync(spec.output, 'utf8');
    } catch {
      // no body written
    }
  }
  return {
    status: status ?? 0,
    seconds: seconds ?? Number.NaN,
    wall_s: wall,
    bytes_up: up ?? 0,
    bytes_down: down ?? 0,
    client_cpu: parseTimes(stderr),
    server_cpu,
    memory,
    body,
    curl_error: code === 0 ? '' : `curl exit ${code ?? 'killed'}: ${stderr.replace(/\d+m[\d.]+s\s+\d+m[\d.]+s\s*/g, '').trim()}`,
  };
}
