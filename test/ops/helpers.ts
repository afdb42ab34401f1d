/**
 * Helpers of the operations & security suites: the node createXcron builds over a real SQLite file,
 * with the optional parts switched on (auth, rate limit, SSRF guard, metrics), a log capture, a small
 * Prometheus text parser, and the verifier snippets of docs/callbacks.md.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Hono } from 'hono';
import { pino, type Logger } from 'pino';
import type { ApiLimits } from '../../src/api/app.js';
import type { TokenEntry } from '../../src/api/auth.js';
import { ManualClock } from '../../src/clock/index.js';
import type { Notifier, Ownership } from '../../src/cluster/index.js';
import type { DestinationPolicyOptions } from '../../src/delivery/ssrf.js';
import type { Metrics, SchedulerLike } from '../../src/metrics.js';
import type { SchedulerEvents } from '../../src/scheduler/index.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { createXcron, type Xcron } from '../../src/xcron.js';
import { limitsConfig } from '../helpers/app.js';
import { REPO_ROOT } from '../helpers/server.js';
import { testConfig } from '../helpers/xcron.js';

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
  /** The [callback] destination policy (SSRF guard); default the config's. */
  destinations?: Pick<DestinationPolicyOptions, 'denyCidrs' | 'allowHosts' | 'allowLoopback' | 'allowPrivate'>;
  limits?: Partial<ApiLimits>;
  now?: number;
  logLevel?: string;
  /** Serve the async-completion routes (reportRun, appendRunLog, runLog) with REPORT_SECRET. */
  runs?: boolean;
}

export interface OpsApp {
  app: Hono;
  store: SqliteTaskStore;
  ownership: Ownership;
  clock: ManualClock;
  logs: LogCapture;
  metrics: Metrics;
  node: Xcron;
  dir: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The node createXcron (src/xcron.ts) builds from a config with the optional parts switched on,
 * started without its scheduler (the API answers and reports ready; nothing fires), on a manual
 * clock, its log captured.
 */
export async function createOpsApp(o: OpsAppOptions = {}): Promise<OpsApp> {
  const dir = mkdtempSync(join(tmpdir(), 'xcron-ops-'));
  const clock = new ManualClock(o.now ?? T0);
  const logs = new LogCapture(o.logLevel ?? 'trace');
  const d = o.destinations ?? {};
  const callback = {
    ...(d.denyCidrs ? { deny_cidrs: d.denyCidrs } : {}),
    ...(d.allowHosts ? { allow_hosts: d.allowHosts } : {}),
    ...(d.allowLoopback !== undefined ? { allow_loopback: d.allowLoopback } : {}),
    ...(d.allowPrivate !== undefined ? { allow_private: d.allowPrivate } : {}),
  };
  const limits = limitsConfig({ ...LIMITS, ...o.limits });
  const cfg = testConfig(dir, {
    node_id: 'ops-test',
    cluster: { slots: 16 },
    ...limits,
    callback: { ...(limits.callback as Record<string, unknown>), ...callback, ...(o.runs ? { report_secret: REPORT_SECRET } : {}) },
    auth: {
      tokens: o.tokens ?? [],
      public_metrics: o.publicMetrics ?? false,
      ...(o.rateLimit ? { rate_limit_per_sec: o.rateLimit.perSec, rate_limit_burst: o.rateLimit.burst } : {}),
    },
    scheduler: { misfire_threshold_ms: 5000 },
    // The async-completion routes are always served; with `runs`, with a known secret and small log caps.
    ...(o.runs ? { history: { log_max_lines: 50, log_max_bytes: 8192 } } : {}),
  });
  // Nothing runs behind the API: changes are told to no one (as the scheduler is not started).
  const quiet: Notifier = { taskChanged: () => undefined, taskRemoved: () => undefined, runQueued: () => undefined };
  const node = await createXcron(cfg, { clock, log: logs.log, processMetrics: false, notifier: () => quiet });
  await node.start({ scheduler: false });
  if (!(node.store instanceof SqliteTaskStore)) throw new Error('expected the store on the test thread');
  const close = async (): Promise<void> => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    app: node.app,
    store: node.store,
    ownership: node.ownership,
    clock,
    logs,
    metrics: node.metrics,
    node,
    dir,
    close,
    [Symbol.asyncDispose]: close,
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
export function docSnippet(name: string, doc = OPS_DOC): string {
  const md = readFileSync(doc, 'utf8');
  const at = md.indexOf(`<!-- snippet:${name} -->`);
  if (at < 0) throw new Error(`${doc} has no <!-- snippet:${name} --> marker`);
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(md.slice(at));
  if (!m) throw new Error(`no code block after snippet:${name}`);
  return m[1]!;
}
