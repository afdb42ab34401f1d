/**
 * startup-check: how long the store's start-up check ([store] startup_check) takes on a large
 * database. Seeds N tasks (default 1,000,000) and R finished runs (default 1,000,000), then times
 * PRAGMA quick_check and PRAGMA integrity_check on the file (each on its own connection, as the
 * server runs them), and the whole open (check + schema + epoch) the server does before it listens.
 *
 * Seeding: SqliteTaskStore creates the schema and one reference task and run through its own
 * methods; the bulk rows copy those rows' columns (ids, slot, times and body change) in
 * 50,000-row transactions. With BENCH_CHECK_DROP_CACHES=1 the OS page cache is dropped before the
 * "cold" measurements (needs write access to /proc/sys/vm/drop_caches; it slows every process on
 * the machine for a while); otherwise every figure is warm. Each check's CPU time is printed next
 * to its wall time: on a busy machine the CPU time is the steadier figure.
 *
 * Env: BENCH_CHECK_TASKS (1000000), BENCH_CHECK_RUNS (1000000), BENCH_CHECK_DROP_CACHES (off),
 * BENCH_CHECK_FILE (seed into this file and keep it; an existing file is reused as it is).
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { nanoid } from 'nanoid';
import { slotOf } from '../src/cluster/index.js';
import { checkDatabaseFile } from '../src/store/sqlite-check.js';
import { openSqliteStore } from '../src/store/sqlite-open.js';
import { SqliteTaskStore } from '../src/store/sqlite.js';
import { validateCreate, type Task } from '../src/task/index.js';
import { envFlag, envInt, fmt, header, isMain, line, machine, makeTempDir, removeTempDir, round1, runStandalone, writeResult, type BenchResult } from './lib/common.js';

const SLOTS = 256;
const BATCH = 50_000;

function referenceTask(id: string, now: number): Task {
  const req = validateCreate({ type: 1, format: '*/5 * * * *', callback: { url: 'http://127.0.0.1:9/hook', body: { order: 1, kind: 'reference' } } }, now, {
    defaultTimezone: 'UTC',
    callbackBodyLimit: 65_536,
    pastGraceMs: 1000,
  });
  return { ...req.spec, id, slot: slotOf(id, SLOTS), state: 'active', create_time: now, update_time: now, next_fire_time: req.next_fire_time, last_fire_time: null, last_status: null, run_count: 0 };
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

/** Drops the OS page cache when asked to and allowed; false otherwise (the next read is then warm). */
function dropPageCache(): boolean {
  if (!envFlag('BENCH_CHECK_DROP_CACHES')) return false;
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

async function seed(file: string, tasks: number, runs: number): Promise<number> {
  const t0 = performance.now();
  const now = Date.now();
  const store = new SqliteTaskStore({ file, synchronous: 'normal' });
  const refId = nanoid();
  await store.create(referenceTask(refId, now));
  await store.commitFires([{ task_id: refId, slot: slotOf(refId, SLOTS), token: store.claimEpoch(), expected: (await store.get(refId))!.next_fire_time!, next: now + 600_000, now, run: { run_id: `${refId}:${now}`, node: 'bench', status: 'PENDING', error: null } }]);
  await store.close();

  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const refTask = db.prepare('SELECT * FROM tasks WHERE id = ?').get(refId) as Record<string, unknown>;
  const refRun = db.prepare('SELECT * FROM runs WHERE task_id = ?').get(refId) as Record<string, unknown> | undefined;
  if (!refRun) throw new Error('the reference fire did not write a run');
  const taskCols = Object.keys(refTask);
  const runCols = Object.keys(refRun);
  const insTask = db.prepare(`INSERT INTO tasks (${taskCols.join(', ')}) VALUES (${taskCols.map((c) => `@${c}`).join(', ')})`);
  const insRun = db.prepare(`INSERT INTO runs (${runCols.join(', ')}) VALUES (${runCols.map((c) => `@${c}`).join(', ')})`);
  const spec = JSON.parse(String(refTask.spec)) as { callback: { body: unknown } };
  const ids: string[] = [];
  for (let i = 0; i < tasks - 1; i++) ids.push(nanoid());
  ids.sort();
  const many = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const id = ids[i]!;
      spec.callback.body = { order: i, kind: 'bench' };
      insTask.run({ ...refTask, id, slot: slotOf(id, SLOTS), spec: JSON.stringify(spec), next_fire_time: now + 60_000 + (i % 86_400) * 1000 });
      if (i < runs - 1) {
        const at = now - 60_000 - i;
        insRun.run({ ...refRun, run_id: `${id}:${at}`, task_id: id, slot: slotOf(id, SLOTS), scheduled_time: at, start_time: at, end_time: at + 12, attempts: 1, status: 'SUCCESS', http_status: 200, duration_ms: 12, created: at });
      }
    }
  });
  let last = performance.now();
  for (let from = 0; from < ids.length; from += BATCH) {
    many(from, Math.min(ids.length, from + BATCH));
    if (performance.now() - last > 5000) {
      last = performance.now();
      console.log(`  … seeded ${fmt(from + BATCH)} tasks`);
    }
  }
  db.close();
  return performance.now() - t0;
}

