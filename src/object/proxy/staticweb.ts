import { bodyText, defaultErrorBody, discard, isSuccess, isTrue, quote, splitSwiftPath, swiftError } from './feature-util.js';
import { subrequest, type Handler, type Middleware, type ProxyContext, type SwiftRequest, type SwiftResponse } from './pipeline.js';
import { containerInfo } from './resource-info.js';
import { listingPage, listingsDisabledPage, type ListingItem } from './staticweb-listing.js';
import type { TempUrlGrant } from './tempurl.js';

/**
 * Swift's `staticweb`: a container serves as a web site for anonymous
 * readers (or anyone sending `X-Web-Mode: true`): `X-Container-Meta-Web-Index`
 * names the index page of every pseudo-directory, `-Web-Error` the suffix of
 * error pages (`404error.html`), `-Web-Listings: true` turns on HTML
 * listings (styled by `-Web-Listings-CSS`, titled by `-Web-Listings-Label`),
 * and 0-byte objects of type `-Web-Directory-Type` (default
 * `application/directory`) stand for directories.
 */

const isRedirect = (status: number): boolean => status >= 300 && status < 400;

/** The web settings of a container, from its metadata. */
interface WebSettings {
  index: string;
  error: string;
  listings: string;
  label: string;
  css: string;
  dirType: string;
}

class StaticWebRequest {
  private web: WebSettings = { index: '', error: '', listings: '', label: '', css: '', dirType: '' };
  private readAcl = '';
  /** True when the request went on unchanged (the container's own GET/HEAD). */
  passedThrough = false;

  constructor(
    private readonly next: Handler,
    private readonly ctx: ProxyContext,
    private readonly req: SwiftRequest,
    private readonly version: string,
    private readonly account: string,
    private readonly container: string,
    private readonly object: string,
  ) {}

  private get containerPath(): string {
    return `/${this.version}/${this.account}/${this.container}`;
  }

  private async loadSettings(): Promise<void> {
    const info = await containerInfo(this.ctx, this.req, this.account, this.container);
    if (!isSuccess(info.status)) return;
    const meta = (name: string): string => (info.meta[name] ?? '').trim();
    this.web = { index: meta('web-index'), error: meta('web-error'), listings: meta('web-listings'), label: meta('web-listings-label'), css: meta('web-listings-css'), dirType: meta('web-directory-type') };
    this.readAcl = info.readAcl ?? '';
  }

  /** The request again on another path: same method and headers (a Range still applies to an index page). */
  private again(path: string): Promise<SwiftResponse> {
    return this.next({ ...this.req, path, headers: { ...this.req.headers }, body: null, env: { ...this.req.env, source: 'SW' } });
  }

  private get(path: string, query = ''): Promise<SwiftResponse> {
    return this.next(subrequest(this.req, 'GET', path, { query, source: 'SW' }));
  }

  /** Serves `<status><web-error>` with the error's status when the container has one, else `resp`. */
  private async errorResponse(resp: SwiftResponse): Promise<SwiftResponse> {
    if (!this.web.error) return resp;
    const page = await this.get(`${this.containerPath}/${resp.status}${this.web.error}`);
    if (isSuccess(page.status)) {
      discard(resp.body);
      return { status: resp.status, headers: page.headers, body: page.body };
    }
    discard(page.body);
    return resp;
  }

  private redirectWithSlash(): SwiftResponse {
    return swiftError(301, this.req.method, defaultErrorBody(301), { location: quote(`${this.req.path}/`) });
  }

  private async listing(prefix = ''): Promise<SwiftResponse> {
    const path = this.req.path;
    const label = this.web.label ? `${this.web.label}/${path.split('/').slice(4).join('/')}` : path;
    if (!isTrue(this.web.listings)) {
      const body = listingsDisabledPage(label, this.web.css, prefix, this.web.index);
      return this.errorResponse({ status: 404, headers: { 'content-type': 'text/html; charset=UTF-8' }, body });
    }
    let query = 'format=json&delimiter=/';
    if (prefix) query += `&prefix=${quote(prefix, '')}`;
    const resp = await this.get(this.containerPath, query);
    if (!isSuccess(resp.status)) return this.errorResponse(resp);
    const text = await bodyText(resp.body);
    const items = text ? (JSON.parse(text) as ListingItem[]) : [];
    if (prefix && items.length === 0) return this.errorResponse(swiftError(404, 'GET'));

    let linkQuery = '';
    let grantPrefix = '';
    const grant = this.req.env.tempurl as TempUrlGrant | undefined;
    if (grant && grant.prefix !== null) {
      grantPrefix = grant.prefix;
      const parts = [`temp_url_prefix=${quote(grant.prefix, '')}`, `temp_url_expires=${quote(grant.expires, '')}`, `temp_url_sig=${quote(grant.sig, '')}`];
      if (grant.ipRange) parts.push(`temp_url_ip_range=${quote(grant.ipRange, '')}`);
      if (grant.inline) parts.push('inline');
      linkQuery = `?${parts.join('&amp;')}`;
    }
    const body = listingPage(label, this.web.css, prefix, items, prefix.length > grantPrefix.length, linkQuery);
    return { status: 200, headers: { 'content-type': 'text/html; charset=UTF-8', 'x-backend-content-generator': 'staticweb' }, body };
  }

