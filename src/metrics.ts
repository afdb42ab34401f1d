/**
 * Prometheus metrics (prom-client), one Registry per instance (never the global default registry,
 * so tests can build several). Fed by the scheduler's events, the delivery's attempt observer, the
 * ownership's 'lost' events and the API's request observer; gauges are read on scrape.
 *
 * Units follow Prometheus conventions (seconds, `_total` counters). The names are the contract of
 * config/grafana-dashboard.json and config/prometheus-alerts.yml.
 */
import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Ownership } from './cluster/index.js';
import type { AttemptEvent } from './delivery/index.js';
import type { SchedulerEvents } from './scheduler/index.js';
import type { StoreStats } from './store/types.js';
import { DeadlineError } from './errors.js';
import { FastCounter, FastHistogram, type CounterChild, type HistogramChild } from './fast-metrics.js';

/** What metrics needs of the scheduler. */
export type SchedulerLike = EventEmitter<SchedulerEvents> & { loadedCount(): number; inflightCount(): number; flowWaiting?(): Map<string, number> };

export interface MetricsOptions {
  scheduler: SchedulerLike;
  ownership: Ownership;
  store: { stats(): Promise<StoreStats> };
  nodeId: string;
  version: string;
  /** A periodic fire later than this (ms) counts as a misfire (the scheduler's threshold). */
  misfireThresholdMs: number;
  /** Node.js process metrics (CPU, memory, GC, event-loop lag, handles). Default true. */
  defaultMetrics?: boolean;
  /** store.stats() is read at most this often (ms) for the task gauges. Default 5000. */
  statsMaxAgeMs?: number;
  /** A scrape waits at most this long (ms) for store.stats(); older figures are served after. */
  statsTimeoutMs?: number;
}

/** Seconds buckets for fire lateness: 1 ms .. 5 min. */
const LATENESS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds buckets for callback durations: 5 ms .. 5 min. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds buckets for per-request CPU time: 0.25 ms .. 1 s. */
const CPU_BUCKETS = [0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1];
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']);

/** The `result` label of one callback attempt. */
export function attemptResult(o: AttemptEvent['outcome']): 'success' | 'http_4xx' | 'http_5xx' | 'http_other' | 'timeout' | 'connect_error' | 'refused' {
  if (o.ok) return 'success';
  if (o.refused) return 'refused';
  if (o.status !== null) return o.status >= 500 ? 'http_5xx' : o.status >= 400 ? 'http_4xx' : 'http_other';
  if (o.timed_out === true) return 'timeout';
  return 'connect_error';
}

export class Metrics {
  readonly registry = new Registry();
  // The metrics bumped once or more per callback are FastCounter/FastHistogram (src/fast-metrics.ts).
  private readonly fires: FastCounter;
  private readonly committed: CounterChild;
  private readonly misfires: Counter<'policy'>;
  private readonly overlapSkips: Counter;
  private readonly lateness: HistogramChild;
  private readonly callbackDuration: FastHistogram;
  private readonly deliveryDuration: FastHistogram;
  private readonly attempts: FastCounter;
  private readonly retries: CounterChild;
  private readonly alertAttempts: Counter<'result'>;
  private readonly alerts: Counter<'event'>;
  private readonly leaseLosses: Counter;
  private readonly slotsLost: Counter;
  private readonly fenced: Counter;
  private readonly storeErrors: Counter<'source'>;
  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly httpDuration: Histogram<'route'>;
  private readonly httpCpu: Histogram<'route' | 'auth'>;
  private statsCache: StoreStats | null = null;
  private statsAt = -Infinity;
  private statsInflight: Promise<void> | null = null;
  private readonly detach: (() => void)[] = [];

  constructor(private readonly o: MetricsOptions) {
    const registers = [this.registry];
    if (o.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });

    new Gauge({ name: 'xcron_build_info', help: 'Always 1; labels carry the version and node id.', labelNames: ['version', 'node'], registers }).set({ version: o.version, node: o.nodeId }, 1);

