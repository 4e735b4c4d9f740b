import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { ServiceRequestOptions, ServiceResponse } from '../core/auth/service-client.js';
import { createTestImage, type InjectMethod, type TestImage } from '../image/testing.js';
import { registerTestImage, type ImageRequests } from './test-image.js';

/** The real image service's API, called as its admin, in the shape `registerTestImage` calls it. */
function imageRequests(t: TestImage): ImageRequests {
  const request = async (serviceType: string, method: string, url: string, options: ServiceRequestOptions = {}): Promise<ServiceResponse<unknown>> => {
    assert.equal(serviceType, 'image');
    const reply = await t.request(method as InjectMethod, url, { user: t.admin, payload: options.body, headers: options.headers });
    return { status: reply.status, headers: new Headers(), body: reply.body };
  };
  return { request } as ImageRequests;
}

/** A small empty qcow2 image of virtual size `size` (the image service inspects what it is given). */
function qcow2(file: string, size: string): void {
  fs.rmSync(file, { force: true });
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, size]);
}

describe('registerTestImage', () => {
  let t: TestImage;
  let dir: string;
  const log = pino({ level: 'silent' });

  before(async () => {
    t = await createTestImage();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stratus-test-image-'));
  });
  after(async () => {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The public images named `name` that a default listing shows. */
  const named = async (name: string): Promise<{ id: string; status: string }[]> => {
    const res = await t.request('GET', `/v2/images?name=${encodeURIComponent(name)}`, { user: t.alpha });
    assert.equal(res.status, 200);
    return res.body.images as { id: string; status: string }[];
  };

  it('registers once per build, and sets an older build aside (renamed, hidden) instead of deleting it', async () => {
    const name = `stratus-test-${randomBytes(3).toString('hex')}`;
    const file = path.join(dir, 'guest.qcow2');
    qcow2(file, '1M');
    const first = await registerTestImage(imageRequests(t), name, file, log);
    assert.deepEqual(
      (await named(name)).map((i) => [i.id, i.status]),
      [[first, 'active']],
    );
    // The same bytes again: nothing new.
    assert.equal(await registerTestImage(imageRequests(t), name, file, log), first);
    assert.equal((await named(name)).length, 1);

    qcow2(file, '2M');
    const second = await registerTestImage(imageRequests(t), name, file, log);
    assert.notEqual(second, first);
    assert.deepEqual(
      (await named(name)).map((i) => i.id),
      [second],
    );
    // The old build is still there for the servers booted from it.
    const old = await t.request('GET', `/v2/images/${first}`, { user: t.alpha });
    assert.equal(old.status, 200);
    assert.equal(old.body.status, 'active');
    assert.equal(old.body.os_hidden, true);
    assert.match(old.body.name as string, new RegExp(`^${name} \\(superseded \\d{4}-\\d\\d-\\d\\dT`));
  });
});
