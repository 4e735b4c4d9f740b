import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createObjectTestCloud, type ObjectTestCloud } from '../testing.js';

describe('container_quotas and account_quotas', () => {
  let cloud: ObjectTestCloud;
  let a: string;

  before(async () => {
    cloud = await createObjectTestCloud();
    a = cloud.account(cloud.alpha);
  });
  after(async () => cloud?.close());

  describe('container quotas', () => {
    it('refuses quota values that are not numbers', async () => {
      const bytes = await cloud.request('PUT', `${a}/q-bad`, { headers: { 'x-container-meta-quota-bytes': 'ten' } });
      assert.equal(bytes.status, 400);
      assert.equal(bytes.text, 'Invalid bytes quota.');
      assert.equal((await cloud.request('HEAD', `${a}/q-bad`)).status, 404);
      await cloud.request('PUT', `${a}/q-bad`);
      const count = await cloud.request('POST', `${a}/q-bad`, { headers: { 'x-container-meta-quota-count': '-1' } });
      assert.equal(count.status, 400);
      assert.equal(count.text, 'Invalid count quota.');
    });

    it('refuses a PUT over the bytes quota with 413 and stores nothing', async () => {
      await cloud.request('PUT', `${a}/q-bytes`, { headers: { 'x-container-meta-quota-bytes': '10' } });
      assert.equal((await cloud.request('PUT', `${a}/q-bytes/ok`, { body: '0123456789' })).status, 201);
      const over = await cloud.request('PUT', `${a}/q-bytes/over`, { body: 'x' });
      assert.equal(over.status, 413);
      assert.equal(over.text, 'Upload exceeds quota.');
      assert.equal((await cloud.request('HEAD', `${a}/q-bytes/over`)).status, 404);
      const head = await cloud.request('HEAD', `${a}/q-bytes`);
      assert.equal(head.headers['x-container-bytes-used'], '10');
    });

    it('refuses the object after the count quota with 413', async () => {
      await cloud.request('PUT', `${a}/q-count`, { headers: { 'x-container-meta-quota-count': '2' } });
      assert.equal((await cloud.request('PUT', `${a}/q-count/1`, { body: '' })).status, 201);
      assert.equal((await cloud.request('PUT', `${a}/q-count/2`, { body: '' })).status, 201);
      assert.equal((await cloud.request('HEAD', `${a}/q-count`)).headers['x-container-object-count'], '2');
      assert.equal((await cloud.request('PUT', `${a}/q-count/3`, { body: '' })).status, 413);
    });

    it('answers a caller who may not write the container as auth would, not with the quota', async () => {
      await cloud.request('PUT', `${a}/q-private`, { headers: { 'x-container-meta-quota-count': '0' } });
      assert.equal((await cloud.request('PUT', `${a}/q-private/o`, { user: cloud.beta, body: 'x' })).status, 403);
      assert.equal((await cloud.request('PUT', `${a}/q-private/o`, { user: null, body: 'x' })).status, 401);
      assert.equal((await cloud.request('PUT', `${a}/q-private/o`, { body: 'x' })).status, 413);
    });
  });

  describe('account quotas', () => {
    // Beta's account, untouched by the container tests above.
    let b: string;
    before(() => {
      b = cloud.account(cloud.beta);
    });
    /** Object changes reach the account lazily: send them now, then wait until its HEAD shows `bytes`. */
    const usage = async (bytes: string): Promise<void> => {
      await cloud.cluster.flushAccountReports();
      for (let i = 0; i < 100 && (await cloud.request('HEAD', b, { user: cloud.beta })).headers['x-account-bytes-used'] !== bytes; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await cloud.request('HEAD', b, { user: cloud.beta })).headers['x-account-bytes-used'], bytes);
    };

    it('lets only a reseller admin set the quota (403 for the account owner)', async () => {
      const owner = await cloud.request('POST', b, { user: cloud.beta, headers: { 'x-account-meta-quota-bytes': '100' } });
      assert.equal(owner.status, 403);
      const owner2 = await cloud.request('POST', b, { user: cloud.beta, headers: { 'x-account-quota-bytes': '100' } });
      assert.equal(owner2.status, 403);
      const badValue = await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-account-meta-quota-bytes': 'lots' } });
      assert.equal(badValue.status, 400);
      const reseller = await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-account-meta-quota-bytes': '20' } });
      assert.equal(reseller.status, 204);
      const head = await cloud.request('HEAD', b, { user: cloud.beta });
      assert.equal(head.headers['x-account-quota-bytes'], '20');
      assert.equal(head.headers['x-account-sysmeta-quota-bytes'], undefined);
    });

    it('refuses uploads over the account quota with 413 (resellers excepted)', async () => {
      await cloud.request('PUT', `${b}/aq`, { user: cloud.beta });
      assert.equal((await cloud.request('PUT', `${b}/aq/small`, { user: cloud.beta, body: 'x'.repeat(15) })).status, 201);
      await usage('15');
      const over = await cloud.request('PUT', `${b}/aq/big`, { user: cloud.beta, body: 'x'.repeat(10) });
      assert.equal(over.status, 413);
      assert.equal(over.text, 'Upload exceeds quota.');
      assert.equal((await cloud.request('HEAD', `${b}/aq/big`, { user: cloud.beta })).status, 404);
      // A temp URL upload is held to the quota too.
      await cloud.request('POST', b, { user: cloud.beta, headers: { 'x-account-meta-temp-url-key': 'k' } });
      const expires = Math.floor(Date.now() / 1000) + 60;
      const sig = createHmac('sha256', 'k').update(`PUT\n${expires}\n${b}/aq/tu`).digest('hex');
      const viaTempurl = await cloud.request('PUT', `${b}/aq/tu`, { user: null, body: 'x'.repeat(10), query: `temp_url_sig=${sig}&temp_url_expires=${expires}` });
      assert.equal(viaTempurl.status, 413);
      assert.equal((await cloud.request('PUT', `${b}/aq/reseller`, { user: cloud.reseller, body: 'x'.repeat(10) })).status, 201);
      await usage('25');
      assert.equal((await cloud.request('PUT', `${b}/aq/tiny`, { user: cloud.beta, body: 'x'.repeat(5) })).status, 413);
    });

    it('is removed by the reseller with an empty value or X-Remove', async () => {
      assert.equal((await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-remove-account-meta-quota-bytes': 'x' } })).status, 204);
      assert.equal((await cloud.request('HEAD', b, { user: cloud.beta })).headers['x-account-quota-bytes'], undefined);
      assert.equal((await cloud.request('PUT', `${b}/aq/free`, { user: cloud.beta, body: 'x'.repeat(50) })).status, 201);
      assert.equal((await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-account-quota-count': '1' } })).status, 204);
      assert.equal((await cloud.request('PUT', `${b}/aq/counted`, { user: cloud.beta, body: '' })).status, 413);
      assert.equal((await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-account-quota-count': '' } })).status, 204);
      assert.equal((await cloud.request('PUT', `${b}/aq/counted`, { user: cloud.beta, body: '' })).status, 201);
    });

    it('keeps per-policy quotas for the default policy', async () => {
      assert.equal((await cloud.request('POST', b, { user: cloud.beta, headers: { 'x-account-quota-bytes-policy-policy-0': '1' } })).status, 403);
      assert.equal((await cloud.request('POST', b, { user: cloud.reseller, headers: { 'X-Account-Quota-Bytes-Policy-Policy-0': '10' } })).status, 204);
      assert.equal((await cloud.request('HEAD', b, { user: cloud.beta })).headers['x-account-quota-bytes-policy-policy-0'], '10');
      const over = await cloud.request('PUT', `${b}/aq/policy`, { user: cloud.beta, body: 'x' });
      assert.equal(over.status, 413);
      assert.equal(over.text, 'Upload exceeds policy quota.');
      assert.equal((await cloud.request('POST', b, { user: cloud.reseller, headers: { 'x-remove-account-quota-bytes-policy-policy-0': 'x' } })).status, 204);
      assert.equal((await cloud.request('PUT', `${b}/aq/policy`, { user: cloud.beta, body: 'x' })).status, 201);
    });
  });
});