    this.fires = new FastCounter({ name: 'xcron_fires_total', help: 'Fires by final outcome: success, fail (delivery gave up), skipped (overlap policy), missed (misfire policy skip).', labelNames: ['outcome'], registers });
    for (const outcome of ['success', 'fail', 'skipped', 'missed']) this.fires.at(outcome); // printed from the start, as 0
    this.committed = new FastCounter({ name: 'xcron_fires_committed_total', help: 'Fires committed for delivery (scheduled ticks and manual triggers).', registers }).at();
    this.misfires = new Counter({ name: 'xcron_misfires_total', help: 'Periodic ticks later than the misfire threshold, by policy (fire_once: fired late; skip: recorded MISSED).', labelNames: ['policy'], registers });
    for (const policy of ['fire_once', 'skip']) this.misfires.inc({ policy }, 0);
    this.overlapSkips = new Counter({ name: 'xcron_overlap_skips_total', help: 'Ticks recorded SKIPPED because the previous run was still in flight (overlap policy skip).', registers });
    this.lateness = new FastHistogram({ name: 'xcron_fire_lateness_seconds', help: 'Delay from a tick\'s scheduled time to its hand-over to delivery (its commit, unless committed ahead).', buckets: LATENESS_BUCKETS, registers }).at();
    // A label value of these is printed once used, as prom-client does.
    this.callbackDuration = new FastHistogram({ name: 'xcron_callback_duration_seconds', help: 'Duration of one callback HTTP attempt, by result.', labelNames: ['result'], buckets: DURATION_BUCKETS, registers });
    this.deliveryDuration = new FastHistogram({ name: 'xcron_delivery_duration_seconds', help: 'Duration of a whole delivery (all attempts and backoff), by final outcome.', labelNames: ['outcome'], buckets: DURATION_BUCKETS, registers });
    this.attempts = new FastCounter({ name: 'xcron_callback_attempts_total', help: 'Callback attempts by result (success, http_4xx, http_5xx, http_other, timeout, connect_error, refused by the SSRF guard).', labelNames: ['result'], registers });
    this.retries = new FastCounter({ name: 'xcron_callback_retries_total', help: 'Callback attempts after the first one of a fire (retries).', registers }).at();
    this.alertAttempts = new Counter({ name: 'xcron_alert_webhook_attempts_total', help: 'Alert webhook attempts by result.', labelNames: ['result'], registers });
    this.alerts = new Counter({ name: 'xcron_alerts_total', help: 'Alert events raised (run_failed, task_paused).', labelNames: ['event'], registers });

    new Gauge({
      name: 'xcron_owned_slots',
      help: 'Slots this node owns (standalone: all of them while running).',
      registers,
      collect() {
        this.set(o.ownership.ownedSlots().length);
      },
    });
    new Gauge({ name: 'xcron_slots', help: 'Slots in the cluster (fixed).', registers }).set(o.ownership.slotCount);
    new Gauge({
      name: 'xcron_cluster_member',
      help: '1 when this node is a working member (may own slots), else 0.',
      registers,
      collect() {
        this.set(o.ownership.isMember() ? 1 : 0);
      },
    });
    this.leaseLosses = new Counter({ name: 'xcron_lease_losses_total', help: "Ownership 'lost' events: slot leases lost, fenced, or handed back (rebalance, shutdown).", registers });
    this.slotsLost = new Counter({ name: 'xcron_lease_lost_slots_total', help: 'Slots this node stopped owning (sum over lease-loss events).', registers });
    this.fenced = new Counter({ name: 'xcron_fenced_total', help: 'Commits refused by the store because the fencing token was stale.', registers });
    this.storeErrors = new Counter({ name: 'xcron_store_errors_total', help: 'Store failures, by source (scheduler, api: HTTP 503 answers, metrics: a failed stats read).', labelNames: ['source'], registers });
    for (const source of ['scheduler', 'api', 'metrics']) this.storeErrors.inc({ source }, 0);

