import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cssHref, escapeHtml, humanReadable, listingPage, listingsDisabledPage } from './staticweb-listing.js';

describe('staticweb pages', () => {
  it('shows sizes in binary steps as Swift does', () => {
    assert.equal(humanReadable(0), '0');
    assert.equal(humanReadable(1023), '1023');
    assert.equal(humanReadable(1024), '1Ki');
    assert.equal(humanReadable(1536), '2Ki');
    assert.equal(humanReadable(2560), '2Ki');
    assert.equal(humanReadable(5 * 1024 * 1024), '5Mi');
  });

  it('links style sheets relative to the container unless absolute', () => {
    assert.equal(cssHref('listings.css', ''), 'listings.css');
    assert.equal(cssHref('listings.css', 'a/b/'), '../../listings.css');
    assert.equal(cssHref('/static/s.css', 'a/'), '/static/s.css');
    assert.equal(cssHref('https://cdn.example/s.css', 'a/'), 'https://cdn.example/s.css');
  });

  it('lists subdirectories then objects with escaped names and encoded links', () => {
    const page = listingPage('/v1/AUTH_a/c/dir/', 'listings.css', 'dir/', [
      { subdir: 'dir/sub/' },
      { name: 'dir/a <b>.txt', bytes: 2048, content_type: 'text/plain', last_modified: '2024-01-02T03:04:05.123456' },
    ], true, '');
    assert.ok(page.includes('<link rel="stylesheet" type="text/css" href="../listings.css" />'));
    assert.ok(page.includes('<title>Listing of /v1/AUTH_a/c/dir/</title>'));
    assert.ok(page.includes('<a href="../">../</a>'));
    assert.ok(page.includes('<a href="./sub/">sub/</a>'));
    assert.ok(page.includes('<tr class="item type-text type-plain">'));
    assert.ok(page.includes('<a href="./a%20%3Cb%3E%2Etxt">a &lt;b&gt;.txt</a>'));
    assert.ok(page.includes('<td class="colsize">2Ki</td>'));
    assert.ok(page.includes('<td class="coldate">2024-01-02 03:04:05</td>'));
    assert.ok(page.indexOf('sub/') < page.indexOf('a &lt;b&gt;.txt'));
  });

  it('says when listings are off, and escapes what it repeats', () => {
    const page = listingsDisabledPage('/v1/AUTH_a/c/', '', '', '<index>.html');
    assert.ok(page.includes('Web Listing Disabled'));
    assert.ok(page.includes(escapeHtml('<index>.html')));
    assert.ok(!page.includes('<index>'));
  });
});
