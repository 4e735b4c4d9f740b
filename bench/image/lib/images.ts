import { httpRequest } from '../../lib/http.js';
import { busyPercent, hostCpu, now } from '../../lib/proc.js';
import { curlTransfer, type Transfer } from './curl.js';
import { cachedBytes } from './sampler.js';
import type { ImageServer } from './servers.js';

/** One create / upload / check / download / delete cycle on one server. */
export interface ImageRun {
  image_id: string;
  create_s: number;
  upload: Transfer;
  /** Whole-host CPU busy % during the upload / download (server, client and others). */
  host_busy_upload_pct: number;
  host_busy_download_pct: number;
  /** Bytes of the stored image file in the page cache just before the download (null: unknown). */
  stored_cached_bytes: number | null;
  download: Transfer;
  delete_s: number;
  upload_mib_s: number;
  download_mib_s: number;
}

/** What the upload must produce. */
export interface Expected {
  file: string;
  bytes: number;
  md5: string;
}

/** An HTTP answer that the benchmark did not expect: stops the benchmark with the server's words. */
export class UnexpectedAnswer extends Error {}

function short(text: string): string {
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

/**
 * Creates a raw/bare image, uploads `expected.file` to it, checks that it is
 * active with the right size and MD5, downloads it to /dev/null (size
 * checked) and deletes it. Throws UnexpectedAnswer on any unexpected status.
 */
export async function imageRun(server: ImageServer, token: string, expected: Expected, opts: { name: string; timeoutS: number; sampleMs: number; responseFile: string }): Promise<ImageRun> {
  const headers = { 'X-Auth-Token': token };
  const t0 = now();
  const created = await httpRequest(`${server.imageUrl}/v2/images`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: opts.name, disk_format: 'raw', container_format: 'bare' }),
    timeoutMs: 30000,
  });
  const create_s = now() - t0;
  if (created.status !== 201) throw new UnexpectedAnswer(`${server.name}: POST /v2/images answered HTTP ${created.status}: ${short(created.body)}`);
  const id = (JSON.parse(created.body) as { id?: unknown }).id;
  if (typeof id !== 'string') throw new UnexpectedAnswer(`${server.name}: POST /v2/images returned no id: ${short(created.body)}`);
  const fileUrl = `${server.imageUrl}/v2/images/${id}/file`;
  try {
    let host0 = hostCpu();
    const upload = await curlTransfer({ method: 'PUT', url: fileUrl, token, upload: expected.file, output: opts.responseFile, timeoutS: opts.timeoutS, serverPids: server.pids(), sampleMs: opts.sampleMs });
    const host_busy_upload_pct = busyPercent(host0, hostCpu());
    if (upload.status !== 204 || upload.curl_error) {
      throw new UnexpectedAnswer(`${server.name}: PUT ${fileUrl} (${expected.bytes} bytes) answered HTTP ${upload.status} after ${upload.seconds} s${upload.curl_error ? ` (${upload.curl_error})` : ''}: ${short(upload.body)}`);
    }
    const shown = await httpRequest(`${server.imageUrl}/v2/images/${id}`, { headers, timeoutMs: 30000 });
    const image = shown.status === 200 ? (JSON.parse(shown.body) as { status?: string; size?: number; checksum?: string }) : null;
    if (!image || image.status !== 'active' || image.size !== expected.bytes || image.checksum !== expected.md5) {
      throw new UnexpectedAnswer(`${server.name}: after the upload GET /v2/images/${id} answered HTTP ${shown.status}, expected status active, size ${expected.bytes}, checksum ${expected.md5}: ${short(shown.body)}`);
    }
    const stored_cached_bytes = cachedBytes(server.storedPath(id));
    host0 = hostCpu();
    const download = await curlTransfer({ method: 'GET', url: fileUrl, token, output: '/dev/null', timeoutS: opts.timeoutS, serverPids: server.pids(), sampleMs: opts.sampleMs });
    const host_busy_download_pct = busyPercent(host0, hostCpu());
    if (download.status !== 200 || download.bytes_down !== expected.bytes || download.curl_error) {
      throw new UnexpectedAnswer(`${server.name}: GET ${fileUrl} answered HTTP ${download.status} with ${download.bytes_down} of ${expected.bytes} bytes${download.curl_error ? ` (${download.curl_error})` : ''}`);
    }
    const t1 = now();
    const deleted = await httpRequest(`${server.imageUrl}/v2/images/${id}`, { method: 'DELETE', headers, timeoutMs: 60000 });
    const delete_s = now() - t1;
    if (deleted.status !== 204) throw new UnexpectedAnswer(`${server.name}: DELETE /v2/images/${id} answered HTTP ${deleted.status}: ${short(deleted.body)}`);
    const mib = expected.bytes / 2 ** 20;
    return {
      image_id: id,
      create_s,
      upload,
      host_busy_upload_pct,
      host_busy_download_pct,
      stored_cached_bytes,
      download,
      delete_s,
      upload_mib_s: mib / upload.seconds,
      download_mib_s: mib / download.seconds,
    };
  } catch (err) {
    // Leave nothing behind (the image and its data) when a step failed.
    await httpRequest(`${server.imageUrl}/v2/images/${id}`, { method: 'DELETE', headers, timeoutMs: 60000 }).catch(() => undefined);
    throw err;
  }
}
