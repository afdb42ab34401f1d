/**
 * The library: `createXcron(config, { clock, log })` assembles one xcron node from a validated
 * Config (store, ownership, delivery, scheduler, metrics, API app) and returns a handle to start,
 * listen, stop and `await using`. `src/main.ts` is a thin shell around it; tests use the same
 * handle.
 *
 *   await using x = await createXcron(validateConfig({ data_dir: dir }), { clock, log });
 *   await x.start();                    // ownership, scheduler, history retention
 *   const { port } = await x.listen();  // or drive x.app.request() without a socket
 *
 * `stop()` shuts down in order, each step with its own catch and deadline (src/shutdown.ts): stop
 * accepting requests, stop timers, drain in-flight deliveries up to `shutdown_timeout_ms`, flush
 * the run history, release the leases, close delivery, the store and the Redis connections.
 */
import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { createApp } from './api/app.js';
import { answerClientErrors } from './api/client-error.js';
import { RetryMarks } from './api/runs.js';
import { TokenAuth, resolveTokens } from './api/auth.js';
import { SystemClock, type Clock, type TimerHandle } from './clock/index.js';
import { LocalOwnership, slotOf, type Ownership } from './cluster/index.js';
import { LeaseGate } from './cluster/lease-table.js';
import { openClusterMode, type ClusterMode } from './cluster/mode.js';
import { openBindRefusal } from './config/exposure.js';
import { VERSION, type Config } from './config/index.js';
import { Delivery } from './delivery/index.js';
import { ConfigError, StoreUnavailableError } from './errors.js';
import { DestinationPolicy, type DestinationPolicyOptions } from './delivery/ssrf.js';
import { ThreadedDelivery, type DeliveryService } from './delivery/threaded.js';
import { Targets } from './delivery/targets/index.js';
import { createResultsConsumer } from './service/results.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { redactRedisUrl } from './redis/url.js';
import { RedisKeys } from './redis/keys.js';
import { LocalFlow, RedisFlow } from './delivery/flow.js';
import { Scheduler } from './scheduler/index.js';
import { SchedulerStats } from './scheduler/stats.js';
import { TaskService, type Notifier } from './service/index.js';
import { runShutdown, type ShutdownStep, type StepOutcome } from './shutdown.js';
import { listenFailure, redisFailure } from './startup-errors.js';
import { retentionRound } from './store/retention.js';
import { checkLogLine, openSqliteStore } from './store/sqlite-open.js';
import { ThreadedSqliteStore } from './store/sqlite-thread.js';
import type { TaskStore } from './store/types.js';
import type { Run, Task } from './task/index.js';
import { Node, type Xcron } from './xcron-node.js';

export type { NodeEnv, StartOptions, Xcron, XcronParts } from './xcron-node.js';

/** Cluster: fires per owned slot in one commit batch (see SchedulerOptions.batchPerSlot). */
const CLUSTER_FIRES_PER_SLOT = 16;
/** In a cluster: how long a report waits for another node to record the 202 it overtook (applyReport). */
const REPORT_ANSWER_WAIT_MS = 1000;

export interface XcronDeps {
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: a JSON logger at the config's log_level, tagged with its node_id. */
  log?: Logger;
  /**
   * What the task operations (API, follow-ups) tell when a task changes, is removed or gets a manual run. Given the default
   * (the local scheduler standalone, the change feed in a cluster), returns the one to use: a test
   * can observe or replace it.
   */
  notifier?: (standard: Notifier) => Notifier;
  /** Node.js process metrics (CPU, memory, GC, event loop) on /metrics. Default true. */
  processMetrics?: boolean;
  /** The deadline (ms) of each shutdown step but the delivery drain (which has shutdown_timeout_ms). Default 10,000. */
  shutdownStepTimeoutMs?: number;
}

