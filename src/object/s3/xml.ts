/**
 * The little XML S3 needs: writing response documents and reading the small
 * request documents (CreateBucketConfiguration, Delete,
 * CompleteMultipartUpload, AccessControlPolicy). The reader refuses DTDs
 * and entity declarations (no XXE, no entity expansion) and drops namespace
 * prefixes, as Swift's s3api does.
 */

/** The namespace S3 puts on its response documents. */
export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';

/** An element: a name, attributes, and either text or children. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** A child of {@link el}: an element, or null/undefined (left out). */
type Child = XmlElement | null | undefined | false;

/** Builds an element: `el('Key', 'a.txt')`, `el('Contents', [el('Key', k), ...])`. */
export function el(name: string, content?: string | number | boolean | Child[] | null, attrs: Record<string, string> = {}): XmlElement {
  if (Array.isArray(content)) return { name, attrs, children: content.filter((c): c is XmlElement => Boolean(c)), text: '' };
  return { name, attrs, children: [], text: content === undefined || content === null ? '' : String(content) };
}

/** Escapes text for element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

function write(node: XmlElement, out: string[]): void {
  const attrs = Object.entries(node.attrs)
    .map(([k, v]) => ` ${k}="${escapeXml(v)}"`)
    .join('');
  if (node.children.length === 0 && node.text === '') {
    out.push(`<${node.name}${attrs}/>`);
    return;
  }
  out.push(`<${node.name}${attrs}>`);
  if (node.children.length > 0) for (const child of node.children) write(child, out);
  else out.push(escapeXml(node.text));
  out.push(`</${node.name}>`);
}

/** A whole document: the XML declaration, then the root (with S3's namespace unless `namespace: false`). */
export function toXml(root: XmlElement, options: { namespace?: boolean } = {}): string {
  const top = options.namespace === false ? root : { ...root, attrs: { xmlns: S3_XMLNS, ...root.attrs } };
  const out: string[] = [DECLARATION];
  write(top, out);
  return out.join('');
}

/** The document could not be read (the caller answers MalformedXML). */
export class XmlSyntaxError extends Error {}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const named = ENTITIES[ref];
    if (named === undefined) throw new XmlSyntaxError(`unknown entity ${whole}`);
    return named;
  });
}

function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/**
 * Reads a document into its root element. Element names lose their
 * namespace prefix; text is the element's own text with entities decoded
 * (CDATA kept as is). Throws XmlSyntaxError on anything malformed.
 */
export function parseXml(input: string | Buffer): XmlElement {
  const text = typeof input === 'string' ? input : input.toString('utf8');
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (chunk) {
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(chunk);
      else if (chunk.trim() !== '') throw new XmlSyntaxError('text outside the root element');
    }
    if (lt < 0) break;
    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt);
      if (end < 0) throw new XmlSyntaxError('unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) throw new XmlSyntaxError('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt);
      const top = stack[stack.length - 1];
      if (end < 0 || !top) throw new XmlSyntaxError('misplaced CDATA');
      top.text += text.slice(lt + 9, end);
      i = end + 3;
    } else if (text.startsWith('<!', lt)) {
      throw new XmlSyntaxError('document type declarations are not accepted');
    } else if (text.startsWith('</', lt)) {
      const end = text.indexOf('>', lt);
      if (end < 0) throw new XmlSyntaxError('unterminated end tag');
      const name = localName(text.slice(lt + 2, end).trim());
      const top = stack.pop();
      if (!top || top.name !== name) throw new XmlSyntaxError(`mismatched end tag ${name}`);
      i = end + 1;
    } else {
      const match = /^<([A-Za-z_][\w.:-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(lt, lt + 65536));
      if (!match) throw new XmlSyntaxError('malformed start tag');
      const node: XmlElement = { name: localName(match[1] ?? ''), attrs: {}, children: [], text: '' };
      for (const a of (match[2] ?? '').matchAll(/([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        node.attrs[a[1] ?? ''] = decodeEntities(a[2] ?? a[3] ?? '');
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else if (root) throw new XmlSyntaxError('more than one root element');
      else root = node;
      if (match[3] !== '/') stack.push(node);
      i = lt + match[0].length;
    }
  }
  if (!root || stack.length > 0) throw new XmlSyntaxError('incomplete document');
  return root;
}

/** The first child element of that name. */
export function child(node: XmlElement, name: string): XmlElement | undefined {
  return node.children.find((c) => c.name === name);
}

/** Every child element of that name. */
export function children(node: XmlElement, name: string): XmlElement[] {
  return node.children.filter((c) => c.name === name);
}
