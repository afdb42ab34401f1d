/**
 * The HTTP API (Hono). `createApp(deps)` builds the app and never listens; tests drive it with
 * `app.request()`. One onError maps every error to the envelope.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import { destinationsOf } from '../delivery/ssrf.js';
import { Codes, RequestAbortedError, StoreUnavailableError, XcronError } from '../errors.js';
import { TaskService } from '../service/index.js';
import { uiRoutes } from '../ui/index.js';
import { authMiddleware, principalOf } from './auth.js';
import { defineOperation, reply } from './contract/registry.js';
import { ClusterData, HealthData, ReadyData } from './contract/schemas.js';
import { batchRoutes } from './batch.js';
import { refuseCrossSite } from './cross-site.js';
import type { ApiDeps } from './deps.js';
import { DOCS_PATHS, docsRoutes } from './docs.js';
import { fail, requestUuid } from './envelope.js';
import { manageRoutes } from './manage.js';
import { opsRoutes } from './ops.js';
import { executorRoutes } from './executors.js';
import { CpuSampler } from './cpu-sample.js';
import { clientIp, rateLimit } from './ratelimit.js';
import { bodyReadError, readJson } from './request.js';
import { runRoutes } from './runs.js';
import { taskRoutes } from './tasks.js';

export type { ApiDeps, ApiLimits, ApiMetrics, Notifier, RunsDeps } from './deps.js';

/** Per-client limit of GET /ui/api/next-fires (requests per second, burst). */
export const PREVIEW_RATE_LIMIT = { perSec: 10, burst: 20 } as const;

/** Requests logged at debug instead of info (probes and scrapes). */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics', ...DOCS_PATHS]);

/** Route table of the API: path → allowed methods (for 405 with an Allow header). The public reference paths are ./docs.ts's. */
export const ROUTES: Record<string, string[]> = {
  '/xcron/createTask': ['POST'],
  '/xcron/createTasks': ['POST'],
  '/xcron/deleteTask': ['POST'],
  '/xcron/queryTask': ['GET'],
  '/xcron/updateTask': ['POST'],
  '/xcron/pauseTask': ['POST'],
  '/xcron/resumeTask': ['POST'],
  '/xcron/triggerTask': ['POST'],
  '/xcron/listTasks': ['GET'],
  '/xcron/taskRuns': ['GET'],
  '/xcron/stats': ['GET'],
  '/xcron/reportRun': ['POST'],
  '/xcron/appendRunLog': ['POST'],
  '/xcron/runLog': ['GET'],
  '/xcron/cluster': ['GET'],
  '/xcron/runs': ['GET'],
  '/xcron/retryRun': ['POST'],
  '/xcron/retryRuns': ['POST'],
  '/xcron/pauseTasks': ['POST'],
  '/xcron/resumeTasks': ['POST'],
  '/xcron/deleteTasks': ['POST'],
  '/xcron/report': ['GET'],
  '/xcron/registerExecutor': ['POST'],
  '/xcron/unregisterExecutor': ['POST'],
  '/xcron/executors': ['GET'],
  '/healthz': ['GET'],
  '/readyz': ['GET'],
  '/metrics': ['GET'],
};

export const healthzOp = defineOperation({
  method: 'get', path: '/healthz', operationId: 'healthz', tag: 'operations', summary: 'Liveness', access: 'public', data: HealthData, rateLimited: false,
});
export const readyzOp = defineOperation({
  method: 'get', path: '/readyz', operationId: 'readyz', tag: 'operations', summary: 'Readiness',
  description: 'Ready when the store is reachable and the node is a cluster member (owns its slots); else 503 with code 1016 and the reason.',
  access: 'public', data: ReadyData, errors: [Codes.STORE_UNAVAILABLE], rateLimited: false,
});
export const clusterOp = defineOperation({
  method: 'get', path: '/xcron/cluster', operationId: 'cluster', tag: 'operations', summary: 'Cluster membership and slot ownership', access: 'read', data: ClusterData, store: 'read',
});
export const metricsOp = defineOperation({
  method: 'get', path: '/metrics', operationId: 'metrics', tag: 'operations', summary: 'Prometheus metrics',
  access: 'metrics', raw: { type: 'text/plain', description: 'Prometheus text exposition format.' }, errors: [Codes.ROUTE_NOT_FOUND], rateLimited: false,
});