/** Builds one node from the config. Opens the store (and in cluster mode connects to Redis); starts nothing. */
export async function createXcron(cfg: Config, deps: XcronDeps = {}): Promise<Xcron> {
  const clock = deps.clock ?? new SystemClock();
  const log = deps.log ?? createLogger(cfg.log_level, cfg.node_id);
  const stepTimeoutMs = deps.shutdownStepTimeoutMs ?? 10_000;
  const auth = new TokenAuth(resolveTokens(cfg.auth));
  // An address other machines can reach, without tokens: only when allow_open says so.
  const openRefusal = openBindRefusal(cfg.http_host, auth.count, cfg.allow_open);
  if (openRefusal !== null) throw new ConfigError(openRefusal);
  const destinationOptions: DestinationPolicyOptions = {
    denyCidrs: cfg.callback.deny_cidrs,
    allowHosts: cfg.callback.allow_hosts,
    allowLoopback: cfg.callback.allow_loopback,
    allowPrivate: cfg.callback.allow_private,
  };
  const destinations = new DestinationPolicy(destinationOptions);

  // Standalone (SQLite, every slot) or, with [cluster] redis_url, cluster mode (src/cluster/mode.ts).
  let store: TaskStore;
  let ownership: Ownership;
  let where: Record<string, unknown>;
  const cluster = cfg.cluster.redis_url !== '' ? await openCluster(cfg, log) : null;
  if (cluster) {
    store = cluster.store;
    ownership = cluster.ownership;
    where = { cluster: true, slots: cfg.cluster.slots, lease_ms: cfg.cluster.lease_ms, key_prefix: cfg.cluster.key_prefix };
  } else {
    const dbFile = resolve(cfg.data_dir, cfg.store.sqlite_file);
    // The database runs in its own thread by default ([store] worker_thread): commits and WAL
    // checkpoints never stall the timers or the API on the main thread.
    let epoch: number;
    if (cfg.store.worker_thread) {
      const threaded = await ThreadedSqliteStore.open({ file: dbFile, synchronous: cfg.store.synchronous, startupCheck: cfg.store.startup_check }, log.child({ module: 'store' }));
      epoch = threaded.epoch;
      store = threaded;
    } else {
      const opened = openSqliteStore({ file: dbFile, synchronous: cfg.store.synchronous, startupCheck: cfg.store.startup_check }, true);
      if (opened.check) log.child({ module: 'store' }).info(...checkLogLine(opened.check));
      epoch = opened.epoch ?? 0;
      store = opened.store;
    }
    ownership = new LocalOwnership(cfg.node_id, cfg.cluster.slots, epoch);
    where = { data: dbFile, epoch };
  }

  let metrics: Metrics | null = null;
  let delivery: DeliveryService | null = null;
  // In a cluster, sync runs waiting to retry are marked in the store: a report for one is refused
  // at once on any node (the store refuses reports for every sync run; see applyReport).
  const retrying = cluster
    ? new RetryMarks((u): void => {
        // Written at once, on the store connection the run's later writes use (so it lands before them).
        store.updateRuns([u]).catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err), fire_id: u.run_id }, 'could not mark a run as waiting to retry'));
      })
    : null;
  const onAttempt = (e: Parameters<Metrics['onAttempt']>[0]): void => {
    retrying?.observe(e);
    metrics?.onAttempt(e);
  };
  try {
    // Callbacks go out from a worker thread by default ([delivery] worker_thread): the main thread
    // keeps the timers, the store commits and the API, and the HTTP work runs on another core.
    const deliveryConfig = {
      userAgent: cfg.delivery.user_agent,
      globalConcurrency: cfg.delivery.global_concurrency,
      perOriginConcurrency: cfg.delivery.per_origin_concurrency,
      maxResponseBytes: cfg.delivery.max_response_bytes,
      signingSecrets: cfg.callback.signing_secrets,
      prewarmConnections: cfg.delivery.prewarm_connections,
    };
    // Cluster: a callback goes out only while its slot's lease is held (checked in the delivery
    // thread right before the request is written). Standalone: no check.
    const leases = ownership.leaseBuffer();
    const d: DeliveryService = cfg.delivery.worker_thread
      ? new ThreadedDelivery({
          ...deliveryConfig,
          destinations: destinationOptions,
          logLevel: cfg.log_level,
          nodeId: cfg.node_id,
          // A cluster node marks a run RUNNING as soon as its attempt starts: a node that acquires the
          // slot meanwhile leaves runs that a live node is delivering alone. Standalone, a callback
          // still unanswered after up to a second shows as RUNNING; faster ones go from PENDING to
          // their outcome (with 20 ms, about half of a 20,000-callback burst sent a start event each).
          startDelayMs: cluster ? 0 : 1000,
          ...(leases ? { leases } : {}),
          targets: cfg.targets,
          log: log.child({ module: 'delivery' }),
          onAttempt,
        })
      : new Delivery({ ...deliveryConfig, clock, log: log.child({ module: 'delivery' }), destinations, onAttempt, ...(leases ? { leases: new LeaseGate(leases) } : {}), targets: new Targets(cfg.targets) });
    delivery = d;
    // The secret behind X-Xcron-Report-Token: configured, or created once in the store (the same on
    // every node of a cluster), so any node can verify a worker's report.
    const reportSecret = cfg.callback.report_secret !== '' ? cfg.callback.report_secret : await store.sharedSecret('report');
    // Task changes reach the slot's owner: in a cluster through the notifier, standalone straight to
    // the scheduler (built next; these run only once requests or runs arrive).
    const standardNotifier: Notifier = cluster
      ? cluster.notifier
      : {
          beforeChange: (id) => scheduler.cancelAhead(id),
          taskChanged: (t) => scheduler.taskChanged(t),
          taskRemoved: (id) => scheduler.taskRemoved(id),
          runQueued: (runId) => void scheduler.deliverRun(runId),
        };
    const notifier = deps.notifier ? deps.notifier(standardNotifier) : standardNotifier;
    const limits = {
      requestBodyLimit: cfg.request_body_limit,
      callbackBodyLimit: cfg.callback.body_limit,
      defaultTimezone: cfg.default_timezone,
      pastGraceMs: 1000,
      targets: new Set(Object.keys(cfg.targets)),
      flowKeys: new Set(Object.keys(cfg.flow)),
    };
    // The task operations, shared by the API and the scheduler's follow-ups (children, auto-pause).
    const service = new TaskService({ store, notifier, clock, slots: cfg.cluster.slots, limits, nodeId: cfg.node_id });
    const scheduler: Scheduler = new Scheduler({
      reportSecret,
      defaultAsyncTimeoutMs: cfg.delivery.async_timeout_ms,
      store: cluster ? cluster.schedulerStore : store,
      taskOps: service,
      onRunQueued: cluster ? (runId, slot) => cluster.notifier.runQueued(runId, slot) : undefined,
      ownership,
      delivery: d,
      clock,
      log: log.child({ module: 'scheduler' }),
      nodeId: cfg.node_id,
      lookaheadMs: cfg.scheduler.lookahead_ms,
      scanIntervalMs: cfg.scheduler.scan_interval_ms,
      maxSleepMs: cfg.scheduler.max_sleep_ms,
      misfireThresholdMs: cfg.scheduler.misfire_threshold_ms,
      batchSize: cfg.scheduler.batch_size,
      // Cluster: a commit is one script per slot; about 16 fires per script at a burst.
      batchPerSlot: cluster ? CLUSTER_FIRES_PER_SLOT : 0,
      commitCoalesceMs: cfg.scheduler.commit_coalesce_ms,
      // Standalone: the run history yields to a burst's queued callbacks (RunRecorder).
      deferRunWrites: !cluster,
      // Standalone: the held fire is undone here (uncommitFire). Cluster: in Redis, from any node
      // (uncommitHeld), and the owner claims it shortly before its due time (claimFires).
      commitAheadMs: cfg.scheduler.commit_ahead_ms,
      handoffAheadMs: cfg.scheduler.handoff_ahead_ms,
      maxLoaded: cfg.scheduler.max_loaded,
      defaultTimeoutMs: cfg.delivery.timeout_ms,
      defaultRetry: { max_attempts: cfg.delivery.max_attempts, backoff_ms: cfg.delivery.backoff_ms, max_backoff_ms: cfg.delivery.max_backoff_ms },
      alertUrl: cfg.alert.webhook_url,
      maxConsecutiveFailures: cfg.alert.max_consecutive_failures,
      jitterSeed: cfg.scheduler.jitter_seed,
      // Flow limits: counted in Redis in a cluster (shared by every node), here standalone.
      flow: { backend: cluster ? new RedisFlow(cluster.store.client, new RedisKeys(cfg.cluster.key_prefix)) : new LocalFlow(clock), limits: cfg.flow },
    });

    if (store instanceof ThreadedSqliteStore) store.onRestart = () => void scheduler.redeliverOutbox();
    cluster?.notifier.attach(scheduler);
    const stats = new SchedulerStats(scheduler);
    const m = new Metrics({
      scheduler,
      ownership,
      store,
      nodeId: cfg.node_id,
      version: VERSION,
      misfireThresholdMs: cfg.scheduler.misfire_threshold_ms,
      defaultMetrics: deps.processMetrics ?? true,
    });
    metrics = m;
    // One line per finished run: failures at warn, successes at debug. Never the body or headers.
    const runLog = log.child({ module: 'run' });
    scheduler.on('finished', (e) => {
      if (e.result.ok && !runLog.isLevelEnabled('debug')) return; // the common case builds nothing
      const line = { task_id: e.task_id, fire_id: e.run_id, slot: slotOf(e.task_id, cfg.cluster.slots), status: e.result.ok ? 'SUCCESS' : 'FAIL', attempts: e.result.attempts, http_status: e.result.status, duration_ms: e.result.duration_ms };
      if (e.result.ok) runLog.debug(line, 'run finished');
      else runLog.warn({ ...line, error: e.result.error }, 'run failed');
    });
    // Reports over HTTP and from the results queue are applied alike (src/service/report.ts).
    const reportHooks = {
      reportSecret,
      onRunClosed: (run: Run, task: Task | null): void => scheduler.reported(run, task),
      beforeReport: (runId: string): Promise<void> => scheduler.beforeReport(runId),
      answerWaitMs: cluster ? REPORT_ANSWER_WAIT_MS : 0,
    };
    const app = createApp({
      store,
      notifier,
      service,
      viewTask: (t) => scheduler.viewOf(t),
      isReady: cluster ? () => cluster.ready() : undefined,
      nodeId: cfg.node_id,
      runs: {
        ...reportHooks,
        logCaps: { maxLines: cfg.history.log_max_lines, maxBytes: cfg.history.log_max_bytes },
      },
      liveStats: () => stats.snapshot(),
      ownership,
      clock,
      log: log.child({ module: 'api' }),
      slots: cfg.cluster.slots,
      limits,
      version: VERSION,
      metrics: m,
      auth,
      publicMetrics: cfg.auth.public_metrics,
      rateLimit: { perSec: cfg.auth.rate_limit_per_sec, burst: cfg.auth.rate_limit_burst },
      destinations,
    });
    warnAboutConfig(cfg, auth, destinations, log);
    // Reports from the results queue go through the same code as POST /xcron/reportRun.
    const results = createResultsConsumer({
      cfg: cfg.results,
      nodeId: cfg.node_id,
      log,
      report: {
        store,
        clock,
        notifier,
        ...reportHooks,
      },
    });
    return new Node({ config: cfg, log, app, store, ownership, scheduler, delivery: d, metrics: m, cluster, where }, { clock, stepTimeoutMs, results, tokenCount: auth.count });
  } catch (e) {
    // Nothing may stay open when assembly fails half way.
    metrics?.close();
    await delivery?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    throw e;
  }
}

