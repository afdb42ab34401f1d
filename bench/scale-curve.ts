/**
 * `npm run bench:scale-curve`: does xcron's cost grow with the work that is due, or with the number
 * of tasks stored? One store grows through the sizes (default 10k, 100k, 1M, 5M standalone; 10k,
 * 100k, 1M in cluster mode) while the due load stays fixed: D (default 1,000) periodic `@every 1s`
 * tasks whose anchors (creation times) are spread evenly over one second, i.e. D fires/s spread
 * evenly; every other stored task is a one-shot somewhere in the next year (never due).
 *
 * Per size: the store is seeded up to the size with the server stopped, then the server is started
 * on it (a restart: ready time = spawn -> first 200 from /readyz), warms up (BENCH_CURVE_WARMUP_MS),
 * and the due ticks are measured over a window of BENCH_CURVE_SECONDS: fires/s (unique ticks with a
 * scheduled time in the window / window), lateness p50/p99 (receiver arrival - scheduled time),
 * missing/duplicates; server RSS (VmRSS) at the end of the window and its peak (VmHWM).
 * A "base" run with only the D due tasks comes first: bytes per stored task = (RSS at the size -
 * RSS of the base run) / (size - D) — the marginal cost of a stored task; RSS / size is printed too.
 *
 * Seeding. Standalone: SqliteTaskStore creates the schema and writes one reference task through its
 * own `create`; the bulk rows copy that row's columns (changing id, slot, format, fire time, body) in
 * 50,000-row transactions (like bench/scale.ts). Cluster: RedisTaskStore.create (the store's own Lua
 * script and key layout) with thousands of creates in flight (ioredis auto-pipelining). The D due
 * tasks go through the store's `create` in both modes.
 *
 * Cluster mode: BENCH_CURVE_CLUSTER_NODES nodes (default 1) on a redis-server the bench starts; the
 * nodes are stopped gracefully (SIGTERM hands the slots back) before each seeding and started again.
 * There the tasks live in Redis: Redis used_memory per stored task is printed next to the node's RSS.
 *
 * Targets: fires/s and lateness p99 flat within 10% of the smallest size (for lateness the receiver's
 * 1 ms clock resolution is allowed: |p99 - p99(smallest)| <= max(10%, 1 ms)); < 300 bytes of RSS per
 * stored task (marginal, checked at the largest size: at 10k the ±10 MB run-to-run RSS noise alone
 * is ±1 KB per task); ready < 10 s at the largest size.
 *
 * Env: BENCH_CURVE_MODES (standalone,cluster), BENCH_CURVE_SIZES (10000,100000,1000000,5000000),
 *      BENCH_CURVE_CLUSTER_SIZES (10000,100000,1000000), BENCH_CURVE_DUE (1000),
 *      BENCH_CURVE_SECONDS (20), BENCH_CURVE_WARMUP_MS (5000), BENCH_CURVE_CLUSTER_NODES (1).
 *      Quick run: BENCH_CURVE_SIZES=10000,100000 BENCH_CURVE_CLUSTER_SIZES=10000,100000 BENCH_CURVE_SECONDS=10
 */
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { nanoid } from 'nanoid';
import { pino } from 'pino';
import { slotOf } from '../src/cluster/index.js';
import { SqliteTaskStore } from '../src/store/sqlite.js';
import { RedisTaskStore } from '../src/store/redis.js';
import type { TaskStore } from '../src/store/types.js';
import { validateCreate, type Task } from '../src/task/index.js';
import { clusterEnv, type ClusterOptions } from './lib/cluster.js';
import {
  atMost,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  makeTempDir,
  memOf,
  removeTempDir,
  round1,
  round2,
  runStandalone,
  serverLogSummary,
  sleep,
  startServer,
  writeResult,
  type BenchResult,
  type Dist,
  type ServerHandle,
  type TargetCheck,
} from './lib/common.js';
import { Receiver, analyse } from './lib/receiver-client.js';
import { BenchRedis } from './lib/redis.js';

