/**
 * (d) scale: a store holding N tasks (default 1,000,000): N - D one-shots spread over the next year
 * and D (default 1,000) due a few seconds after the server is spawned. Measures the server's ready
 * time (spawn -> first 200 from /readyz), its RSS after ready and after the due ones fired
 * (/proc/<pid>/status VmRSS, VmHWM = peak), and that exactly the due ones fire.
 * Targets: ready <= 5 s, RSS <= 400 MB.
 *
 * Seeding: SqliteTaskStore creates the schema and one reference task through its own `create`; the
 * bulk rows copy that reference row's columns (only id, slot, format, times and the body change) in
 * 50,000-row transactions, so the seed follows the store's schema; a seeded row is read back through
 * SqliteTaskStore.get and checked. The D due tasks are created through SqliteTaskStore.create.
 *
 * Env: BENCH_SCALE_TASKS (1000000), BENCH_SCALE_DUE (1000), BENCH_SCALE_DUE_LEAD_MS (10000).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { nanoid } from 'nanoid';
import { request } from 'undici';
import { slotOf } from '../src/cluster/index.js';
import { SqliteTaskStore } from '../src/store/sqlite.js';
import { validateCreate, type Task } from '../src/task/index.js';
import {
  atMost,
  cpuSecondsOf,
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
  runStandalone,
  serverLogSummary,
  sleep,
  startServer,
  writeResult,
  type BenchResult,
  type ServerHandle,
} from './lib/common.js';
import { reportProfile } from './lib/profile.js';
import { Receiver, analyse } from './lib/receiver-client.js';

export const TARGET_RSS_MB = 400;
export const TARGET_READY_MS = 5000;
const SLOTS = 256; // the server's default cluster.slots
const YEAR_MS = 365 * 86_400_000;

/**
 * A one-shot Task built the way POST /xcron/createTask builds it (validateCreate + the same
 * bookkeeping fields), so the seed keeps up with changes to the Task type.
 */
function taskFor(id: string, at: number, url: string, i: number, now: number): Task {
  const req = validateCreate({ type: 2, format: String(at), callback: { url, body: { i } } }, now, {
    defaultTimezone: 'UTC',
    callbackBodyLimit: 65_536,
    pastGraceMs: 1000,
  });
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

/** JSON with sorted keys, to compare objects regardless of key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
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

/** Bulk-seeds `far` one-shot tasks spread over the next year. Returns a sample of seeded tasks. */
async function seedFar(file: string, far: number, url: string): Promise<{ ms: number; sample: Task[] }> {
  const t0 = performance.now();
  const now = Date.now();
  // 1. schema + a reference row written by the store itself
  const store = new SqliteTaskStore({ file, synchronous: 'normal' });
  const refId = nanoid();
  const refTask = taskFor(refId, now + 3_600_000 + Math.floor(Math.random() * YEAR_MS), url, -1, now);
  await store.create(refTask);
  await store.close();

  // 2. bulk rows shaped like the reference row
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const ref = db.prepare('SELECT * FROM tasks WHERE id = ?').get(refId) as Record<string, unknown>;
  const cols = Object.keys(ref);
  const refSpec = JSON.parse(String(ref.spec)) as { callback: { body: unknown } };
  const insert = db.prepare(`INSERT INTO tasks (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`);
  const ids: string[] = [];
  for (let i = 0; i < far - 1; i++) ids.push(nanoid());
  ids.sort(); // primary-key order: faster B-tree appends (fire times stay random)
  const sampleIdx = new Set([0, Math.floor(ids.length / 2), ids.length - 1]);
  const sample: Task[] = [refTask];
  const BATCH = 50_000;
  const insertMany = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const id = ids[i]!;
      const at = now + 3_600_000 + Math.floor(Math.random() * YEAR_MS);
      refSpec.callback.body = { i };
      const row = { ...ref, id, slot: slotOf(id, SLOTS), format: String(at), next_fire_time: at, spec: JSON.stringify(refSpec), create_time: now, update_time: now };
      insert.run(row);
      if (sampleIdx.has(i)) sample.push(taskFor(id, at, url, i, now));
    }
  });
  let lastReport = performance.now();
  for (let from = 0; from < ids.length; from += BATCH) {
    insertMany(from, Math.min(ids.length, from + BATCH));
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      console.log(`  … seeded ${fmt(from + BATCH)} tasks`);
    }
  }
  db.close(); // checkpoints the WAL into the main file
  return { ms: performance.now() - t0, sample };
}