    new Gauge({
      name: 'xcron_loaded_tasks',
      help: 'Tasks held in memory (due inside the lookahead window).',
      registers,
      collect() {
        this.set(o.scheduler.loadedCount());
      },
    });
    new Gauge({
      name: 'xcron_inflight_runs',
      help: 'Runs being delivered by this node (including retry waits).',
      registers,
      collect() {
        this.set(o.scheduler.inflightCount());
      },
    });
    new Gauge({
      name: 'xcron_flow_waiting_fires',
      help: "Fires waiting on a flow limit on this node, by flow key ('task': tasks with a limit of their own).",
      labelNames: ['key'],
      registers,
      collect() {
        for (const [key, n] of o.scheduler.flowWaiting?.() ?? []) this.set({ key }, n);
      },
    });
    const flowDelay = new Histogram({ name: 'xcron_flow_delay_seconds', help: "How long fires waited on their flow limit before their first attempt, by flow key ('task': tasks with a limit of their own). Not part of xcron_fire_lateness_seconds.", labelNames: ['key'], buckets: LATENESS_BUCKETS, registers });
    this.listen(o.scheduler, 'flowAdmitted', (e) => flowDelay.observe({ key: e.key }, Math.max(0, e.waited_ms) / 1000));
    const self = this;
    new Gauge({
      name: 'xcron_tasks',
      help: 'Stored tasks by state (whole store; refreshed at most every few seconds).',
      labelNames: ['state'],
      registers,
      async collect() {
        await self.refreshStats();
        const t = self.statsCache?.tasks;
        if (t) for (const [state, n] of Object.entries(t)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'xcron_run_records',
      help: 'Run records kept in the store, by status (PENDING and RUNNING are the outbox).',
      labelNames: ['status'],
      registers,
      async collect() {
        await self.refreshStats();
        this.reset();
        const r = self.statsCache?.runs;
        if (r) for (const [status, n] of Object.entries(r)) this.set({ status }, n);
      },
    });

    this.httpRequests = new Counter({ name: 'xcron_http_requests_total', help: 'API requests by route, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.httpDuration = new Histogram({ name: 'xcron_http_request_duration_seconds', help: 'API request handling time by route.', labelNames: ['route'], buckets: HTTP_BUCKETS, registers });
    this.httpCpu = new Histogram({
      name: 'xcron_http_request_cpu_seconds',
      help: 'Process CPU time (user + system) used while an API request was handled, by route and whether auth let it through (an upper bound of its main-thread cost: other threads\' work in the meantime counts too).',
      labelNames: ['route', 'auth'],
      buckets: CPU_BUCKETS,
      registers,
    });

    // Lateness is taken when a fire is handed to delivery: a fire committed ahead is not late.
    this.listen(o.scheduler, 'released', (e) => this.lateness.observe(Math.max(0, e.released_at - e.scheduled_time) / 1000));
    this.listen(o.scheduler, 'fired', (e) => {
      if (e.status === 'PENDING') {
        this.committed.inc();
        if (e.committed_at - e.scheduled_time > o.misfireThresholdMs) this.misfires.inc({ policy: 'fire_once' });
      } else if (e.status === 'SKIPPED') {
        this.fires.at('skipped').inc();
        this.overlapSkips.inc();
      } else {
        this.fires.at('missed').inc();
        this.misfires.inc({ policy: 'skip' });
      }
    });
    this.listen(o.scheduler, 'finished', (e) => {
      const outcome = e.result.ok ? 'success' : 'fail';
      this.fires.at(outcome).inc();
      this.deliveryDuration.at(outcome).observe(Math.max(0, e.result.duration_ms) / 1000);
    });
    this.listen(o.scheduler, 'fenced', () => this.fenced.inc());
    this.listen(o.scheduler, 'storeError', () => this.storeErrors.inc({ source: 'scheduler' }));
    this.listen(o.scheduler, 'alert', (e) => this.alerts.inc({ event: e.event }));
    this.listen(o.ownership, 'lost', (slots) => {
      this.leaseLosses.inc();
      this.slotsLost.inc(slots.length);
    });
  }

  private listen<K extends keyof SchedulerEvents & string>(em: EventEmitter<SchedulerEvents>, ev: K, fn: (...a: SchedulerEvents[K]) => void): void;
  private listen(em: Ownership, ev: 'lost', fn: (slots: number[]) => void): void;
  private listen(em: EventEmitter, ev: string, fn: (...a: never[]) => void): void {
    const f = fn as (...a: unknown[]) => void;
    (em as EventEmitter).on(ev, f);
    this.detach.push(() => (em as EventEmitter).off(ev, f));
  }

  /** The delivery's attempt observer. */
  readonly onAttempt = (e: AttemptEvent): void => {
    const result = attemptResult(e.outcome);
    if (e.job.run_id.startsWith('alert:')) {
      this.alertAttempts.inc({ result });
      return;
    }
    this.attempts.at(result).inc();
    this.callbackDuration.at(result).observe(Math.max(0, e.outcome.duration_ms) / 1000);
    if (e.attempt > 1) this.retries.inc();
  };

  /** The API's request observer (route is a known path, '/ui' or 'other'). */
  observeRequest(route: string, method: string, status: number, seconds: number, cpuSeconds?: number): void {
    this.httpRequests.inc({ route, method: METHODS.has(method) ? method : 'OTHER', status: String(status) });
    this.httpDuration.observe({ route }, seconds);
    if (cpuSeconds !== undefined) this.httpCpu.observe({ route, auth: status === 401 || status === 403 ? 'refused' : 'passed' }, cpuSeconds);
    if (status === 503 && route.startsWith('/xcron/')) this.storeErrors.inc({ source: 'api' });
  }

  private refreshStats(): Promise<void> {
    const maxAge = this.o.statsMaxAgeMs ?? 5000;
    if (this.statsCache !== null && performance.now() - this.statsAt < maxAge) return Promise.resolve();
    if (!this.statsInflight) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new DeadlineError('store stats for a scrape', this.o.statsTimeoutMs ?? 2000)), this.o.statsTimeoutMs ?? 2000);
      });
      this.statsInflight = Promise.race([this.o.store.stats(), timeout])
        .then(
          (s) => {
            this.statsCache = s;
            this.statsAt = performance.now();
          },
          () => {
            this.storeErrors.inc({ source: 'metrics' });
          },
        )
        .finally(() => {
          clearTimeout(timer);
          this.statsInflight = null;
        });
    }
    return this.statsInflight;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition (store figures are read first, so a failed read is counted in the same scrape). */
  async render(): Promise<string> {
    await this.refreshStats();
    return this.registry.metrics();
  }

  /** Stops listening to the scheduler and ownership. */
  close(): void {
    for (const d of this.detach.splice(0)) d();
    this.registry.clear();
  }
}
