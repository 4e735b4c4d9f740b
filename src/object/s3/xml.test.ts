import assert from 'node:assert/strict';
import { test } from 'node:test';
import { child, children, el, parseXml, toXml, XmlSyntaxError } from './xml.js';

test('xml: documents are written with the declaration, the S3 namespace and escaped text', () => {
  const doc = toXml(el('ListBucketResult', [el('Name', 'b'), el('Prefix', ''), el('Key', 'a<b>&"c\''), null, el('Size', 3)]));
  assert.equal(
    doc,
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix/><Key>a&lt;b&gt;&amp;&quot;c&apos;</Key><Size>3</Size></ListBucketResult>',
  );
  assert.equal(toXml(el('Error', [el('Code', 'X')]), { namespace: false }), '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>X</Code></Error>');
});

test('xml: reading drops namespaces and decodes entities and CDATA', () => {
  const root = parseXml(`<?xml version="1.0" encoding="UTF-8"?>
    <!-- a comment -->
    <s3:Delete xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/">
      <s3:Quiet>true</s3:Quiet>
      <Object><Key>a &amp; b &#x263A; &#65;</Key></Object>
      <Object><Key><![CDATA[<raw>]]></Key><VersionId/></Object>
    </s3:Delete>`);
  assert.equal(root.name, 'Delete');
  assert.equal(child(root, 'Quiet')?.text, 'true');
  const objects = children(root, 'Object');
  assert.equal(objects.length, 2);
  assert.equal(child(objects[0] ?? root, 'Key')?.text, 'a & b ☺ A');
  assert.equal(child(objects[1] ?? root, 'Key')?.text, '<raw>');
  assert.equal(child(objects[1] ?? root, 'VersionId')?.text, '');
  const attrs = parseXml('<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type=\'Group\'><URI>u</URI></Grantee>');
  assert.equal(attrs.attrs['xsi:type'], 'Group');
});

test('xml: malformed documents, DTDs and entity declarations are refused', () => {
  const bad = [
    '',
    '<a>',
    '<a></b>',
    '<a/><b/>',
    'text',
    '<a>&unknown;</a>',
    '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
    '<a><![CDATA[x</a>',
    '<a b=c/>',
  ];
  for (const doc of bad) assert.throws(() => parseXml(doc), XmlSyntaxError, JSON.stringify(doc));
});
