/**
 * The HTTP API (Hono). `createApp(deps)` builds the app and never listens; tests drive it with
 * `app.request()`. One onError maps every error to the envelope.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import type { Clock } from '../clock/index.js';
import type { Ownership } from '../cluster/index.js';
import { Codes, StoreUnavailableError, XcronError } from '../errors.js';
import type { TaskStore } from '../store/types.js';
import type { Task } from '../task/index.js';
import { uiRoutes } from '../ui/index.js';
import { fail, ok, requestUuid } from './envelope.js';
import { manageRoutes } from './manage.js';
import { taskRoutes } from './tasks.js';

/** Where the API tells the scheduler (or, in a cluster, the slot owner) about changes. */
export interface Notifier {
  taskChanged(task: Task): void;
  taskRemoved(id: string, slot: number): void;
  /** A manual run was recorded in the outbox; the slot owner should deliver it now. */
  runQueued(runId: string, slot: number): void;
}

export interface ApiLimits {
  requestBodyLimit: number;
  callbackBodyLimit: number;
  defaultTimezone: string;
  pastGraceMs: number;
}

export interface ApiDeps {
  store: TaskStore;
  notifier: Notifier;
  ownership: Ownership;
  clock: Clock;
  log: Logger;
  slots: number;
  limits: ApiLimits;
  version: string;
  /** Readiness beyond the store ping (e.g. cluster membership). */
  isReady?: () => Promise<boolean>;
  newId?: () => string;
  nodeId: string;
  /** In-memory figures merged into /xcron/stats (lateness, latency, rates). */
  liveStats?: () => Record<string, unknown>;
}

/** Route table: path → allowed methods (for 405 with an Allow header). */
export const ROUTES: Record<string, string[]> = {
  '/xcron/createTask': ['POST'],
  '/xcron/deleteTask': ['POST'],
  '/xcron/queryTask': ['GET'],
  '/xcron/updateTask': ['POST'],
  '/xcron/pauseTask': ['POST'],
  '/xcron/resumeTask': ['POST'],
  '/xcron/triggerTask': ['POST'],
  '/xcron/listTasks': ['GET'],
  '/xcron/taskRuns': ['GET'],
  '/xcron/stats': ['GET'],
  '/xcron/cluster': ['GET'],
  '/healthz': ['GET'],
  '/readyz': ['GET'],
};

export function createApp(deps: ApiDeps): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    requestUuid(c);
    const t0 = performance.now();
    await next();
    if (c.req.path !== '/healthz' && c.req.path !== '/readyz') {
      deps.log.debug({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - t0) }, 'request');
    }
  });

  app.use(
    '/xcron/*',
    bodyLimit({
      maxSize: deps.limits.requestBodyLimit,
      onError: () => {
        throw new XcronError(Codes.TOO_LARGE, 413, `request body is over the limit of ${deps.limits.requestBodyLimit} bytes`);
      },
    }),
  );

  app.get('/healthz', (c) => ok(c, { status: 'ok', version: deps.version }));
  app.get('/readyz', async (c) => {
    const storeOk = await deps.store.ping().catch(() => false);
    const extra = deps.isReady ? await deps.isReady().catch(() => false) : true;
    const member = deps.ownership.isMember();
    if (storeOk && extra && member) return ok(c, { ready: true, store: true, member });
    const why = !storeOk ? 'store unreachable' : !member ? 'not a member (no slot ownership; fenced or still joining)' : 'not ready';
    return fail(c, new XcronError(Codes.STORE_UNAVAILABLE, 503, `not ready: ${why}`));
  });

  app.get('/xcron/cluster', async (c) => ok(c, await deps.ownership.describe()));

  taskRoutes(app, deps);
  manageRoutes(app, deps);
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
  if (err instanceof StoreUnavailableError) {
    const write = c.req.method === 'POST';
    return fail(c, new XcronError(write ? Codes.STORE_WRITE : Codes.STORE_UNAVAILABLE, 503, `store unavailable, retry later: ${err.message}`));
  }
  log.error({ err, path: c.req.path }, 'unhandled error in request');
  return fail(c, new XcronError(Codes.INTERNAL, 500, 'internal error; see the server log for this request uuid'));
}
