/**
 * Composition root: builds everything from the config, listens, and shuts down in order:
 * stop accepting requests, stop timers, drain in-flight deliveries up to a deadline, flush run
 * history, release ownership, close the store. A second signal forces the exit.
 */
import { resolve } from 'node:path';
import { serve } from '@hono/node-server';
import { createApp } from './api/app.js';
import { TokenAuth, resolveTokens } from './api/auth.js';
import { SystemClock } from './clock/index.js';
import { LocalOwnership, slotOf, type Ownership } from './cluster/index.js';
import { LeaseGate } from './cluster/lease-table.js';
import { openClusterMode, type ClusterMode } from './cluster/redis.js';
import { VERSION, loadConfig, type Config } from './config/index.js';
import { Delivery } from './delivery/index.js';
import { DestinationPolicy, type DestinationPolicyOptions } from './delivery/ssrf.js';
import { ThreadedSqliteStore } from './store/sqlite-thread.js';
import { ThreadedDelivery, type DeliveryService } from './delivery/threaded.js';
import { ConfigError } from './errors.js';
import { createLogger } from './log.js';
import { runTransfer } from './transfer.js';
import { Metrics } from './metrics.js';
import { answerClientErrors } from './api/client-error.js';
import { RetryingRuns } from './api/runs.js';
import { Scheduler } from './scheduler/index.js';
import { TaskService, type Notifier } from './service/index.js';
import { SchedulerStats } from './scheduler/stats.js';
import { retentionRound } from './store/retention.js';
import { checkLogLine, openSqliteStore } from './store/sqlite-open.js';
import { startupFailureText } from './store/startup-errors.js';
import type { TaskStore } from './store/types.js';

/** Cluster: fires per owned slot in one commit batch (see SchedulerOptions.batchPerSlot). */
const CLUSTER_FIRES_PER_SLOT = 16;

interface Args {
  configPath: string;
  explicit: boolean;
  /** A command instead of serving: export or import tasks. */
  command: { name: 'export' | 'import'; file: string | undefined } | null;
}

const USAGE = `usage: xcron_server [--config PATH]                 serve
       xcron_server export [--out FILE] [--config PATH]  write every task as JSON lines
       xcron_server import FILE [--config PATH]         create the tasks of an export
  default config: ./xcron.toml; every key can be overridden with XCRON_<KEY> or XCRON_<SECTION>_<KEY>
`;

function parseArgs(argv: string[]): Args {
  let configPath: string | undefined;
  let command: Args['command'] = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (i === 0 && (a === 'export' || a === 'import')) {
      command = { name: a, file: undefined };
    } else if (command && (a === '--out' || a === '-o') && command.name === 'export') {
      command.file = argv[++i];
      if (!command.file) throw new ConfigError('--out needs a file path');
    } else if (command?.name === 'import' && command.file === undefined && !a.startsWith('-')) {
      command.file = a;
    } else if (a === '--config' || a === '-c') {
      configPath = argv[++i];
      if (!configPath) throw new ConfigError('--config needs a file path');
    } else if (a.startsWith('--config=')) {
      configPath = a.slice('--config='.length);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--version') {
      process.stdout.write(`${VERSION}\n`);
      process.exit(0);
    } else {
      throw new ConfigError(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
    }
  }
  const fromEnv = process.env.XCRON_CONFIG;
  if (configPath) return { configPath, explicit: true, command };
  if (fromEnv) return { configPath: fromEnv, explicit: true, command };
  return { configPath: 'xcron.toml', explicit: false, command };
}

