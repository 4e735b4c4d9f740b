import { quote } from './feature-util.js';

/**
 * The HTML pages staticweb writes: a container's (or pseudo-directory's)
 * listing and the page that says listings are off. The element ids and
 * classes (`#listing`, `.colname`, `.item.subdir`, `.type-text`, ...) are
 * Swift's, so that style sheets written for Swift's listings work here.
 */

/** One entry of a JSON container listing. */
export interface ListingItem {
  name?: string;
  subdir?: string;
  bytes?: number;
  content_type?: string;
  last_modified?: string;
}

/** HTML-escapes text for element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
}

function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Sizes as Swift shows them: `512`, `3Ki`, `10Mi` (binary steps, each rounded). */
export function humanReadable(bytes: number): string {
  let value = bytes;
  const suffixes = 'KMGTPEZY';
  let index = -1;
  while (value >= 1024 && index + 1 < suffixes.length) {
    index++;
    value = roundHalfEven(value / 1024);
  }
  return index === -1 ? String(Math.trunc(value)) : `${roundHalfEven(value)}${suffixes[index]}i`;
}

/** The style sheet link: absolute paths and URLs as given, others relative to the container. */
export function cssHref(css: string, prefix: string): string {
  if (css.startsWith('/') || css.startsWith('http://') || css.startsWith('https://')) return quote(css, ':/');
  return '../'.repeat((prefix.match(/\//g) ?? []).length) + quote(css);
}

const DEFAULT_STYLE = [
  '  <style type="text/css">',
  '   h1 {font-size: 1em; font-weight: bold;}',
  '   th {text-align: left; padding: 0px 1em 0px 1em;}',
  '   td {padding: 0px 1em 0px 1em;}',
  '   a {text-decoration: none;}',
  '  </style>',
].join('\n');

function head(label: string, css: string, prefix: string, style: string): string {
  const sheet = css ? `  <link rel="stylesheet" type="text/css" href="${cssHref(css, prefix)}" />` : style;
  return `<!DOCTYPE html>\n<html>\n <head>\n  <title>Listing of ${escapeHtml(label)}</title>\n${sheet}\n </head>\n`;
}

/** The page served with a 404 when listings are off (and the index, if one is set, is missing). */
export function listingsDisabledPage(label: string, css: string, prefix: string, index: string): string {
  let body = head(label, css, prefix, '  <style type="text/css">\n   h1 {font-size: 1em; font-weight: bold;}\n  </style>');
  body += ' <body>\n  <h1>Web Listing Disabled</h1>\n';
  body += '  <p>Listings of this web site are turned off. Its owner can turn them on with X-Container-Meta-Web-Listings.</p>\n';
  if (index) body += `  <h1>Index File Not Found</h1>\n  <p>X-Container-Meta-Web-Index is ${escapeHtml(index)}, and no such file is here.</p>\n`;
  return `${body} </body>\n</html>\n`;
}

/**
 * A listing page: subdirectories first, then objects (name, size, date),
 * with `../` when below the top (`showParent`). `linkQuery` (already
 * HTML-escaped, with its `?`) goes on every link: a temporary URL's grant.
 */
export function listingPage(label: string, css: string, prefix: string, items: ListingItem[], showParent: boolean, linkQuery: string): string {
  const rows: string[] = [];
  if (showParent) {
    rows.push(`   <tr id="parent" class="item">\n    <td class="colname"><a href="../${linkQuery}">../</a></td>\n    <td class="colsize">&nbsp;</td>\n    <td class="coldate">&nbsp;</td>\n   </tr>`);
  }
  const href = (name: string): string => quote(name).replace(/\./g, '%2E') + linkQuery;
  for (const item of items) {
    if (item.subdir === undefined) continue;
    const subdir = item.subdir.slice(prefix.length);
    rows.push(`   <tr class="item subdir">\n    <td class="colname"><a href="./${href(subdir)}">${escapeHtml(subdir)}</a></td>\n    <td class="colsize">&nbsp;</td>\n    <td class="coldate">&nbsp;</td>\n   </tr>`);
  }
  for (const item of items) {
    if (item.name === undefined) continue;
    const name = item.name.slice(prefix.length);
    const types = (item.content_type ?? '')
      .split('/')
      .map((t) => `type-${escapeHtml(t.toLowerCase())}`)
      .join(' ');
    const date = escapeHtml(item.last_modified ?? '').split('.')[0]?.replace('T', ' ') ?? '';
    rows.push(
      `   <tr class="item ${types}">\n    <td class="colname"><a href="./${href(name)}">${escapeHtml(name)}</a></td>\n    <td class="colsize">${humanReadable(item.bytes ?? 0)}</td>\n    <td class="coldate">${date}</td>\n   </tr>`,
    );
  }
  const table = [
    `  <h1 id="title">Listing of ${escapeHtml(label)}</h1>`,
    '  <table id="listing">',
    '   <tr id="heading">',
    '    <th class="colname">Name</th>',
    '    <th class="colsize">Size</th>',
    '    <th class="coldate">Date</th>',
    '   </tr>',
    ...rows,
    '  </table>',
  ].join('\n');
  return `${head(label, css, prefix, DEFAULT_STYLE)} <body>\n${table}\n </body>\n</html>\n`;
}