/** Cluster mode; Redis not reachable within [cluster] connect_timeout_ms ends the start with a message naming the URL. */
async function openCluster(cfg: Config, log: Logger): Promise<ClusterMode> {
  const timeoutMs = cfg.cluster.connect_timeout_ms;
  try {
    return await openClusterMode({ cluster: cfg.cluster, nodeId: cfg.node_id, log, connectTimeoutMs: timeoutMs });
  } catch (e) {
    throw e instanceof StoreUnavailableError ? redisFailure(e, redactRedisUrl(cfg.cluster.redis_url), timeoutMs) : e;
  }
}

function warnAboutConfig(cfg: Config, auth: TokenAuth, destinations: DestinationPolicy, log: Logger): void {
  if (!auth.enabled) {
    log.warn('no API tokens configured ([auth] tokens, XCRON_AUTH_TOKENS or [auth] tokens_file): the API is open to anyone who can reach this port');
  } else {
    log.info({ tokens: auth.count, public_metrics: cfg.auth.public_metrics }, 'API authentication on');
  }
  log.info({ ...destinations.describe() }, 'callback destination policy (SSRF guard)');
  if (destinations.refusal('169.254.169.254') === null || destinations.refusal('fd00:ec2::254') === null) {
    log.warn('[callback] deny_cidrs does not cover the cloud metadata address (169.254.169.254 / fd00:ec2::254): callbacks can reach it');
  }
  if (cfg.alert.webhook_url !== '') {
    void destinations.urlRefusal(cfg.alert.webhook_url).then((why) => {
      if (why !== null) log.warn({ reason: why }, '[alert] webhook_url is refused by the callback destination policy: alerts will not be delivered (add it to [callback] allow_hosts)');
    });
  }
}
