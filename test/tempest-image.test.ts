import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { Cloud } from './cloud.js';
import { baseConf, runTempest } from './tempest.js';

/**
 * Tempest's image API tests against `./stratus up`, with import on and two
 * stores (a writable file store and a read-only web store), so that the
 * multi-store tests run. `web-download` fetches from a web server that this
 * test serves on loopback. Tempest uploads random bytes as every disk format
 * it is given; this cloud checks data with qemu-img and refuses random bytes
 * called qcow2 (or vmdk, ...), so Tempest is given only the formats whose
 * data is raw bytes.
 */
let cloud: Cloud;
let workspace: string;
let web: http.Server;
let webUrl: string;

before(async () => {
  workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-tempest-image-'));
  const data = Buffer.alloc(1024 * 1024, 7);
  web = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length });
    res.end(data);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', () => resolve()));
  const port = (web.address() as AddressInfo).port;
  webUrl = `http://127.0.0.1:${port}/tempest-image.raw`;
  const configFile = path.join(workspace, 'stratus.yaml');
  fs.writeFileSync(
    configFile,
    stringify({
      image: {
        stores: { file: { type: 'file', description: 'Local files' }, web: { type: 'http', description: 'Read-only web locations' } },
        default_store: 'file',
        web_download: { allowed_schemes: ['http'], allowed_hosts: [], disallowed_hosts: [], allowed_ports: [80, port] },
      },
    }),
  );
  cloud = await Cloud.create('tempest-admin-secret');
  cloud.env.STRATUS_CONFIG = configFile;
  await cloud.start();
});
after(async () => {
  await cloud.stop();
  await new Promise<void>((resolve) => web.close(() => resolve()));
});

function tempestConf(): string {
  return `${baseConf(cloud, workspace, { services: ['glance'] })}
[image]
endpoint_type = public
http_image = ${webUrl}
container_formats = bare,ami,ari,aki,ovf,ova
disk_formats = raw,ami,ari,aki
image_caching_enabled = False
build_interval = 1
build_timeout = 120

[image-feature-enabled]
api_v2 = True
api_v1 = False
import_image = True
os_glance_reserved = True
`;
}

test('Tempest image API tests pass', async () => {
  const { passed, failed, skipped, output } = await runTempest(workspace, tempestConf(), '^tempest\\.api\\.image\\.v2\\.');
  process.stdout.write(`tempest image: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  assert.equal(failed, 0, output.slice(-8000));
  assert.ok(passed >= 70, `only ${passed} passed:\n${output.slice(-3000)}`);
});