export async function runScale(): Promise<BenchResult> {
  const N = envInt('BENCH_SCALE_TASKS', 1_000_000);
  const D = Math.min(N, envInt('BENCH_SCALE_DUE', 1000));
  const dueLeadMs = envInt('BENCH_SCALE_DUE_LEAD_MS', 10_000);
  const started = Date.now();
  header('scale', `${fmt(N)} stored tasks (${fmt(N - D)} over the next year, ${fmt(D)} due ~${dueLeadMs / 1000} s after spawn)`);
  const notes: string[] = [];
  const dir = makeTempDir('scale');
  const file = join(dir, 'xcron.db');
  let server: ServerHandle | null = null;
  let receiver: Receiver | null = null;
  try {
    receiver = await Receiver.start();
    let seedMs = 0;
    let sample: Task[] = [];
    if (N - D > 0) {
      const s = await seedFar(file, N - D, receiver.url);
      seedMs = s.ms;
      sample = s.sample;
    }

    // The due-soon tasks, through the store's own create, right before the spawn.
    const store = new SqliteTaskStore({ file, synchronous: 'normal' });
    for (const t of sample) {
      const got = await store.get(t.id);
      if (!got || canonical(got) !== canonical(t)) {
        throw new Error(`seeded task ${t.id} does not read back as written:\n want ${JSON.stringify(t)}\n got  ${JSON.stringify(got)}`);
      }
    }
    const t1 = Date.now();
    const dueAt: number[] = [];
    const expected = new Set<string>();
    const firstDue = t1 + dueLeadMs;
    for (let i = 0; i < D; i++) {
      const at = firstDue + Math.floor((i * 1000) / D);
      const t = taskFor(nanoid(), at, receiver.url, i, t1);
      await store.create(t);
      dueAt.push(at);
      expected.add(`${t.id}:${at}`);
    }
    await store.close();
    seedMs += Date.now() - t1;
    const dbMb = fileMb(file);
    line('seeded', `${fmt(N)} tasks in ${fmt(seedMs / 1000, 1)} s; database ${fmt(dbMb, 1)} MB`);

    server = await startServer({ name: 'scale', dataDir: dir, readyTimeoutMs: 300_000 });
    const spawnToFirstDue = firstDue - Date.now();
    const memReady = memOf(server.pid);
    const cpuReady = cpuSecondsOf(server.pid);
    const readyCheck = atMost('ready ms', Math.round(server.readyMs), TARGET_READY_MS, 'ms');
    line('ready (spawn -> /readyz 200)', `${fmt(server.readyMs)} ms`, readyCheck);
    const rssReadyCheck = atMost('RSS after ready (MB)', memReady?.rss_mb ?? NaN, TARGET_RSS_MB, 'MB');
    line('server RSS after ready', `${fmt(memReady?.rss_mb ?? NaN, 1)} MB`, rssReadyCheck);
    if (spawnToFirstDue < 0) notes.push(`the server became ready ${-spawnToFirstDue} ms after the first due task: those fired late`);

    // A far task is served from the seeded data.
    let queryOk = false;
    const probe = sample[1] ?? sample[0];
    if (probe) {
      const res = await request(`${server.baseUrl}/xcron/queryTask?task_id=${probe.id}`);
      const body = (await res.body.json()) as { code: number; data?: { next_fire_time: number; state: string } };
      queryOk = res.statusCode === 200 && body.code === 0 && body.data?.next_fire_time === probe.next_fire_time && body.data.state === 'active';
      line('queryTask on a seeded task', queryOk ? 'ok' : `unexpected: HTTP ${res.statusCode} ${JSON.stringify(body).slice(0, 200)}`);
      if (!queryOk) notes.push('queryTask on a seeded task did not return it as seeded');
    }

    const lastDue = dueAt[dueAt.length - 1] ?? Date.now();
    const stats = await receiver.waitFor(expected.size, lastDue + 60_000, 2000, (s) => console.log(`  … ${fmt(s.count)} callbacks so far`));
    const memFired = memOf(server.pid);
    const cpuFired = cpuSecondsOf(server.pid);
    const rec = await receiver.collect();
    const a = analyse(rec, expected);
    const late = distOf(a.lateness);
    line('due tasks fired (unique)', `${fmt(a.unique)} of ${fmt(expected.size)} (${fmt(stats.count)} deliveries)`);
    line('duplicates / missing / unexpected', `${fmt(a.duplicates)} / ${fmt(a.missing)} / ${fmt(a.unexpected)}`);
    line('lateness of due tasks p50/p99/max', `${fmt(late.p50)} / ${fmt(late.p99)} / ${fmt(late.max)} ms`);
    const rssFiredCheck = atMost('RSS after due fired (MB)', memFired?.rss_mb ?? NaN, TARGET_RSS_MB, 'MB');
    line('server RSS after the due ones fired', `${fmt(memFired?.rss_mb ?? NaN, 1)} MB`, rssFiredCheck);
    const peakCheck = atMost('peak RSS VmHWM (MB)', memFired?.hwm_mb ?? NaN, TARGET_RSS_MB, 'MB');
    line('server peak RSS (VmHWM)', `${fmt(memFired?.hwm_mb ?? NaN, 1)} MB`, peakCheck);
    line('server CPU: to ready / to fired', `${fmt(cpuReady ?? NaN, 2)} s / ${fmt(cpuFired ?? NaN, 2)} s`);
    if (a.missing > 0) notes.push(`${a.missing} due tasks never fired`);
    if (a.unexpected > 0) notes.push(`${a.unexpected} callbacks for tasks that were not due`);

    const logFile = server.logFile;
    const tStop = performance.now();
    await server.stop();
    const stopMs = performance.now() - tStop;
    server = null;
    line('server stop (SIGTERM -> exit)', `${fmt(stopMs)} ms`);
    const log = serverLogSummary(logFile);
    if (log.lines > 0) line('server warn/error log lines', `${log.lines}: ${log.top.map((t) => `${t.count}x ${t.msg}`).join('; ')}`);
    const profile = reportProfile('scale');

    const r: BenchResult = {
      name: 'scale',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: machine(),
      config: { tasks: N, due: D, due_lead_ms: dueLeadMs },
      figures: {
        seed_s: round1(seedMs / 1000),
        db_mb: dbMb,
        ready_ms: readyCheck.value,
        rss_after_ready_mb: memReady?.rss_mb ?? null,
        rss_after_fired_mb: memFired?.rss_mb ?? null,
        peak_rss_mb: memFired?.hwm_mb ?? null,
        server_cpu_s_to_ready: cpuReady,
        server_cpu_s_to_fired: cpuFired,
        query_seeded_ok: queryOk,
        due_fired_unique: a.unique,
        duplicates: a.duplicates,
        missing: a.missing,
        unexpected: a.unexpected,
        lateness_ms: late,
        stop_ms: Math.round(stopMs),
        server_log_lines: log.lines,
        profile: profile ? { window_us: profile.window, hot: profile.hot.slice(0, 10), by_package: profile.by_package } : undefined,
      },
      targets: [readyCheck, rssReadyCheck, rssFiredCheck, peakCheck],
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    if (server) await server.stop().catch(() => undefined);
    if (receiver) await receiver.stop().catch(() => undefined);
    await sleep(0);
    removeTempDir(dir);
  }
}

if (isMain(import.meta.url)) runStandalone(runScale);
