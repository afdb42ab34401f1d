/** How tasks and runs are shown in responses. */
import type { z } from 'zod';
import { describeSchedule, fireIdOfRun, parseExecutorUrl, parseTargetUrl, retryOf, type Run, type RunRequest, type Task } from '../task/index.js';
import type { CallbackView, RunView, TaskRunStats, TaskView } from './contract/schemas.js';
import { RawJson } from './envelope.js';

/** Runs behind queryTask's `stats`. */
export const TASK_STATS_RUNS = 200;

function pct(sorted: number[], p: number): number | null {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Per-task figures over its newest retained runs (at most 200): queryTask's `stats`. */
export function taskRunStats(runs: readonly Run[]): z.output<typeof TaskRunStats> {
  let successes = 0;
  let failures = 0;
  let skipped = 0;
  let missed = 0;
  const lateness: number[] = [];
  const duration: number[] = [];
  for (const r of runs) {
    if (r.status === 'SUCCESS') successes++;
    else if (r.status === 'FAIL') failures++;
    else if (r.status === 'SKIPPED') skipped++;
    else if (r.status === 'MISSED') missed++;
    if (r.start_time !== null && (r.status === 'SUCCESS' || r.status === 'FAIL')) lateness.push(Math.max(0, r.start_time - r.scheduled_time));
    if (r.duration_ms !== null) duration.push(r.duration_ms);
  }
  lateness.sort((a, b) => a - b);
  duration.sort((a, b) => a - b);
  const done = successes + failures;
  return {
    window_runs: runs.length,
    fires: runs.length - skipped - missed,
    successes,
    failures,
    skipped,
    missed,
    success_rate: done === 0 ? null : successes / done,
    lateness_ms: { p50: pct(lateness, 0.5), p99: pct(lateness, 0.99) },
    duration_ms: { p50: pct(duration, 0.5), p99: pct(duration, 0.99) },
  };
}

/** The public view of a task (queryTask's data). */
export function taskView(t: Task): z.output<typeof TaskView> {
  const body = t.callback.body_text !== undefined ? new RawJson(t.callback.body_text) : t.callback.body;
  // A queue target shows as its name (and key): the broker's URL and credentials stay in the configuration.
  const target = parseTargetUrl(t.callback.url);
  const group = parseExecutorUrl(t.callback.url);
  const callback: z.output<typeof CallbackView> = target
    ? { target: target.name, ...(target.key !== null ? { key: target.key } : {}), body }
    : group !== null
      ? { executor: group, route: t.callback.route ?? 'round_robin', body }
      : { url: t.callback.url, body };
  if (t.callback.method !== 'POST') callback.method = t.callback.method;
  if (t.callback.headers) callback.headers = t.callback.headers;
  if (t.callback.urls) {
    callback.urls = t.callback.urls;
    callback.route = t.callback.route;
  }
  const v: z.output<typeof TaskView> = {
    task_id: t.id,
    create_time: String(Math.floor(t.create_time / 1000)),
    type: t.type,
    format: t.format,
    description: describeSchedule(t.type, t.format, t.timezone),
    run_count: t.run_count,
    callback,
    state: t.state,
    next_fire_time: t.state === 'completed' ? null : t.next_fire_time,
    last_fire_time: t.last_fire_time,
    last_status: t.last_status,
    timezone: t.timezone,
    misfire: t.misfire,
    overlap: t.overlap,
  };
  if (t.name !== null) v.name = t.name;
  if (t.timeout_ms !== null) v.timeout_ms = t.timeout_ms;
  if (t.retry !== null) v.retry = t.retry;
  if (t.idempotency_key !== null) v.idempotency_key = t.idempotency_key;
  if (t.start_time !== null) v.start_time = t.start_time;
  if (t.end_time !== null) v.end_time = t.end_time;
  if (t.on_success !== null) v.on_success = t.on_success;
  if (t.alert_url !== null) v.alert_url = t.alert_url;
  if (t.max_consecutive_failures !== null) v.max_consecutive_failures = t.max_consecutive_failures;
  if (t.completion !== 'sync') v.completion = t.completion;
  if (t.async_timeout_ms !== null) v.async_timeout_ms = t.async_timeout_ms;
  if (t.tags) v.tags = t.tags;
  if (t.jitter_ms) v.jitter_ms = t.jitter_ms;
  if (t.flow_key) v.flow_key = t.flow_key;
  if (t.flow) v.flow = t.flow;
  if (t.pause && t.state === 'paused') v.pause = t.pause;
  return v;
}

export function runView(r: Run): z.output<typeof RunView> {
  return {
    run_id: r.run_id,
    task_id: r.task_id,
    node: r.node,
    scheduled_time: r.scheduled_time,
    start_time: r.start_time,
    end_time: r.end_time,
    attempts: r.attempts,
    status: r.status,
    http_status: r.http_status,
    error: r.error,
    duration_ms: r.duration_ms,
    response_body: r.response_body,
    ...(r.shards ? { shards: r.shards } : {}),
    ...(r.deadline !== null ? { deadline: r.deadline } : {}),
    ...(r.message !== null ? { message: r.message } : {}),
    ...(r.output !== null ? { output: JSON.parse(r.output) as unknown } : {}),
    ...(r.request ? { request: requestView(r.request) } : {}),
    ...retryFields(r.run_id),
    ...(r.retried_by ? { retried_by: r.retried_by } : {}),
  };
}

/** A retry run's link to the run it retries, and the fire id it keeps. */
function retryFields(runId: string): { retry_of?: string; fire_id?: string } {
  const of = retryOf(runId);
  return of === null ? {} : { retry_of: of, fire_id: fireIdOfRun(runId) };
}

/** A run's one-off request: the body (parsed: a number beyond 2^53 shows rounded here, it is sent as given), the headers. */
function requestView(q: RunRequest): Record<string, unknown> {
  return { ...(q.body !== null ? { body: JSON.parse(q.body) as unknown } : {}), ...(q.headers ? { headers: q.headers } : {}) };
}