  /** `/v1/a/c` or `/v1/a/c/`: the index page, a listing, or the container itself. */
  async handleContainer(): Promise<SwiftResponse> {
    await this.loadSettings();
    const authorize = this.req.env.authorize;
    const denied = authorize ? await authorize(this.req, { read: this.readAcl }) : null;
    if (denied) return this.errorResponse(denied);
    if (!this.web.listings && !this.web.index) {
      if (isTrue(this.req.headers['x-web-mode'])) return swiftError(404, this.req.method);
      this.passedThrough = true;
      return this.next(this.req);
    }
    if (!this.req.path.endsWith('/')) return this.redirectWithSlash();
    if (!this.web.index) return this.listing();
    const resp = await this.again(this.req.path + this.web.index);
    if (resp.status === 404) {
      discard(resp.body);
      return this.listing();
    }
    if (!isSuccess(resp.status) && !isRedirect(resp.status)) return this.errorResponse(resp);
    return resp;
  }

  /** `/v1/a/c/path`: the object, else the index page or listing of a pseudo-directory of that name. */
  async handleObject(): Promise<SwiftResponse> {
    const resp = await this.again(this.req.path);
    let status = resp.status;
    await this.loadSettings();
    if (isSuccess(status) || isRedirect(status)) {
      const dirType = this.web.dirType || 'application/directory';
      const length = Number(resp.headers['content-length'] ?? '0') || 0;
      // A directory marker is no page of its own.
      if (resp.headers['content-type'] === dirType && length <= 1) status = 404;
      else return resp;
    }
    if (status !== 404) return resp; // custom error pages are for 404 (and 401) only
    if (!this.web.listings && !this.web.index) return resp;
    discard(resp.body);

    let indexStatus = 404;
    if (this.web.index) {
      const base = this.req.path.endsWith('/') ? this.req.path : `${this.req.path}/`;
      const index = await this.again(base + this.web.index);
      indexStatus = index.status;
      if (isSuccess(index.status) || isRedirect(index.status)) {
        if (!this.req.path.endsWith('/')) {
          discard(index.body);
          return this.redirectWithSlash();
        }
        return index;
      }
      if (index.status !== 404) return index;
      discard(index.body);
    }
    if (indexStatus === 404 && !this.req.path.endsWith('/')) {
      // A pseudo-directory without the slash: redirect if it has anything in it.
      const probe = await this.get(this.containerPath, `format=json&limit=1&delimiter=/&prefix=${quote(`${this.object}/`, '')}`);
      const text = isSuccess(probe.status) ? await bodyText(probe.body) : (discard(probe.body), '');
      const items = text ? (JSON.parse(text) as unknown[]) : [];
      if (items.length === 0) return this.errorResponse(swiftError(404, 'GET'));
      return this.redirectWithSlash();
    }
    return this.listing(this.object);
  }
}

/** Swift's `staticweb` middleware. */
export const staticweb: Middleware = {
  name: 'staticweb',
  wrap(next, ctx) {
    ctx.registerInfo('staticweb', {});
    return async (req) => {
      // Staticweb works with what auth decided; without auth there is nothing to decide with.
      if (!req.env.authorize) return next(req);
      if (req.method !== 'GET' && req.method !== 'HEAD') return next(req);
      const parts = splitSwiftPath(req.path);
      if (!parts || parts.container === undefined) return next(req);
      if (req.env.identity && !req.env.tempurl && !isTrue(req.headers['x-web-mode'])) return next(req);
      const web = new StaticWebRequest(next, ctx, req, parts.version, parts.account, parts.container, parts.object ?? '');
      if (parts.object) return web.handleObject();
      const resp = await web.handleContainer();
      // What staticweb serves for a container (an index page, a listing) is not a listing to reformat.
      if (!web.passedThrough) req.env.formatListing = false;
      return resp;
    };
  },
};
