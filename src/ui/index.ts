/**
 * The web dashboard at /ui, served by the API process itself (no separate server; see ./client.ts):
 * a server-rendered page (hono/jsx), one stylesheet and one script. The page and its assets need no
 * token (the login screen must load); all data comes from the /xcron/* JSON API, called by the
 * browser with `Authorization: Bearer <token>` when auth is on. /ui/api/next-fires is a pure schedule
 * calculation (no task data) for the "next fire times" lists: it costs main-thread time, so it needs
 * the read role when auth is on and is rate limited per client (both mounted by createApp).
 */
import { createHash } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { defineOperation, reply } from '../api/contract/registry.js';
import { NextFiresData } from '../api/contract/schemas.js';
import type { ApiDeps } from '../api/deps.js';
import { fail } from '../api/envelope.js';
import { Codes, XcronError } from '../errors.js';
import { describeSchedule } from '../task/index.js';
import { CLIENT_JS } from './client.js';
import { nextFires, parsePreviewQuery } from './preview.js';
import { renderShell } from './shell.js';
import { STYLE_CSS } from './style.js';

export type UiDeps = Pick<ApiDeps, 'version' | 'clock' | 'limits'>;

/** Paths the dashboard serves (GET and HEAD only). */
export const UI_PATHS = ['/ui', '/ui/', '/ui/app.js', '/ui/app.css', '/ui/api/next-fires'] as const;

/** Same-origin only: no inline script, no inline style markup (styles set from script are fine). */
export const UI_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const msQ = (what: string) => z.int().min(0).optional().meta({ description: `${what}, ms epoch.` });

/** The dashboard's schedule preview: public API (read role), used by the create form and task page. */
export const nextFiresOp = defineOperation({
  method: 'get',
  path: '/ui/api/next-fires',
  operationId: 'nextFires',
  tag: 'dashboard',
  summary: 'Preview the next fire times of a schedule',
  description: 'A pure calculation over a schedule (no task data). Limited per client (10 per second, burst 20) on top of the configured rate limit.',
  access: 'read',
  query: z.object({
    type: z.enum(['1', '2']).optional().meta({ description: '1 periodic (default), 2 one-shot.' }),
    format: z.string().max(256).meta({ description: 'The cron expression or one-shot timestamp.' }),
    timezone: z.string().optional().meta({ description: 'IANA timezone (default: the server default).' }),
    count: z.int().min(1).max(20).optional().meta({ description: 'How many fire times (default 5).' }),
    from: msQ("A known fire time of the schedule to start from"),
    start: msQ('Window start'),
    end: msQ('Window end'),
  }),
  data: NextFiresData,
  errors: [Codes.BAD_JSON, Codes.UNSUPPORTED_TYPE, Codes.CRON_INVALID, Codes.ONESHOT_FORMAT, Codes.ONESHOT_TIME, Codes.TIMEZONE, Codes.INVALID_OPTION],
});

/** A file the dashboard (or the API reference page) serves, with its ETag. */
export interface Asset {
  body: string;
  type: string;
  etag: string;
}

const tag = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);
const asset = (body: string, type: string): Asset => ({ body, type, etag: `"${tag(body)}"` });

function securityHeaders(c: Context): void {
  c.header('Content-Security-Policy', UI_CSP);
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('X-Frame-Options', 'DENY');
  c.header('Referrer-Policy', 'no-referrer');
}

/** Serves an asset under the dashboard's security headers, answering 304 to a matching If-None-Match. */
export function serveAsset(c: Context, a: Asset): Response {
  securityHeaders(c);
  c.header('Cache-Control', 'no-cache');
  c.header('ETag', a.etag);
  const inm = c.req.header('if-none-match');
  if (inm !== undefined && inm.split(',').some((t) => t.trim() === a.etag)) return c.body(null, 304);
  c.header('Content-Type', a.type);
  return c.body(a.body, 200);
}

/** Mounts the dashboard on `app`; call before the API's catch-all route. */
export function uiRoutes(app: Hono, deps: UiDeps): void {
  const js = asset(CLIENT_JS, 'text/javascript; charset=utf-8');
  const css = asset(STYLE_CSS, 'text/css; charset=utf-8');
  let page: Asset | null = null;
  const renderPage = async (): Promise<Asset> => {
    if (page) return page;
    const html = await renderShell({ version: deps.version, defaultTimezone: deps.limits.defaultTimezone, jsTag: js.etag.slice(1, 9), cssTag: css.etag.slice(1, 9) });
    page = asset(html, 'text/html; charset=utf-8');
    return page;
  };

  app.get('/ui', async (c) => serveAsset(c, await renderPage()));
  app.get('/ui/', async (c) => serveAsset(c, await renderPage()));
  app.get('/ui/app.js', (c) => serveAsset(c, js));
  app.get('/ui/app.css', (c) => serveAsset(c, css));
  app.get(nextFiresOp.path, (c) => {
    const q = parsePreviewQuery((name) => c.req.query(name), deps.limits.defaultTimezone);
    c.header('Cache-Control', 'no-store');
    const { times, truncated } = nextFires(q, deps.clock.now());
    return reply(c, nextFiresOp, { times, timezone: q.timezone, description: describeSchedule(q.type, q.format, q.timezone), ...(truncated ? { truncated: true as const } : {}) });
  });

  // Anything else under /ui: 405 (with Allow) on a known path, 404 otherwise, in the API envelope.
  const rest = (c: Context): Response => {
    const path = c.req.path;
    if ((UI_PATHS as readonly string[]).includes(path)) {
      return fail(c, new XcronError(Codes.METHOD_NOT_ALLOWED, 405, `method ${c.req.method} is not allowed on ${path}; use GET, HEAD`), { Allow: 'GET, HEAD' });
    }
    return fail(c, new XcronError(Codes.ROUTE_NOT_FOUND, 404, `no such dashboard path: ${c.req.method} ${path} (the dashboard is at /ui)`));
  };
  app.all('/ui', rest);
  app.all('/ui/*', rest);
}
