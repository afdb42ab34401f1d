/**
 * Helpers of the operations & security suites: the real app (createApp) over a real SQLite file with
 * the optional parts switched on (auth, rate limit, SSRF guard, metrics), a log capture, a small
 * Prometheus text parser, and the verifier snippets of docs/callbacks.md.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Hono } from 'hono';
import { pino, type Logger } from 'pino';
import { createApp, type ApiDeps, type ApiLimits, type Notifier } from '../../src/api/app.js';
import { TokenAuth, type TokenEntry } from '../../src/api/auth.js';
import { ManualClock } from '../../src/clock/index.js';
import { LocalOwnership } from '../../src/cluster/index.js';
import { DestinationPolicy, type DestinationPolicyOptions } from '../../src/delivery/ssrf.js';
import { Metrics, type SchedulerLike } from '../../src/metrics.js';
import type { SchedulerEvents } from '../../src/scheduler/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { REPO_ROOT } from '../helpers/server.js';

export const ADMIN = { token: 'admin-token-0123456789abcdef', role: 'admin', name: 'ops-admin' } as const satisfies TokenEntry;
export const READER = { token: 'read-token-0123456789abcdef', role: 'read', name: 'dashboard' } as const satisfies TokenEntry;
export const bearer = (t: { token: string }): Record<string, string> => ({ authorization: `Bearer ${t.token}` });

/** 2030-01-01T00:00:30Z, like the API suites. */
export const T0 = Date.UTC(2030, 0, 1, 0, 0, 30);

/** The report-token secret of an app made with `runs: true`. */
export const REPORT_SECRET = 'ops-report-secret-0123456789';

export const LIMITS: ApiLimits = { requestBodyLimit: 64 * 1024, callbackBodyLimit: 1024, defaultTimezone: 'UTC', pastGraceMs: 1000 };

/** Every JSON line a pino logger wrote. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly log: Logger;
  constructor(level = 'trace') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') this.lines.push(l);
        cb();
      },
    });
    this.log = pino({ level, base: { node: 'ops-test' } }, sink);
  }
  parsed(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** A scheduler stand-in for metrics unit tests: tests emit its events directly. */
export function fakeScheduler(loaded = 0, inflight = 0): SchedulerLike {
  return Object.assign(new EventEmitter<SchedulerEvents>(), { loadedCount: () => loaded, inflightCount: () => inflight });
}

export interface OpsAppOptions {
  tokens?: TokenEntry[];
  publicMetrics?: boolean;
  rateLimit?: { perSec: number; burst: number };
  destinations?: DestinationPolicyOptions | null;
  metrics?: boolean;
  limits?: Partial<ApiLimits>;
  now?: number;
  logLevel?: string;
  /** Serve the async-completion routes (reportRun, appendRunLog, runLog) with REPORT_SECRET. */
  runs?: boolean;
}

export interface OpsApp {
  app: Hono;
  store: SqliteTaskStore;
  ownership: LocalOwnership;
  clock: ManualClock;
  logs: LogCapture;
  metrics: Metrics | null;
  scheduler: SchedulerLike;
  deps: ApiDeps;
  dir: string;
  close(): Promise<void>;
}

export async function createOpsApp(o: OpsAppOptions = {}): Promise<OpsApp> {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-ops-'));
  const store = new SqliteTaskStore({ file: join(dir, 'xcron.db'), synchronous: 'normal' });
  const slots = 16;
  const ownership = new LocalOwnership('ops-test', slots, store.claimEpoch());
  await ownership.start();
  const clock = new ManualClock(o.now ?? T0);
  const logs = new LogCapture(o.logLevel ?? 'trace');
  const scheduler = fakeScheduler();
  const metrics = o.metrics === false ? null : new Metrics({ scheduler, ownership, store, nodeId: 'ops-test', version: '0.0.0-test', misfireThresholdMs: 5000, defaultMetrics: false });
  const notifier: Notifier = { taskChanged: () => undefined, taskRemoved: () => undefined, runQueued: () => undefined };
  const deps: ApiDeps = {
    store,
    notifier,
    ownership,
    clock,
    log: logs.log,
    slots,
    limits: { ...LIMITS, ...o.limits },
    version: '0.0.0-test',
    nodeId: 'ops-test',
    ...(metrics ? { metrics } : {}),
    auth: new TokenAuth(o.tokens ?? []),
    publicMetrics: o.publicMetrics ?? false,
    ...(o.rateLimit ? { rateLimit: o.rateLimit } : {}),
    ...(o.destinations === null ? {} : { destinations: new DestinationPolicy(o.destinations ?? {}) }),
    ...(o.runs ? { runs: { reportSecret: REPORT_SECRET, onRunClosed: () => undefined, logCaps: { maxLines: 50, maxBytes: 8192 } } } : {}),
  };
  const app = createApp(deps);
  return {
    app,
    store,
    ownership,
    clock,
    logs,
    metrics,
    scheduler,
    deps,
    dir,
    close: async () => {
      metrics?.close();
      await ownership.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (samples only; # lines give the types). */
export function parseProm(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { samples, types };
}

/** The value of one sample (labels must match exactly the given subset); undefined when absent. */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

/** Every metric name the text exposes (histograms and summaries with their series suffixes). */
export function exposedNames(types: Map<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [name, type] of types) {
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}

/** The doc page holding the signature verifiers (`<!-- snippet:NAME -->` markers). */
export const OPS_DOC = join(REPO_ROOT, 'docs', 'callbacks.md');

/** The code block that follows `<!-- snippet:NAME -->` in docs/callbacks.md. */
export function docSnippet(name: string): string {
  const md = readFileSync(OPS_DOC, 'utf8');
  const at = md.indexOf(`<!-- snippet:${name} -->`);
  if (at < 0) throw new Error(`${OPS_DOC} has no <!-- snippet:${name} --> marker`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(md.slice(at));
  if (!m) throw new Error(`no code block after snippet:${name}`);
  return m[1]!;
}
