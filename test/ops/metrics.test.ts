/**
 * Metrics: event → series mapping (a scheduler stand-in emits the events the real one emits),
 * gauges read on scrape from a real SQLite store and LocalOwnership, a registry per instance,
 * /metrics through the app, and that every metric the Grafana dashboard and the alert rules use is
 * exported.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalOwnership } from '../../src/cluster/index.js';
import type { AttemptOutcome, DeliveryJob, DeliveryResult } from '../../src/delivery/index.js';
import { Metrics, attemptResult } from '../../src/metrics.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { validateCreate } from '../../src/task/index.js';
import { send } from '../helpers/app.js';
import { REPO_ROOT } from '../helpers/server.js';
import { LIMITS, createOpsApp, exposedNames, fakeScheduler, parseProm, sampleValue, type OpsApp } from './helpers.js';

const outcome = (o: Partial<AttemptOutcome>): AttemptOutcome => ({ ok: false, retryable: false, status: null, error: null, body: null, retry_after_ms: null, duration_ms: 20, ...o });
const job = (run_id = 't1:1000'): DeliveryJob => ({
  run_id,
  task_id: 't1',
  scheduled_time: 1000,
  url: 'http://127.0.0.1:9/',
  method: 'POST',
  headers: null,
  body: '{}',
  timeout_ms: 1000,
  retry: { max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 },
  first_attempt: 1,
});
const result = (ok: boolean, duration_ms: number): DeliveryResult => ({ ok, status: ok ? 200 : 500, error: ok ? null : 'HTTP 500', body: null, attempts: 1, start_time: 0, end_time: duration_ms, duration_ms, aborted: false });

describe('Metrics (unit)', () => {
  let dir: string;
  let store: SqliteTaskStore;
  let ownership: LocalOwnership;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xcron-metrics-'));
    store = new SqliteTaskStore({ file: join(dir, 'x.db'), synchronous: 'normal' });
    ownership = new LocalOwnership('n1', 8, store.claimEpoch());
    await ownership.start();
  });
  afterEach(async () => {
    await ownership.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async (m: Metrics) => parseProm(await m.render()).samples;

  it('maps scheduler events to fires, lateness, misfires, skips, durations, store errors, fencing and alerts', async () => {
    const sched = fakeScheduler(7, 2);
    const m = new Metrics({ scheduler: sched, ownership, store, nodeId: 'n1', version: '9.9.9', misfireThresholdMs: 5000, defaultMetrics: false });
    sched.emit('fired', { task_id: 'a', run_id: 'a:1000', scheduled_time: 1000, committed_at: 1003, status: 'PENDING' });
    sched.emit('fired', { task_id: 'a', run_id: 'a:2000', scheduled_time: 2000, committed_at: 9000, status: 'PENDING' }); // 7 s late: misfire, fired once
    sched.emit('fired', { task_id: 'b', run_id: 'b:1000', scheduled_time: 1000, committed_at: 9000, status: 'MISSED' });
    sched.emit('fired', { task_id: 'c', run_id: 'c:1000', scheduled_time: 1000, committed_at: 1000, status: 'SKIPPED' });
    // lateness is taken when a fire is handed to delivery (a fire committed ahead is released at its time)
    sched.emit('released', { task_id: 'a', run_id: 'a:1000', scheduled_time: 1000, released_at: 1003 });
    sched.emit('released', { task_id: 'a', run_id: 'a:2000', scheduled_time: 2000, released_at: 9000 });
    sched.emit('fired', { task_id: 'd', run_id: 'd:5000', scheduled_time: 5000, committed_at: 4000, status: 'PENDING' }); // committed 1 s ahead
    sched.emit('released', { task_id: 'd', run_id: 'd:5000', scheduled_time: 5000, released_at: 5000 });
    sched.emit('finished', { task_id: 'a', run_id: 'a:1000', scheduled_time: 1000, result: result(true, 40) });
    sched.emit('finished', { task_id: 'a', run_id: 'a:2000', scheduled_time: 2000, result: result(false, 3000) });
    sched.emit('storeError', new Error('disk I/O error'));
    sched.emit('fenced', 3);
    sched.emit('alert', { event: 'run_failed', task_id: 'a', task_name: null, run_id: 'a:2000', scheduled_time: 2000, error: 'HTTP 500', http_status: 500, attempts: 1, node: 'n1', time: 0 });
    const s = await scrape(m);
    expect(sampleValue(s, 'xcron_fires_total', { outcome: 'success' })).toBe(1);
    expect(sampleValue(s, 'xcron_fires_total', { outcome: 'fail' })).toBe(1);
    expect(sampleValue(s, 'xcron_fires_total', { outcome: 'missed' })).toBe(1);
    expect(sampleValue(s, 'xcron_fires_total', { outcome: 'skipped' })).toBe(1);
    expect(sampleValue(s, 'xcron_fires_committed_total')).toBe(3);
    expect(sampleValue(s, 'xcron_misfires_total', { policy: 'fire_once' })).toBe(1);
    expect(sampleValue(s, 'xcron_misfires_total', { policy: 'skip' })).toBe(1);
    expect(sampleValue(s, 'xcron_overlap_skips_total')).toBe(1);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_count')).toBe(3);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_sum')).toBeCloseTo(7.003, 6);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_bucket', { le: '0.005' })).toBe(2);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_bucket', { le: '5' })).toBe(2);
    expect(sampleValue(s, 'xcron_fire_lateness_seconds_bucket', { le: '10' })).toBe(3);
    expect(sampleValue(s, 'xcron_delivery_duration_seconds_count', { outcome: 'fail' })).toBe(1);
    expect(sampleValue(s, 'xcron_delivery_duration_seconds_sum', { outcome: 'success' })).toBeCloseTo(0.04, 6);
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'scheduler' })).toBe(1);
    expect(sampleValue(s, 'xcron_fenced_total')).toBe(1);
    expect(sampleValue(s, 'xcron_alerts_total', { event: 'run_failed' })).toBe(1);
    expect(sampleValue(s, 'xcron_loaded_tasks')).toBe(7);
    expect(sampleValue(s, 'xcron_inflight_runs')).toBe(2);
    expect(sampleValue(s, 'xcron_build_info', { version: '9.9.9', node: 'n1' })).toBe(1);
    m.close();
  });

  it('counts attempts by result, retries and callback durations; alert webhooks apart', async () => {
    const sched = fakeScheduler();
    const m = new Metrics({ scheduler: sched, ownership, store, nodeId: 'n1', version: '1', misfireThresholdMs: 5000, defaultMetrics: false });
    m.onAttempt({ job: job(), attempt: 1, outcome: outcome({ status: 503, retryable: true, duration_ms: 100 }) });
    m.onAttempt({ job: job(), attempt: 2, outcome: outcome({ error: 'timeout after 1000 ms', timed_out: true, retryable: true, duration_ms: 1000 }) });
    m.onAttempt({ job: job(), attempt: 3, outcome: outcome({ ok: true, status: 200, duration_ms: 10 }) });
    m.onAttempt({ job: job(), attempt: 1, outcome: outcome({ refused: true, error: 'destination refused' }) });
    m.onAttempt({ job: job(), attempt: 1, outcome: outcome({ error: 'ECONNREFUSED: connect', retryable: true }) });
    m.onAttempt({ job: job(), attempt: 1, outcome: outcome({ status: 404 }) });
    m.onAttempt({ job: job('alert:run_failed:t1:1000'), attempt: 1, outcome: outcome({ ok: true, status: 200 }) });
    const s = await scrape(m);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'http_5xx' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'timeout' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'success' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'refused' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'connect_error' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_attempts_total', { result: 'http_4xx' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_retries_total')).toBe(2);
    expect(sampleValue(s, 'xcron_callback_duration_seconds_count', { result: 'timeout' })).toBe(1);
    expect(sampleValue(s, 'xcron_callback_duration_seconds_sum', { result: 'http_5xx' })).toBeCloseTo(0.1, 6);
    expect(sampleValue(s, 'xcron_alert_webhook_attempts_total', { result: 'success' })).toBe(1);
    expect(attemptResult(outcome({ status: 302 }))).toBe('http_other');
    // The flag decides, not the text: an error that merely starts with "timeout" is a connect error.
    expect(attemptResult(outcome({ error: 'timeout-ish proxy answer', retryable: true }))).toBe('connect_error');
    expect(attemptResult(outcome({ error: 'anything', timed_out: true, retryable: true }))).toBe('timeout');
    m.close();
  });

  it('tasks by state and run records come from the store; owned slots and lease losses from the ownership', async () => {
    const sched = fakeScheduler();
    const m = new Metrics({ scheduler: sched, ownership, store, nodeId: 'n1', version: '1', misfireThresholdMs: 5000, defaultMetrics: false, statsMaxAgeMs: 0 });
    const spec = validateCreate({ type: 1, format: '* * * * *', callback: { url: 'http://127.0.0.1:9/' } }, 0, LIMITS).spec;
    const base = { ...spec, slot: 0, create_time: 0, update_time: 0, last_fire_time: null, last_status: null, run_count: 0 };
    await store.create({ ...base, id: 'a1', state: 'active', next_fire_time: 60_000 });
    await store.create({ ...base, id: 'a2', state: 'active', next_fire_time: 60_000 });
    await store.create({ ...base, id: 'p1', state: 'paused', next_fire_time: 60_000 });
    let s = await scrape(m);
    expect(sampleValue(s, 'xcron_tasks', { state: 'active' })).toBe(2);
    expect(sampleValue(s, 'xcron_tasks', { state: 'paused' })).toBe(1);
    expect(sampleValue(s, 'xcron_tasks', { state: 'completed' })).toBe(0);
    expect(sampleValue(s, 'xcron_owned_slots')).toBe(8);
    expect(sampleValue(s, 'xcron_slots')).toBe(8);
    expect(sampleValue(s, 'xcron_cluster_member')).toBe(1);
    expect(sampleValue(s, 'xcron_lease_losses_total')).toBe(0);
    ownership.reportFenced(3); // standalone: another process took the file; every slot is lost
    s = await scrape(m);
    expect(sampleValue(s, 'xcron_owned_slots')).toBe(0);
    expect(sampleValue(s, 'xcron_cluster_member')).toBe(0);
    expect(sampleValue(s, 'xcron_lease_losses_total')).toBe(1);
    expect(sampleValue(s, 'xcron_lease_lost_slots_total')).toBe(8);
    m.close();
  });

  it('a failing store read still renders, and is counted', async () => {
    const sched = fakeScheduler();
    const m = new Metrics({ scheduler: sched, ownership, store: { stats: () => Promise.reject(new Error('down')) }, nodeId: 'n1', version: '1', misfireThresholdMs: 5000, defaultMetrics: false });
    const s = await scrape(m);
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'metrics' })).toBe(1);
    expect(sampleValue(s, 'xcron_tasks', { state: 'active' })).toBeUndefined();
    m.close();
  });

  it('a store read that hangs is cut off at the stats timeout', async () => {
    const m = new Metrics({ scheduler: fakeScheduler(), ownership, store: { stats: () => new Promise(() => undefined) }, nodeId: 'n1', version: '1', misfireThresholdMs: 5000, defaultMetrics: false, statsTimeoutMs: 20 });
    const s = await scrape(m);
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'metrics' })).toBe(1);
    m.close();
  });

  it('one registry per instance: two instances with default metrics coexist and count separately', async () => {
    const s1 = fakeScheduler();
    const s2 = fakeScheduler();
    const m1 = new Metrics({ scheduler: s1, ownership, store, nodeId: 'n1', version: '1', misfireThresholdMs: 5000 });
    const m2 = new Metrics({ scheduler: s2, ownership, store, nodeId: 'n2', version: '1', misfireThresholdMs: 5000 });
    s1.emit('fired', { task_id: 'a', run_id: 'a:1', scheduled_time: 1, committed_at: 1, status: 'SKIPPED' });
    const t1 = await m1.render();
    const t2 = await m2.render();
    expect(sampleValue(parseProm(t1).samples, 'xcron_fires_total', { outcome: 'skipped' })).toBe(1);
    expect(sampleValue(parseProm(t2).samples, 'xcron_fires_total', { outcome: 'skipped' })).toBe(0);
    for (const t of [t1, t2]) {
      const names = exposedNames(parseProm(t).types);
      for (const n of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) expect(names.has(n), n).toBe(true);
    }
    m1.close();
    s1.emit('fired', { task_id: 'a', run_id: 'a:2', scheduled_time: 2, committed_at: 2, status: 'SKIPPED' });
    expect(s1.listenerCount('fired')).toBe(0); // close() detached
    m2.close();
  });
});

describe('/metrics through the app', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });

  it('serves the Prometheus text format and counts API requests; 503s count as store errors', async () => {
    api = await createOpsApp();
    await send(api.app, '/xcron/stats');
    await send(api.app, '/xcron/queryTask?task_id=nope');
    const res = await api.app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    let s = parseProm(await res.text()).samples;
    expect(sampleValue(s, 'xcron_http_requests_total', { route: '/xcron/stats', method: 'GET', status: '200' })).toBe(1);
    expect(sampleValue(s, 'xcron_http_requests_total', { route: '/xcron/queryTask', method: 'GET', status: '404' })).toBe(1);
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'api' })).toBe(0);
    await api.store.close(); // the store goes away: API answers 503
    const r = await send(api.app, '/xcron/queryTask?task_id=abc');
    expect(r.status).toBe(503);
    s = parseProm(await (await api.app.request('/metrics')).text()).samples;
    expect(sampleValue(s, 'xcron_store_errors_total', { source: 'api' })).toBe(1);
    expect(sampleValue(s, 'xcron_http_requests_total', { route: 'other', method: 'GET', status: '404' })).toBeUndefined();
  });

  it('POST /metrics is 405 with Allow: GET', async () => {
    api = await createOpsApp();
    const r = await send(api.app, '/metrics', { method: 'POST', body: '' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET');
  });
});

describe('the Grafana dashboard and the alert rules', () => {
  let api: OpsApp | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  const dashboard = readFileSync(join(REPO_ROOT, 'config/grafana-dashboard.json'), 'utf8');
  const rules = readFileSync(join(REPO_ROOT, 'config/prometheus-alerts.yml'), 'utf8');
  const used = (text: string): Set<string> => new Set([...text.matchAll(/\b((?:xcron|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1]!));

  it('the dashboard is valid Grafana JSON with Prometheus panels', () => {
    const d = JSON.parse(dashboard) as { title: string; panels: { type: string; title: string; targets?: { expr: string }[] }[]; templating: { list: { name: string }[] } };
    expect(d.title).toMatch(/xcron/i);
    const withQueries = d.panels.filter((p) => p.targets && p.targets.length > 0);
    expect(withQueries.length).toBeGreaterThanOrEqual(10);
    for (const p of withQueries) for (const t of p.targets!) expect(t.expr, p.title).toMatch(/xcron_|nodejs_|process_/);
    expect(d.templating.list.map((v) => v.name)).toContain('node');
  });

  it('the alert rules cover lateness SLO, failure rate, a node with no slots and store errors', () => {
    for (const name of ['XcronFireLatenessSLO', 'XcronCallbackFailureRate', 'XcronNodeOwnsNoSlots', 'XcronStoreErrors']) expect(rules).toContain(`alert: ${name}`);
    expect(rules).toMatch(/^groups:\n/m);
    // every rule has an expr, a for (or fires at once) and a summary
    const alerts = rules.split('- alert: ').slice(1);
    expect(alerts.length).toBeGreaterThanOrEqual(4);
    for (const a of alerts) {
      expect(a, a.slice(0, 40)).toMatch(/\n\s+expr: /);
      expect(a, a.slice(0, 40)).toMatch(/\n\s+summary: /);
    }
  });

  it('every metric they use is exported by /metrics', async () => {
    api = await createOpsApp();
    // default process metrics on, as in the server
    const m = new Metrics({ scheduler: fakeScheduler(), ownership: api.ownership, store: api.store, nodeId: 'n', version: '1', misfireThresholdMs: 5000 });
    const exported = new Set([...exposedNames(parseProm(await m.render()).types)]);
    m.close();
    const missing = [...used(dashboard), ...used(rules)].filter((n) => !exported.has(n));
    expect(missing).toEqual([]);
    expect(used(dashboard).size).toBeGreaterThanOrEqual(10);
  });
});