export function createApp(deps: ApiDeps): Hono {
  const app = new Hono();

  // Access log: one line per request (info for the API, debug for probes, scrapes and the UI's
  // assets). Method, path (no query), status, duration, request id, principal, client address:
  // never bodies, never the Authorization header.
  const cpuSampler = new CpuSampler();
  app.use('*', async (c, next) => {
    const req_id = requestUuid(c);
    const t0 = performance.now();
    const cpu0 = cpuSampler.start();
    let cpuSeconds: number | undefined;
    try {
      await next();
    } finally {
      cpuSeconds = cpuSampler.end(cpu0);
    }
    const path = c.req.path;
    const ms = performance.now() - t0;
    const status = c.res.status;
    const route = ROUTES[path] || DOCS_PATHS.has(path) ? path : path === '/ui/api/next-fires' ? path : path === '/ui' || path.startsWith('/ui/') ? '/ui' : 'other';
    deps.metrics?.observeRequest(route, c.req.method, status, ms / 1000, cpuSeconds);
    const quiet = QUIET_PATHS.has(path) || route === '/ui';
    if (quiet && !deps.log.isLevelEnabled('debug')) return;
    const line: Record<string, unknown> = { method: c.req.method, path: path.slice(0, 200), status, ms: Math.round(ms * 10) / 10, req_id, ip: clientIp(c) };
    const given = c.res.headers.get('x-request-id');
    if (given !== null && given !== req_id) line.client_req_id = given;
    const who = principalOf(c);
    if (who) line.principal = who.id;
    if (quiet) deps.log.debug(line, 'request');
    else deps.log.info(line, 'request');
  });

  // Rate limit before auth, so guessing tokens is limited per client address too.
  const auth = deps.auth;
  const keyOf = (c: Context): string => {
    const who = auth?.enabled ? auth.identify(c.req.header('authorization')) : null;
    return who ? `token:${who.id}` : `ip:${clientIp(c)}`;
  };
  if (deps.rateLimit && deps.rateLimit.perSec > 0) {
    const limit = rateLimit({ perSec: deps.rateLimit.perSec, burst: deps.rateLimit.burst, clock: deps.clock, keyOf });
    app.use('/xcron/*', limit);
    app.use('/ui/api/*', limit);
  }
  // Pages of other sites may not change anything here (src/api/cross-site.ts).
  app.use('/xcron/*', refuseCrossSite);
  // The dashboard's schedule preview computes on the main thread: always limited per client, on top
  // of the configured limit.
  app.use('/ui/api/*', rateLimit({ ...PREVIEW_RATE_LIMIT, clock: deps.clock, keyOf }));
  if (deps.auth?.enabled) {
    const mw = authMiddleware({ auth: deps.auth, publicMetrics: deps.publicMetrics ?? false });
    app.use('/xcron/*', mw);
    app.use('/metrics', mw);
    app.use('/ui/api/*', mw);
  }

  // Request body limit: a declared Content-Length is checked up front (cheap); a body without one
  // (chunked) is counted while it streams in.
  const streamLimit = bodyLimit({
    maxSize: deps.limits.requestBodyLimit,
    onError: () => {
      throw new XcronError(Codes.TOO_LARGE, 413, `request body is over the limit of ${deps.limits.requestBodyLimit} bytes`);
    },
  });
  app.use('/xcron/*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const len = c.req.header('content-length');
    if (len !== undefined && /^\d+$/.test(len)) {
      if (Number(len) > deps.limits.requestBodyLimit) {
        throw new XcronError(Codes.TOO_LARGE, 413, `request body is over the limit of ${deps.limits.requestBodyLimit} bytes (Content-Length: ${len})`);
      }
      return next();
    }
    try {
      return await streamLimit(c, next);
    } catch (e) {
      throw bodyReadError(c, e); // a chunked body cut off by the client is not a fault
    }
  });

  app.get(healthzOp.path, (c) => reply(c, healthzOp, { status: 'ok', version: deps.version }));
  app.get(readyzOp.path, async (c) => {
    const storeOk = await deps.store.ping().catch(() => false);
    const extra = deps.isReady ? await deps.isReady().catch(() => false) : true;
    const member = deps.ownership.isMember();
    if (storeOk && extra && member) return reply(c, readyzOp, { ready: true, store: true, member });
    const why = !storeOk ? 'store unreachable' : !member ? 'not a member (no slot ownership; fenced or still joining)' : 'not ready';
    return fail(c, new XcronError(Codes.STORE_UNAVAILABLE, 503, `not ready: ${why}`));
  });

  app.get(clusterOp.path, async (c) => reply(c, clusterOp, await deps.ownership.describe()));

  const m = deps.metrics;
  app.get(metricsOp.path, async (c) => {
    if (!m) return fail(c, new XcronError(Codes.ROUTE_NOT_FOUND, 404, 'metrics are not enabled in this app'));
    return c.body(await m.render(), 200, { 'Content-Type': m.contentType });
  });

  // SSRF guard, create-time half: a callback URL whose destination the policy refuses gets 1011.
  // (The connect-time check in delivery is the guarantee; this one answers the client early.)
  if (deps.destinations) {
    const guard = deps.destinations;
    const checkDestinations = async (c: Context, next: () => Promise<void>): Promise<Response | void> => {
      const ct = c.req.header('content-type');
      if (ct === undefined || ct === '' || /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(ct)) {
        let body: unknown = undefined;
        try {
          body = await readJson(c);
        } catch {
          // not JSON: the route reports it
        }
        for (const { field, url } of destinationsOf(body)) {
          const why = await guard.urlRefusal(url);
          if (why !== null) return fail(c, new XcronError(Codes.SSRF_REFUSED, 400, `'${field}' is refused by the callback destination policy: ${why}`));
        }
      }
      await next();
    };
    app.post('/xcron/createTask', checkDestinations);
    app.post('/xcron/updateTask', checkDestinations);
  }

  const service =
    deps.service ??
    new TaskService({ store: deps.store, notifier: deps.notifier, clock: deps.clock, slots: deps.slots, limits: deps.limits, nodeId: deps.nodeId, newId: deps.newId });
  taskRoutes(app, { ...deps, service });
  batchRoutes(app, { ...deps, service });
  manageRoutes(app, { ...deps, service });
  opsRoutes(app, { ...deps, service });
  executorRoutes(app, deps);
  if (deps.runs) runRoutes(app, { ...deps, runs: deps.runs });
  docsRoutes(app, deps); // /openapi.json and the API reference page /docs
  uiRoutes(app, deps); // the web dashboard at /ui (page and assets need no token; its data calls do)

  // Wrong method on a known path: 405 with Allow. Unknown path: 404. Both in the envelope.
  app.all('*', (c) => {
    const allowed = ROUTES[c.req.path];
    if (allowed) {
      return fail(c, new XcronError(Codes.METHOD_NOT_ALLOWED, 405, `method ${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(', ')}`), { Allow: allowed.join(', ') });
    }
    return fail(c, new XcronError(Codes.ROUTE_NOT_FOUND, 404, `no such endpoint: ${c.req.method} ${c.req.path}`));
  });

  app.onError((err, c) => errorResponse(c, err, deps.log));
  return app;
}

export function errorResponse(c: Context, err: unknown, log: Logger): Response {
  if (err instanceof XcronError) return fail(c, err);
  if (err instanceof RequestAbortedError) {
    // The client went away mid-body: its doing, not ours (no error log, not a 500). The answer
    // goes nowhere; the access log and the metrics count it as a 400.
    log.debug({ path: c.req.path, reason: err.message }, 'request body cut off by the client');
    return fail(c, new XcronError(Codes.BAD_JSON, 400, 'request body is incomplete: the client closed the connection before it arrived'));
  }
  if (err instanceof StoreUnavailableError) {
    const write = c.req.method === 'POST';
    return fail(c, new XcronError(write ? Codes.STORE_WRITE : Codes.STORE_UNAVAILABLE, 503, `store unavailable, retry later: ${err.message}`));
  }
  log.error({ err, path: c.req.path }, 'unhandled error in request');
  return fail(c, new XcronError(Codes.INTERNAL, 500, 'internal error; see the server log for this request uuid'));
}
