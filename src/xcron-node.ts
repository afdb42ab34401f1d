/**
 * A running node's handle (what createXcron returns): its parts, start, listen, the ordered stop
 * (each step with its own catch and deadline, src/shutdown.ts) and the history retention rounds.
 */
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { answerClientErrors } from './api/client-error.js';
import type { Clock, TimerHandle } from './clock/index.js';
import type { Ownership } from './cluster/index.js';
import type { ClusterMode } from './cluster/mode.js';
import type { Config } from './config/index.js';
import { openBindRefusal } from './config/exposure.js';
import type { DeliveryService } from './delivery/threaded.js';
import { ConfigError } from './errors.js';
import type { Metrics } from './metrics.js';
import type { Scheduler } from './scheduler/index.js';
import { runShutdown, type ShutdownStep, type StepOutcome } from './shutdown.js';
import { retentionRound } from './store/retention.js';
import type { TaskStore } from './store/types.js';
import type { ResultsConsumer } from './service/results.js';
import { listenFailure } from './startup-errors.js';

/** History retention: the first round this long after start, then one round per interval. */
const PRUNE_FIRST_MS = 30_000;
const PRUNE_EVERY_MS = 10 * 60_000;

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

/** What a node needs besides its parts. */
export interface NodeEnv {
  clock: Clock;
  stepTimeoutMs: number;
  /** API tokens configured (an open address needs some, or allow_open). */
  tokenCount: number;
  /** The results queue consumer ([results]); null: none configured. */
  results: ResultsConsumer | null;
}

/** A class whose instances carry the given parts as their own (readonly) fields. */
function carrying<T extends object>(): new (parts: T) => Readonly<T> {
  return class {
    constructor(parts: T) {
      Object.assign(this, parts);
    }
  } as new (parts: T) => Readonly<T>;
}

export class Node extends carrying<XcronParts>() implements Xcron {
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
      await this.env.results?.start();
    })();
    return this.starting;
  }

  async listen(opts: { port?: number; host?: string } = {}): Promise<{ port: number; host: string }> {
    if (this.stopping) throw new Error('xcron: listen() after stop()');
    if (this.server) throw new Error('xcron: already listening');
    const host = opts.host ?? this.config.http_host;
    const port = opts.port ?? this.config.http_port;
    const openRefusal = openBindRefusal(host, this.env.tokenCount, this.config.allow_open);
    if (openRefusal !== null) throw new ConfigError(openRefusal);
    const server = serve({ fetch: this.app.fetch, port, hostname: host });
    this.server = server;
    answerClientErrors(server, { log: this.log, observe: (status) => this.metrics.observeRequest('other', 'OTHER', status, 0) });
    await new Promise<void>((resolveListen, reject) => {
      server.once('listening', () => resolveListen());
      // A busy port, a foreign address, …: told in one line (src/startup-errors.ts).
      server.once('error', (e) => reject(listenFailure(e, host, port)));
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
      { name: 'results', timeoutMs: stepTimeoutMs, run: () => this.env.results?.stop() },
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