export async function main(): Promise<void> {
  let cfg: Config;
  let auth: TokenAuth;
  let destinations: DestinationPolicy;
  let destinationOptions: DestinationPolicyOptions;
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
    cfg = loadConfig({ path: args.configPath, explicit: args.explicit, env: process.env });
    auth = new TokenAuth(resolveTokens(cfg.auth));
    destinationOptions = {
      denyCidrs: cfg.callback.deny_cidrs,
      allowHosts: cfg.callback.allow_hosts,
      allowLoopback: cfg.callback.allow_loopback,
      allowPrivate: cfg.callback.allow_private,
    };
    destinations = new DestinationPolicy(destinationOptions);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`xcron: configuration error: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(cfg.log_level, cfg.node_id);
  if (args.command) {
    try {
      process.exit(await runTransfer(args.command.name, args.command.file, cfg, log));
    } catch (e) {
      process.stderr.write(`xcron: ${args.command.name} failed: ${(e as Error).message}
`);
      process.exit(e instanceof ConfigError ? 2 : 1);
    }
  }
  const clock = new SystemClock();

  // Standalone (SQLite, every slot) or, with [cluster] redis_url, cluster mode (src/cluster/redis.ts).
  let store: TaskStore;
  let ownership: Ownership;
  let where: Record<string, unknown>;
  const cluster = cfg.cluster.redis_url !== '' ? await startCluster(cfg, log) : null;
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
  const retrying = new RetryingRuns();
  // Callbacks go out from a worker thread by default ([delivery] worker_thread): the main thread
  // keeps the timers, the store commits and the API, and the HTTP work runs on another core.
  const deliveryConfig = {
    userAgent: cfg.delivery.user_agent,
    globalConcurrency: cfg.delivery.global_concurrency,
    perOriginConcurrency: cfg.delivery.per_origin_concurrency,
    maxResponseBytes: cfg.delivery.max_response_bytes,
    signingSecrets: cfg.callback.signing_secrets,
  };
  const leases = ownership.leaseBuffer();
  const delivery: DeliveryService = cfg.delivery.worker_thread
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
        // Cluster: a callback goes out only while its slot's lease is held (checked in the delivery
        // thread right before the request is written). Standalone: no check.
        ...(leases ? { leases } : {}),
        log: log.child({ module: 'delivery' }),
        onAttempt: (e) => {
          retrying.observe(e);
          metrics?.onAttempt(e);
        },
      })
    : new Delivery({ ...deliveryConfig, clock, log: log.child({ module: 'delivery' }), destinations, onAttempt: (e) => {
          retrying.observe(e);
          metrics?.onAttempt(e);
        }, ...(leases ? { leases: new LeaseGate(leases) } : {}) });
  // The secret behind X-Xcron-Report-Token: configured, or created once in the store (the same on
  // every node of a cluster), so any node can verify a worker's report.
  const reportSecret = cfg.callback.report_secret !== '' ? cfg.callback.report_secret : await store.sharedSecret('report');
  // Task changes reach the slot's owner: in a cluster through the notifier, standalone straight to
  // the scheduler (built next; these run only once requests or runs arrive).
  const notifier: Notifier = cluster
    ? cluster.notifier
    : {
        beforeChange: (id) => scheduler.cancelAhead(id),
        taskChanged: (t) => scheduler.taskChanged(t),
        taskRemoved: (id) => scheduler.taskRemoved(id),
        runQueued: (runId) => void scheduler.deliverRun(runId),
      };
  const limits = {
    requestBodyLimit: cfg.request_body_limit,
    callbackBodyLimit: cfg.callback.body_limit,
    defaultTimezone: cfg.default_timezone,
    pastGraceMs: 1000,
  };
  // The task operations, shared by the API and the scheduler's follow-ups (children, auto-pause).
  const service = new TaskService({ store, notifier, clock, slots: cfg.cluster.slots, limits, nodeId: cfg.node_id });
  const scheduler = new Scheduler({
    reportSecret,
    defaultAsyncTimeoutMs: cfg.delivery.async_timeout_ms,
    store: cluster ? cluster.schedulerStore : store,
    taskOps: service,
    onRunQueued: cluster ? (runId, slot) => cluster.notifier.runQueued(runId, slot) : undefined,
    ownership,
    delivery,
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
  metrics = new Metrics({ scheduler, ownership, store, nodeId: cfg.node_id, version: VERSION, misfireThresholdMs: cfg.scheduler.misfire_threshold_ms });
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
    metrics,
    auth,
    publicMetrics: cfg.auth.public_metrics,
    rateLimit: { perSec: cfg.auth.rate_limit_per_sec, burst: cfg.auth.rate_limit_burst },
    destinations,
  });
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

  const t0 = performance.now();
  await ownership.start();
  await scheduler.start();

  const server = serve({ fetch: app.fetch, port: cfg.http_port, hostname: cfg.http_host });
  answerClientErrors(server, { log, observe: (status) => metrics?.observeRequest('other', 'OTHER', status, 0) });
  await new Promise<void>((resolveListen, reject) => {
    server.once('listening', () => resolveListen());
    server.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.http_port;
  log.info({ port, host: cfg.http_host, ...where, loaded: scheduler.loadedCount(), ready_ms: Math.round(performance.now() - t0), version: VERSION }, `xcron listening on ${cfg.http_host}:${port}`);

  // History retention: prune finished runs in the background, never in the middle of a burst
  // (src/store/retention.ts). A cluster node prunes its own slots (each slot once per round across
  // the cluster, not once per node); a slot between owners waits for the next round.
  const retentionStop = new AbortController();
  let pruning = false;
  const prune = async (): Promise<void> => {
    if (pruning) return;
    const slots = cluster ? ownership.ownedSlots() : null;
    if (slots !== null && slots.length === 0) return;
    pruning = true;
    try {
      const r = await retentionRound({
        store,
        clock,
        log,
        retentionDays: cfg.history.retention_days,
        maxRunsPerTask: cfg.history.max_runs_per_task,
        completedRetentionDays: cfg.history.completed_retention_days,
        slots,
        busy: () => (delivery.backlog?.() ?? 0) > 0,
        signal: retentionStop.signal,
      });
      if (r.pruned > 0) log.info({ pruned: r.pruned, waited_ms: r.waitedMs }, 'pruned run history');
      if (r.purged > 0) log.info({ purged: r.purged, waited_ms: r.waitedMs }, 'purged completed tasks');
    } catch (err) {
      log.warn({ err }, 'run history pruning failed; will retry');
    } finally {
      pruning = false;
    }
  };
  const pruneTimer = setInterval(() => void prune(), 10 * 60_000);
  pruneTimer.unref();
  setTimeout(() => void prune(), 30_000).unref();

  let shuttingDown: Promise<void> | null = null;
  const shutdown = (signal: string): void => {
    if (shuttingDown) {
      log.warn({ signal }, 'second signal: forcing exit');
      process.exit(130);
    }
    log.info({ signal }, 'shutting down');
    retentionStop.abort();
    shuttingDown = (async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        if ('closeIdleConnections' in server) server.closeIdleConnections();
        const force = setTimeout(() => {
          if ('closeAllConnections' in server) server.closeAllConnections();
        }, 2000);
        force.unref();
      });
      clearInterval(pruneTimer);
      await scheduler.stop();
      const drained = await delivery.drain(cfg.shutdown_timeout_ms);
      if (!drained) log.warn({ in_flight: delivery.inFlight() }, 'shutdown deadline reached; unfinished runs will be redelivered on the next start');
      await scheduler.flush();
      await ownership.stop();
      await delivery.close();
      await store.close();
      await cluster?.close();
      log.info('stopped');
      log.flush();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection'));
}

/** Cluster mode: connects to Redis and checks the slot count; a mismatch is a configuration error (exit 2). */
async function startCluster(cfg: Config, log: ReturnType<typeof createLogger>): Promise<ClusterMode> {
  try {
    return await openClusterMode({ cluster: cfg.cluster, nodeId: cfg.node_id, log });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`xcron: configuration error: ${e.message}\n`);
      log.flush();
      process.exit(2);
    }
    throw e;
  }
}

main().catch((e: unknown) => {
  // A store error explained by src/store/startup-errors.ts prints without its stack.
  const verbose = ['debug', 'trace'].includes(process.env.XCRON_LOG_LEVEL ?? '');
  process.stderr.write(`xcron: failed to start: ${startupFailureText(e, verbose)}\n`);
  process.exit(1);
});
