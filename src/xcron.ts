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
import { RetryingRuns } from './api/runs.js';
import { TokenAuth, resolveTokens } from './api/auth.js';
import { SystemClock, type Clock, type TimerHandle } from './clock/index.js';
import { LocalOwnership, slotOf, type Ownership } from './cluster/index.js';
import { LeaseGate } from './cluster/lease-table.js';
import { openClusterMode, type ClusterMode } from './cluster/redis.js';
import { VERSION, type Config } from './config/index.js';
import { Delivery } from './delivery/index.js';
import { DestinationPolicy, type DestinationPolicyOptions } from './delivery/ssrf.js';
import { ThreadedDelivery, type DeliveryService } from './delivery/threaded.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { Scheduler } from './scheduler/index.js';
import { SchedulerStats } from './scheduler/stats.js';
import { TaskService, type Notifier } from './service/index.js';
import { runShutdown, type ShutdownStep, type StepOutcome } from './shutdown.js';
import { retentionRound } from './store/retention.js';
import { checkLogLine, openSqliteStore } from './store/sqlite-open.js';
import { ThreadedSqliteStore } from './store/sqlite-thread.js';
import type { TaskStore } from './store/types.js';

/** Cluster: fires per owned slot in one commit batch (see SchedulerOptions.batchPerSlot). */
const CLUSTER_FIRES_PER_SLOT = 16;
/** History retention: the first round this long after start, then one round per interval. */
const PRUNE_FIRST_MS = 30_000;
const PRUNE_EVERY_MS = 10 * 60_000;

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

export interface StartOptions {
  /**
   * false: only take the slots, so the API answers and reports ready, but nothing is fired, no
   * deadline runs and no history is pruned (for tests of the API alone). Default true.
   */
  scheduler?: boolean;
}

/** The parts of a node, as its handle shows them. */
export interface XcronParts {
  readonly config: Config;
  /** The Hono app: serve it with listen(), or drive it with app.request() without a socket. */
  readonly app: Hono;
  readonly store: TaskStore;
  readonly ownership: Ownership;
  readonly scheduler: Scheduler;
  readonly delivery: DeliveryService;
  readonly metrics: Metrics;
  /** The cluster parts (Redis store, ownership and change feed); null standalone. */
  readonly cluster: ClusterMode | null;
  readonly log: Logger;
  /** Where the data is, for the start log line: { data, epoch } or the cluster settings. */
  readonly where: Readonly<Record<string, unknown>>;
}

export interface Xcron extends XcronParts {
  /** The bound HTTP port once listen() resolved; null before. */
  readonly port: number | null;
  /** Takes the slots and starts the scheduler and history retention. Calling it again returns the same promise. */
  start(opts?: StartOptions): Promise<void>;
  /** Serves the app on the config's http_port and http_host (or the ones given; port 0: any free port). */
  listen(opts?: { port?: number; host?: string }): Promise<{ port: number; host: string }>;
  /** The ordered shutdown (see the module comment). Never throws; calling it again returns the same promise. */
  stop(): Promise<void>;
  /** The outcome of each shutdown step, once stop() finished (for tests and the exit code). */
  readonly stopped: readonly StepOutcome[] | null;
  [Symbol.asyncDispose](): Promise<void>;
}

type Server = ReturnType<typeof serve>;