export const TARGET_BYTES_PER_TASK = 300;
export const TARGET_READY_MS = 10_000;
export const TARGET_FLAT = 0.1;
const SLOTS = 256;
const YEAR_MS = 365 * 86_400_000;
const LIMITS = { defaultTimezone: 'UTC', callbackBodyLimit: 65_536, pastGraceMs: 1000 };

function taskFrom(body: Record<string, unknown>, id: string, now: number): Task {
  const req = validateCreate(body, now, LIMITS);
  return {
    ...req.spec,
    id,
    slot: slotOf(id, SLOTS),
    state: 'active',
    create_time: now,
    update_time: now,
    next_fire_time: req.next_fire_time,
    last_fire_time: null,
    last_status: null,
    run_count: 0,
  };
}

const farTask = (id: string, at: number, url: string, i: number, now: number): Task => taskFrom({ type: 2, format: String(at), callback: { url, body: { i } } }, id, now);
/** A periodic `@every 1s` task anchored at `anchor` (its ticks: anchor + k s). */
const dueTask = (id: string, anchor: number, url: string, i: number): Task => taskFrom({ type: 1, format: '@every 1s', callback: { url, body: { due: i } } }, id, anchor);

/** The D due tasks: anchors spread evenly over one second. */
function dueTasks(d: number, url: string): Task[] {
  const base = Date.now() - 1000;
  return Array.from({ length: d }, (_, i) => dueTask(nanoid(), base + Math.floor((i * 1000) / d), url, i));
}

const fileMb = (f: string): number => {
  let total = 0;
  for (const s of ['', '-wal', '-shm']) {
    try {
      total += statSync(f + s).size;
    } catch {
      /* absent */
    }
  }
  return round1(total / 1048576);
};