export async function runStartupCheck(): Promise<BenchResult> {
  const N = envInt('BENCH_CHECK_TASKS', 1_000_000);
  const R = Math.min(N, envInt('BENCH_CHECK_RUNS', 1_000_000));
  const started = Date.now();
  header('startup-check', `PRAGMA quick_check / integrity_check on ${fmt(N)} tasks and ${fmt(R)} runs`);
  const kept = process.env.BENCH_CHECK_FILE;
  const dir = kept ? null : makeTempDir('startup-check');
  const file = kept ?? join(dir!, 'xcron.db');
  const notes: string[] = [];
  try {
    let seedMs = 0;
    if (kept && existsSync(kept)) {
      notes.push(`reused ${kept} as it was (BENCH_CHECK_TASKS and BENCH_CHECK_RUNS are those it was seeded with)`);
    } else {
      seedMs = await seed(file, N, R);
    }
    const sizeMb = fileMb(file);
    line('seeded', `${fmt(N)} tasks, ${fmt(R)} runs in ${fmt(seedMs / 1000, 1)} s; file ${fmt(sizeMb, 1)} MB`);

    const cold = dropPageCache();
    if (!cold) notes.push('the page cache was not dropped (BENCH_CHECK_DROP_CACHES unset, or no write access to /proc/sys/vm/drop_caches): every figure is with the file in the page cache');
    const time = (mode: 'quick' | 'full'): { ms: number; cpuMs: number } => {
      const c0 = process.cpuUsage();
      const r = checkDatabaseFile(file, mode);
      const c = process.cpuUsage(c0);
      if (!r?.ok) throw new Error(`the ${mode} check failed on a healthy file: ${JSON.stringify(r)}`);
      return { ms: r.ms, cpuMs: Math.round((c.user + c.system) / 1000) };
    };
    const show = (t: { ms: number; cpuMs: number }): string => `${fmt(t.ms)} ms (CPU ${fmt(t.cpuMs)} ms)`;
    const median = (xs: { ms: number; cpuMs: number }[]): { ms: number; cpuMs: number } => [...xs].sort((a, b) => a.ms - b.ms)[1]!;
    const quickFirst = time('quick');
    line(`quick_check (${cold ? 'cold cache' : 'first'})`, show(quickFirst));
    const quickM = median([time('quick'), time('quick'), time('quick')]);
    line('quick_check (warm, median of 3)', show(quickM));
    const fullCold = dropPageCache() ? time('full') : null;
    if (fullCold) line('integrity_check (cold cache)', show(fullCold));
    const fullM = median([time('full'), time('full'), time('full')]);
    line('integrity_check (warm, median of 3)', show(fullM));
    const t0 = performance.now();
    const opened = openSqliteStore({ file, synchronous: 'normal', startupCheck: 'quick' }, true);
    const openMs = performance.now() - t0;
    await opened.store.close();
    const t1 = performance.now();
    const unchecked = openSqliteStore({ file, synchronous: 'normal', startupCheck: 'off' }, true);
    const offMs = performance.now() - t1;
    await unchecked.store.close();
    line('store open with startup_check = quick', `${fmt(openMs)} ms`);
    line('store open with startup_check = off', `${fmt(offMs)} ms`);

    const r: BenchResult = {
      name: 'startup-check',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: machine(),
      config: { tasks: N, runs: R },
      figures: {
        file_mb: sizeMb,
        seed_ms: Math.round(seedMs),
        page_cache_dropped: cold,
        quick_check_first_ms: quickFirst.ms,
        quick_check_ms: quickM.ms,
        quick_check_cpu_ms: quickM.cpuMs,
        integrity_check_cold_ms: fullCold?.ms ?? null,
        integrity_check_ms: fullM.ms,
        integrity_check_cpu_ms: fullM.cpuMs,
        open_quick_ms: Math.round(openMs),
        open_off_ms: Math.round(offMs),
      },
      targets: [],
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    if (dir) removeTempDir(dir);
  }
}

if (isMain(import.meta.url)) runStandalone(runStartupCheck);