/** Builds one node from the config. Opens the store (and in cluster mode connects to Redis); starts nothing. */
export async function createXcron(cfg: Config, deps: XcronDeps = {}): Promise<Xcron> {
  const clock = deps.clock ?? new SystemClock();
  const log = deps.log ?? createLogger(cfg.log_level, cfg.node_id);
  const stepTimeoutMs = deps.shutdownStepTimeoutMs ?? 10_000;
  const auth = new TokenAuth(resolveTokens(cfg.auth));
  const destinationOptions: DestinationPolicyOptions = {
    denyCidrs: cfg.callback.deny_cidrs,
    allowHosts: cfg.callback.allow_hosts,
    allowLoopback: cfg.callback.allow_loopback,
    allowPrivate: cfg.callback.allow_private,
  };
  const destinations = new DestinationPolicy(destinationOptions);

  // Standalone (SQLite, every slot) or, with [cluster] redis_url, cluster mode (src/cluster/redis.ts).
  let store: TaskStore;
  let ownership: Ownership;
  let where: Record<string, unknown>;
  const cluster = cfg.cluster.redis_url !== '' ? await openClusterMode({ cluster: cfg.cluster, nodeId: cfg.node_id, log }) : null;
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
  // Sync runs between attempts (a report for one is refused).
  const retrying = new RetryingRuns();
  const onAttempt = (e: Parameters<Metrics['onAttempt']>[0]): void => {
    retrying.observe(e);
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
          log: log.child({ module: 'delivery' }),
          onAttempt,
        })
      : new Delivery({ ...deliveryConfig, clock, log: log.child({ module: 'delivery' }), destinations, onAttempt, ...(leases ? { leases: new LeaseGate(leases) } : {}) });
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
      maxLoaded: cfg.scheduler.max_loaded,
      defaultTimeoutMs: cfg.delivery.timeout_ms,
      defaultRetry: { max_attempts: cfg.delivery.max_attempts, backoff_ms: cfg.delivery.backoff_ms, max_backoff_ms: cfg.delivery.max_backoff_ms },
      alertUrl: cfg.alert.webhook_url,
      maxConsecutiveFailures: cfg.alert.max_consecutive_failures,
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
    const app = createApp({
      store,
      notifier,
      service,
      viewTask: (t) => scheduler.viewOf(t),
      isReady: cluster ? () => cluster.ready() : undefined,
      nodeId: cfg.node_id,
      runs: {
        reportSecret,
        onRunClosed: (run, task) => scheduler.reported(run, task),
        beforeReport: (runId) => scheduler.beforeReport(runId),
        retrying: (runId) => retrying.has(runId),
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
    return new Node({ config: cfg, log, app, store, ownership, scheduler, delivery: d, metrics: m, cluster, where }, { clock, stepTimeoutMs });
  } catch (e) {
    // Nothing may stay open when assembly fails half way.
    metrics?.close();
    await delivery?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    await cluster?.close().catch(() => undefined);
    throw e;
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

/** What a node needs besides its parts. */
interface NodeEnv {
  clock: Clock;
  stepTimeoutMs: number;
}

/** A class whose instances carry the given parts as their own (readonly) fields. */
function carrying<T extends object>(): new (parts: T) => Readonly<T> {
  return class {
    constructor(parts: T) {
      Object.assign(this, parts);
    }
  } as new (parts: T) => Readonly<T>;
}

class Node extends carrying<XcronParts>() implements Xcron {
  port: number | null = null;
  stopped: StepOutcome[] | null = null;
  private server: Server | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly retentionStop = new AbortController();
  private pruneTimer: TimerHandle | null = null;
  private pruning: Promise<void> | null = null;

  constructor(
    parts: XcronParts,
    private readonly env: NodeEnv,
  ) {
    super(parts);
  }

  start(opts: StartOptions = {}): Promise<void> {
    if (this.stopping) return Promise.reject(new Error('xcron: start() after stop()'));
    this.starting ??= (async () => {
      await this.ownership.start();
      if (opts.scheduler === false) return;
      await this.scheduler.start();
      this.armPrune(PRUNE_FIRST_MS);
    })();
    return this.starting;
  }

  async listen(opts: { port?: number; host?: string } = {}): Promise<{ port: number; host: string }> {
    if (this.stopping) throw new Error('xcron: listen() after stop()');
    if (this.server) throw new Error('xcron: already listening');
    const host = opts.host ?? this.config.http_host;
    const server = serve({ fetch: this.app.fetch, port: opts.port ?? this.config.http_port, hostname: host });
    this.server = server;
    answerClientErrors(server, { log: this.log, observe: (status) => this.metrics.observeRequest('other', 'OTHER', status, 0) });
    await new Promise<void>((resolveListen, reject) => {
      server.once('listening', () => resolveListen());
      server.once('error', reject);
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? this.config.http_port);
    return { port: this.port, host };
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async stopOnce(): Promise<void> {
    const { config: cfg, log } = this;
    const { stepTimeoutMs } = this.env;
    log.debug('stopping');
    this.retentionStop.abort();
    const steps: ShutdownStep[] = [
      // A start still in progress finishes first (its parts are then stopped below).
      { name: 'start', timeoutMs: stepTimeoutMs, run: () => this.starting?.catch(() => undefined) },
      { name: 'http', timeoutMs: stepTimeoutMs, run: () => this.closeServer() },
      {
        name: 'timers',
        timeoutMs: stepTimeoutMs,
        run: async () => {
          this.pruneTimer?.cancel();
          this.pruneTimer = null;
          await this.scheduler.stop();
          await this.pruning;
        },
      },
      {
        name: 'drain',
        // drain() has the deadline itself; the step's is a margin over it.
        timeoutMs: cfg.shutdown_timeout_ms + stepTimeoutMs,
        run: async () => {
          const drained = await this.delivery.drain(cfg.shutdown_timeout_ms);
          if (!drained) log.warn({ in_flight: this.delivery.inFlight() }, 'shutdown deadline reached; unfinished runs will be redelivered on the next start');
        },
      },
      { name: 'history', timeoutMs: stepTimeoutMs, run: () => this.scheduler.flush() },
      { name: 'leases', timeoutMs: stepTimeoutMs, run: () => this.ownership.stop() },
      { name: 'delivery', timeoutMs: stepTimeoutMs, run: () => this.delivery.close() },
      { name: 'metrics', timeoutMs: stepTimeoutMs, run: () => this.metrics.close() },
      { name: 'store', timeoutMs: stepTimeoutMs, run: () => this.store.close() },
      { name: 'redis', timeoutMs: stepTimeoutMs, run: () => this.cluster?.close() },
    ];
    this.stopped = await runShutdown(steps, log);
    log.info({ failed: this.stopped.filter((s) => s.outcome !== 'ok').map((s) => s.name) }, 'stopped');
  }

  /** Stops accepting connections, closes idle ones at once and busy ones after 2 s. */
  private closeServer(): Promise<void> | undefined {
    const server = this.server;
    if (!server) return undefined;
    return new Promise<void>((r) => {
      const force = setTimeout(() => {
        if ('closeAllConnections' in server) server.closeAllConnections();
      }, 2000);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        r();
      });
      if ('closeIdleConnections' in server) server.closeIdleConnections();
    });
  }

  // History retention: prune finished runs in the background, never in the middle of a burst
  // (src/store/retention.ts). A cluster node prunes its own slots (each slot once per round across
  // the cluster, not once per node); a slot between owners waits for the next round.
  private armPrune(ms: number): void {
    if (this.retentionStop.signal.aborted) return;
    this.pruneTimer = this.env.clock.setTimer(() => {
      this.pruneTimer = null;
      this.pruning ??= this.prune().finally(() => {
        this.pruning = null;
      });
      this.armPrune(PRUNE_EVERY_MS);
    }, ms);
  }

  private async prune(): Promise<void> {
    const { config: cfg, log } = this;
    const { clock } = this.env;
    const slots = this.cluster ? this.ownership.ownedSlots() : null;
    if (slots !== null && slots.length === 0) return;
    try {
      const r = await retentionRound({
        store: this.store,
        clock,
        log,
        retentionDays: cfg.history.retention_days,
        maxRunsPerTask: cfg.history.max_runs_per_task,
        completedRetentionDays: cfg.history.completed_retention_days,
        slots,
        busy: () => (this.delivery.backlog?.() ?? 0) > 0,
        signal: this.retentionStop.signal,
      });
      if (r.pruned > 0) log.info({ pruned: r.pruned, waited_ms: r.waitedMs }, 'pruned run history');
      if (r.purged > 0) log.info({ purged: r.purged, waited_ms: r.waitedMs }, 'purged completed tasks');
    } catch (err) {
      log.warn({ err }, 'run history pruning failed; will retry');
    }
  }
}