/** Adds `count` far one-shots to the SQLite file in 50,000-row transactions shaped like a store-written row. */
async function seedSqlite(file: string, count: number, url: string): Promise<void> {
  if (count <= 0) return;
  const now = Date.now();
  const store = new SqliteTaskStore({ file, synchronous: 'normal' });
  const ref = farTask(nanoid(), now + 3_600_000 + Math.floor(Math.random() * YEAR_MS), url, -1, now);
  await store.create(ref);
  await store.close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const row = db.prepare('SELECT * FROM tasks WHERE id = ?').get(ref.id) as Record<string, unknown>;
  const cols = Object.keys(row);
  const spec = JSON.parse(String(row.spec)) as { callback: { body: unknown } };
  const insert = db.prepare(`INSERT INTO tasks (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  const BATCH = 50_000;
  const insertMany = db.transaction((ids: string[], from: number) => {
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j]!;
      const at = now + 3_600_000 + Math.floor(Math.random() * YEAR_MS);
      spec.callback.body = { i: from + j };
      insert.run({ ...row, id, slot: slotOf(id, SLOTS), format: String(at), next_fire_time: at, spec: JSON.stringify(spec), create_time: now, update_time: now });
    }
  });
  let last = performance.now();
  for (let from = 0; from < count - 1; from += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, count - 1 - from) }, () => nanoid()).sort();
    insertMany(ids, from);
    if (performance.now() - last > 10_000) {
      last = performance.now();
      console.log(`    … seeded ${fmt(from + ids.length)} of ${fmt(count)}`);
    }
  }
  db.close();
}

/** Adds `count` far one-shots through RedisTaskStore.create, `inFlight` at a time. */
async function seedRedis(store: TaskStore, count: number, url: string): Promise<void> {
  const now = Date.now();
  const ref = farTask(nanoid(), now + 3_600_000, url, -1, now);
  const CHUNK = 5000;
  let last = performance.now();
  for (let from = 0; from < count; from += CHUNK) {
    const n = Math.min(CHUNK, count - from);
    const ps: Promise<unknown>[] = [];
    for (let j = 0; j < n; j++) {
      const id = nanoid();
      const at = now + 3_600_000 + Math.floor(Math.random() * YEAR_MS);
      ps.push(store.create({ ...ref, id, slot: slotOf(id, SLOTS), format: String(at), next_fire_time: at, callback: { ...ref.callback, body: { i: from + j } } }));
    }
    await Promise.all(ps);
    if (performance.now() - last > 10_000) {
      last = performance.now();
      console.log(`    … seeded ${fmt(from + n)} of ${fmt(count)}`);
    }
  }
}

interface Point {
  mode: string;
  size: number;
  seed_s: number;
  db_mb?: number;
  redis_used_mb?: number;
  ready_ms: number;
  rss_ready_mb: number;
  rss_mb: number;
  peak_rss_mb: number;
  bytes_per_task_marginal: number | null;
  bytes_per_task_total: number;
  redis_bytes_per_task: number | null;
  fires_per_s: number;
  expected: number;
  missing: number;
  duplicates: number;
  lateness_ms: Dist;
  log_lines: number;
  /** Load average when the server was started for this size. */
  loadavg: number[];
}

async function measureWindow(
  server: { pids: number[] },
  receiver: Receiver,
  due: Task[],
  warmupMs: number,
  seconds: number,
): Promise<{ fires_per_s: number; expected: number; missing: number; duplicates: number; lateness_ms: Dist; rss_mb: number; peak_rss_mb: number }> {
  const W0 = Math.ceil((Date.now() + warmupMs) / 1000) * 1000;
  const W1 = W0 + seconds * 1000;
  const expected = new Set<string>();
  for (const t of due) {
    const phase = t.create_time % 1000;
    for (let at = W0 + ((phase - (W0 % 1000) + 1000) % 1000); at < W1; at += 1000) expected.add(`${t.id}:${at}`);
  }
  while (Date.now() < W0 - 300) await sleep(Math.min(500, W0 - 300 - Date.now()));
  await receiver.reset();
  while (Date.now() < W1 + 3000) await sleep(Math.min(500, W1 + 3000 - Date.now()));
  let rss = 0;
  let peak = 0;
  for (const pid of server.pids) {
    const m = memOf(pid);
    rss += m?.rss_mb ?? 0;
    peak += m?.hwm_mb ?? 0;
  }
  const a = analyse(await receiver.collect(), expected);
  return { fires_per_s: round1(a.unique / seconds), expected: expected.size, missing: a.missing, duplicates: a.duplicates, lateness_ms: distOf(a.lateness), rss_mb: round1(rss), peak_rss_mb: round1(peak) };
}

function printPoint(p: Point): void {
  const size = p.size === 0 ? 'base' : fmt(p.size);
  const storeInfo = p.db_mb !== undefined ? `db ${fmt(p.db_mb, 1)} MB` : `redis used ${fmt(p.redis_used_mb ?? NaN, 1)} MB`;
  console.log(`  ${p.mode} ${size} (loadavg ${p.loadavg.join(' ')}): seeded in ${fmt(p.seed_s, 1)} s (${storeInfo})`);
  line('    ready after restart', `${fmt(p.ready_ms)} ms`);
  line('    RSS after ready / end / peak', `${fmt(p.rss_ready_mb, 1)} / ${fmt(p.rss_mb, 1)} / ${fmt(p.peak_rss_mb, 1)} MB`);
  line(
    '    bytes per stored task',
    `${p.bytes_per_task_marginal === null ? 'n/a' : fmt(p.bytes_per_task_marginal)} marginal (RSS - base) / ${fmt(p.bytes_per_task_total)} RSS/size${p.redis_bytes_per_task !== null ? `; redis ${fmt(p.redis_bytes_per_task)} B/task` : ''}`,
  );
  line('    fires/s', `${fmt(p.fires_per_s, 1)} (expected ${fmt(p.expected)} ticks, missing ${p.missing}, duplicates ${p.duplicates})`);
  line('    lateness p50 / p99 / max', `${fmt(p.lateness_ms.p50)} / ${fmt(p.lateness_ms.p99)} / ${fmt(p.lateness_ms.max)} ms`);
}

const parseSizes = (name: string, dflt: string): number[] =>
  (process.env[name] ?? dflt)
    .split(',')
    .map((s) => Number(s.trim().replace(/_/g, '')))
    .filter((n) => Number.isFinite(n) && n > 0)
    .sort((a, b) => a - b);

async function curveStandalone(sizes: number[], d: number, receiver: Receiver, warmupMs: number, seconds: number): Promise<Point[]> {
  const dir = makeTempDir('curve-standalone');
  const file = join(dir, 'xcron.db');
  const points: Point[] = [];
  let server: ServerHandle | null = null;
  try {
    const store = new SqliteTaskStore({ file, synchronous: 'normal' });
    const due = dueTasks(d, receiver.url);
    for (const t of due) await store.create(t);
    await store.close();
    let stored = d;
    let baseRss: number | null = null;
    for (const size of [0, ...sizes]) {
      const t0 = performance.now();
      if (size > stored) {
        await seedSqlite(file, size - stored, receiver.url);
        stored = size;
      }
      const seedS = (performance.now() - t0) / 1000;
      const la = loadavg().map(round2);
      server = await startServer({ name: `curve-standalone-${size}`, dataDir: dir, readyTimeoutMs: 600_000 });
      const rssReady = memOf(server.pid)?.rss_mb ?? NaN;
      const readyMs = server.readyMs;
      const w = await measureWindow({ pids: [server.pid] }, receiver, due, warmupMs, seconds);
      const log = serverLogSummary(server.logFile);
      await server.stop();
      server = null;
      const n = Math.max(d, size);
      if (size === 0) baseRss = w.rss_mb;
      const p: Point = {
        mode: 'standalone',
        size,
        seed_s: round1(seedS),
        db_mb: fileMb(file),
        ready_ms: Math.round(readyMs),
        rss_ready_mb: rssReady,
        rss_mb: w.rss_mb,
        peak_rss_mb: w.peak_rss_mb,
        bytes_per_task_marginal: size > 0 && baseRss !== null ? Math.round(((w.rss_mb - baseRss) * 1048576) / (size - d)) : null,
        bytes_per_task_total: Math.round((w.rss_mb * 1048576) / n),
        redis_bytes_per_task: null,
        fires_per_s: w.fires_per_s,
        expected: w.expected,
        missing: w.missing,
        duplicates: w.duplicates,
        lateness_ms: w.lateness_ms,
        log_lines: log.lines,
        loadavg: la,
      };
      points.push(p);
      printPoint(p);
    }
    return points;
  } finally {
    if (server) await server.stop().catch(() => undefined);
    removeTempDir(dir);
  }
}

async function curveCluster(sizes: number[], d: number, receiver: Receiver, warmupMs: number, seconds: number, nodesN: number): Promise<Point[]> {
  const redis = await BenchRedis.start({ name: 'curve' });
  const points: Point[] = [];
  const dirs = Array.from({ length: nodesN }, (_, i) => makeTempDir(`curve-node${i + 1}`));
  let servers: ServerHandle[] = [];
  const co: ClusterOptions = { redisUrl: redis.url, prefix: 'curve', name: 'curve' };
  try {
    const store = new RedisTaskStore({ client: redis.client, prefix: 'curve', slots: SLOTS, log: pino({ level: 'silent' }), ownsClient: false });
    const due = dueTasks(d, receiver.url);
    for (const t of due) await store.create(t);
    let stored = d;
    let baseRss: number | null = null;
    let baseRedis: number | null = null;
    for (const size of [0, ...sizes]) {
      const t0 = performance.now();
      if (size > stored) {
        await seedRedis(store, size - stored, receiver.url);
        stored = size;
      }
      const seedS = (performance.now() - t0) / 1000;
      const used = await redis.usedMemory();
      const la = loadavg().map(round2);
      const tStart = performance.now();
      servers = await Promise.all(dirs.map((dir, i) => startServer({ name: `curve-cluster-${size}-n${i + 1}`, dataDir: dir, env: clusterEnv(co, `n${i + 1}`), readyTimeoutMs: 600_000 })));
      const readyMs = performance.now() - tStart;
      const rssReady = servers.reduce((s, x) => s + (memOf(x.pid)?.rss_mb ?? 0), 0);
      const w = await measureWindow({ pids: servers.map((s) => s.pid) }, receiver, due, warmupMs, seconds);
      const logLines = servers.reduce((s, x) => s + serverLogSummary(x.logFile).lines, 0);
      await Promise.all(servers.map((s) => s.stop()));
      servers = [];
      const n = Math.max(d, size);
      if (size === 0) {
        baseRss = w.rss_mb;
        baseRedis = used;
      }
      const p: Point = {
        mode: `cluster-${nodesN}`,
        size,
        seed_s: round1(seedS),
        redis_used_mb: round1(used / 1048576),
        ready_ms: Math.round(readyMs),
        rss_ready_mb: round1(rssReady),
        rss_mb: w.rss_mb,
        peak_rss_mb: w.peak_rss_mb,
        bytes_per_task_marginal: size > 0 && baseRss !== null ? Math.round(((w.rss_mb - baseRss) * 1048576) / (size - d)) : null,
        bytes_per_task_total: Math.round((w.rss_mb * 1048576) / n),
        redis_bytes_per_task: size > 0 && baseRedis !== null ? Math.round((used - baseRedis) / (size - d)) : null,
        fires_per_s: w.fires_per_s,
        expected: w.expected,
        missing: w.missing,
        duplicates: w.duplicates,
        lateness_ms: w.lateness_ms,
        log_lines: logLines,
        loadavg: la,
      };
      points.push(p);
      printPoint(p);
    }
    return points;
  } finally {
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    await redis.stop().catch(() => undefined);
    for (const dir of dirs) removeTempDir(dir);
  }
}

function checks(points: Point[]): TargetCheck[] {
  const sized = points.filter((p) => p.size > 0);
  if (sized.length === 0) return [];
  const first = sized[0]!;
  const largest = sized[sized.length - 1]!;
  const out: TargetCheck[] = [];
  const mode = first.mode;
  let worstFps = 0;
  let worstLate = 0;
  for (const p of sized) {
    worstFps = Math.max(worstFps, Math.abs(p.fires_per_s / first.fires_per_s - 1));
    const allowed = Math.max(first.lateness_ms.p99 * TARGET_FLAT, 1);
    worstLate = Math.max(worstLate, Math.abs(p.lateness_ms.p99 - first.lateness_ms.p99) / allowed);
  }
  out.push({ metric: `${mode} fires/s max deviation from ${fmt(first.size)}`, value: round2(worstFps * 100), target: `<= ${TARGET_FLAT * 100} %`, pass: worstFps <= TARGET_FLAT });
  out.push({
    metric: `${mode} lateness p99 deviation / allowance`,
    value: round2(worstLate),
    target: '<= 1 (max(10%, 1 ms))',
    pass: worstLate <= 1,
  });
  // At the largest size: at small sizes the RSS noise (±10 MB between runs) swamps the per-task cost.
  out.push(atMost(`${mode} RSS bytes per stored task at ${fmt(largest.size)} (marginal)`, largest.bytes_per_task_marginal ?? NaN, TARGET_BYTES_PER_TASK, 'B'));
  out.push(atMost(`${mode} ready ms at ${fmt(largest.size)}`, largest.ready_ms, TARGET_READY_MS, 'ms'));
  return out;
}

export async function runScaleCurve(): Promise<BenchResult> {
  const modes = (process.env.BENCH_CURVE_MODES ?? 'standalone,cluster').split(',').map((s) => s.trim());
  const sizes = parseSizes('BENCH_CURVE_SIZES', '10000,100000,1000000,5000000');
  const csizes = parseSizes('BENCH_CURVE_CLUSTER_SIZES', '10000,100000,1000000');
  const d = envInt('BENCH_CURVE_DUE', 1000);
  const seconds = envInt('BENCH_CURVE_SECONDS', 20);
  const warmupMs = envInt('BENCH_CURVE_WARMUP_MS', 5000);
  const nodesN = Math.max(1, envInt('BENCH_CURVE_CLUSTER_NODES', 1));
  const started = Date.now();
  const m0 = machine();
  header('scale-curve', `${fmt(d)} fires/s due while the store holds ${sizes.map((s) => fmt(s)).join(' / ')} tasks (cluster: ${csizes.map((s) => fmt(s)).join(' / ')})`);
  const notes: string[] = [];
  let receiver: Receiver | null = null;
  const points: Point[] = [];
  const targets: TargetCheck[] = [];
  try {
    receiver = await Receiver.start();
    if (modes.includes('standalone')) {
      const ps = await curveStandalone(sizes, d, receiver, warmupMs, seconds);
      points.push(...ps);
      targets.push(...checks(ps));
    }
    if (modes.includes('cluster')) {
      const ps = await curveCluster(csizes, d, receiver, warmupMs, seconds, nodesN);
      points.push(...ps);
      targets.push(...checks(ps));
    }
    console.log('\n  summary');
    console.log(`    ${'mode'.padEnd(12)} ${'size'.padStart(10)} ${'ready ms'.padStart(9)} ${'RSS MB'.padStart(8)} ${'B/task'.padStart(7)} ${'redis B/task'.padStart(12)} ${'fires/s'.padStart(8)} ${'p50'.padStart(5)} ${'p99'.padStart(5)}  loadavg`);
    for (const p of points) {
      console.log(
        `    ${p.mode.padEnd(12)} ${(p.size === 0 ? 'base' : fmt(p.size)).padStart(10)} ${fmt(p.ready_ms).padStart(9)} ${fmt(p.rss_mb, 1).padStart(8)} ${(p.bytes_per_task_marginal === null ? '-' : fmt(p.bytes_per_task_marginal)).padStart(7)} ${(p.redis_bytes_per_task === null ? '-' : fmt(p.redis_bytes_per_task)).padStart(12)} ${fmt(p.fires_per_s, 1).padStart(8)} ${fmt(p.lateness_ms.p50).padStart(5)} ${fmt(p.lateness_ms.p99).padStart(5)}  ${p.loadavg.join(' ')}`,
      );
    }
    console.log('  targets');
    for (const t of targets) console.log(`    ${t.metric.padEnd(52)} ${fmt(t.value, 2).padStart(10)}   target ${t.target.padEnd(22)} ${t.pass ? 'PASS' : 'MISS'}`);
    for (const p of points) {
      if (p.missing > 0 || p.duplicates > 0) notes.push(`${p.mode} ${p.size}: ${p.missing} missing, ${p.duplicates} duplicates`);
      if (p.log_lines > 0) notes.push(`${p.mode} ${p.size}: server logged ${p.log_lines} warn/error lines`);
    }
    const r: BenchResult = {
      // A cluster-only run keeps the standalone curve's file.
      name: modes.includes('standalone') ? 'scale-curve' : 'scale-curve-cluster',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: m0,
      config: { modes, sizes, cluster_sizes: csizes, due: d, due_format: '@every 1s (anchors spread over 1 s)', seconds, warmup_ms: warmupMs, cluster_nodes: nodesN },
      figures: { points },
      targets,
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    if (receiver) await receiver.stop().catch(() => undefined);
  }
}

if (isMain(import.meta.url)) runStandalone(runScaleCurve);
