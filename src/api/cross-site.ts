/**
 * Browser requests from another site may not change anything. A web page can send a POST to any
 * address, this server on 127.0.0.1 included, without a CORS preflight when its body has no
 * Content-Type or a form or text one (a "simple request"); the page cannot read the answer, but the
 * request has done its work. Browsers mark every request with `Sec-Fetch-Site`: a state-changing
 * request marked `cross-site` or `same-site` (another port of the same host counts as same-site)
 * is refused with 403. The dashboard's own requests are `same-origin`; curl, SDKs and other
 * non-browser clients send no such header and are not affected.
 */
import type { MiddlewareHandler } from 'hono';
import { Codes, XcronError } from '../errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const ALLOWED_SITES = new Set(['same-origin', 'none']);

export const refuseCrossSite: MiddlewareHandler = async (c, next) => {
  if (SAFE_METHODS.has(c.req.method)) return next();
  const site = c.req.header('sec-fetch-site')?.trim().toLowerCase();
  if (site !== undefined && site !== '' && !ALLOWED_SITES.has(site)) {
    throw new XcronError(
      Codes.UNAUTHORIZED,
      403,
      `a browser request from another site may not call ${c.req.method} ${c.req.path} (Sec-Fetch-Site: ${site.slice(0, 40)}); call the API from the server side, or from the dashboard at /ui`,
    );
  }
  return next();
};
