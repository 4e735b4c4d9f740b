import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accountToXml, bestMatch, containerToXml, listingToText } from './listing-formats.js';

describe('listing formats', () => {
  it('picks the content type as swob Accept.best_match', () => {
    const offers = ['text/plain', 'application/json', 'application/xml', 'text/xml'];
    assert.equal(bestMatch(undefined, offers), 'text/plain');
    assert.equal(bestMatch('application/json', offers), 'application/json');
    assert.equal(bestMatch('*/*', offers), 'text/plain');
    assert.equal(bestMatch('application/*;q=0.5, text/xml', offers), 'text/xml');
    assert.equal(bestMatch('image/png', offers), null);
    assert.throws(() => bestMatch('bogus', offers));
  });

  it('writes container and account XML as Swift', () => {
    assert.equal(containerToXml([], 'c'), '<?xml version="1.0" encoding="UTF-8"?>\n<container name="c" />');
    assert.equal(
      containerToXml([{ name: 'a&b', hash: 'h', bytes: 3, content_type: 'text/plain', last_modified: '2024-01-01T00:00:00.000000' }, { subdir: 'd/' }], 'c"1'),
      '<?xml version="1.0" encoding="UTF-8"?>\n<container name="c&quot;1"><object><name>a&amp;b</name><hash>h</hash><bytes>3</bytes><content_type>text/plain</content_type><last_modified>2024-01-01T00:00:00.000000</last_modified></object><subdir name="d/"><name>d/</name></subdir></container>',
    );
    assert.equal(
      accountToXml([{ name: 'c', count: 1, bytes: 2, last_modified: 'x' }, { subdir: 'p/' }], 'AUTH_a'),
      '<?xml version="1.0" encoding="UTF-8"?>\n<account name="AUTH_a">\n<container><name>c</name><count>1</count><bytes>2</bytes><last_modified>x</last_modified></container>\n<subdir name="p/" />\n</account>',
    );
    assert.equal(listingToText([{ name: 'a' }, { subdir: 'b/' }]), 'a\nb/\n');
  });
});
