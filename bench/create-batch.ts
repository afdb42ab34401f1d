/**
 * Batch create throughput: C concurrent clients (default 4) each loop POST /xcron/createTasks with
 * a batch of N one-shot tasks (default 1,000; 30-395 days ahead, so none fires), for a 1 s warm-up
 * and then a measured window (default 10 s). Tasks stored by batches that complete inside the
 * window count. Run once per store: SQLite (a standalone server) and Redis (one cluster node on its
 * own redis-server, AOF with appendfsync everysec). Target: >= 100,000 tasks/s.
 *
 * Env: BENCH_CREATE_BATCH_CLIENTS (4), BENCH_CREATE_BATCH_SIZE (1000), BENCH_CREATE_BATCH_SECONDS
 *      (10), BENCH_CREATE_BATCH_WARMUP_MS (1000), BENCH_CREATE_BATCH_STORES (sqlite,redis).
 */
import { startNode, stopNode, waitSettled } from './lib/cluster.js';
import {
  atLeast,
  cpuSecondsOf,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  makeTempDir,
  removeTempDir,
  round1,
  runStandalone,
  serverPool,
  startServer,
  writeResult,
  type BenchResult,
  type ServerHandle,
  type TargetCheck,
} from './lib/common.js';
import { BenchRedis } from './lib/redis.js';

export const TARGET_TASKS_PER_S = 100_000;

interface Window {
  stored: number;
  failed: number;
  batches: number;
  latencyMs: number[];
  errors: Map<string, number>;
  serverCpuS: number;
}

/** Posts batches from `clients` loops; counts the batches that complete inside the window. */
async function drive(baseUrl: string, cpuPids: number[], o: { clients: number; size: number; seconds: number; warmupMs: number }): Promise<Window> {
  const pool = serverPool(baseUrl, o.clients);
  const base = Date.now() + 30 * 86_400_000;
  let seq = 0;
  const batchBody = (): string => {
    const tasks: string[] = [];
    for (let i = 0; i < o.size; i++) {
      const at = base + Math.floor(Math.random() * 365 * 86_400_000);
      tasks.push(`{"type":2,"format":"${at}","callback":{"url":"http://127.0.0.1:9/never","body":{"i":${seq++}}}}`);
    }
    return `{"tasks":[${tasks.join(',')}]}`;
  };
  const w: Window = { stored: 0, failed: 0, batches: 0, latencyMs: [], errors: new Map(), serverCpuS: NaN };
  const t0 = performance.now();
  const from = t0 + o.warmupMs;
  const to = from + o.seconds * 1000;
  const cpu = (): number => cpuPids.reduce((s, p) => s + (cpuSecondsOf(p) ?? NaN), 0);
  let cpu0 = NaN;
  let cpu1 = NaN;
  const mark = (t: number): void => {
    if (Number.isNaN(cpu0) && t >= from) cpu0 = cpu();
    if (Number.isNaN(cpu1) && t >= to) cpu1 = cpu();
  };
  const loop = async (): Promise<void> => {
    for (;;) {
      const body = batchBody(); // built before the clock starts for this batch
      const s = performance.now();
      mark(s);
      if (s >= to) return;
      let stored = 0;
      let failed = 0;
      let error: string | null = null;
      const itemErrors = new Map<string, number>();
      try {
        const res = await pool.request({ path: '/xcron/createTasks', method: 'POST', headers: { 'content-type': 'application/json' }, body, headersTimeout: 60_000, bodyTimeout: 60_000 });
        const text = await res.body.text();
        const env = JSON.parse(text) as { code: number; message: string; data: { succeeded: number; failed: number; results: { code?: number; message?: string }[] } | null };
        if (res.statusCode !== 200 || env.code !== 0 || !env.data) error = `HTTP ${res.statusCode} code ${env.code}: ${env.message.slice(0, 80)}`;
        else {
          ({ succeeded: stored, failed } = env.data);
          for (const r of env.data.results) if (r.code !== undefined) itemErrors.set(`item code ${r.code}: ${(r.message ?? '').slice(0, 80)}`, (itemErrors.get(`item code ${r.code}: ${(r.message ?? '').slice(0, 80)}`) ?? 0) + 1);
        }
      } catch (e) {
        error = (e as Error).message.slice(0, 80);
      }
      const e = performance.now();
      mark(e);
      if (s < from || e > to) continue;
      w.batches++;
      w.latencyMs.push(e - s);
      w.stored += stored;
      w.failed += failed;
      if (error !== null) w.errors.set(error, (w.errors.get(error) ?? 0) + 1);
      for (const [k, v] of itemErrors) w.errors.set(k, (w.errors.get(k) ?? 0) + v);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, () => loop()));
  } finally {
    await pool.close().catch(() => undefined);
  }
  w.serverCpuS = cpu1 - cpu0;
  return w;
}

async function runStore(store: 'sqlite' | 'redis', o: { clients: number; size: number; seconds: number; warmupMs: number }): Promise<{ figures: Record<string, unknown>; check: TargetCheck }> {
  const dir = makeTempDir(`create-batch-${store}`);
  let server: ServerHandle | null = null;
  let redis: BenchRedis | null = null;
  try {
    const pids: number[] = [];
    if (store === 'sqlite') {
      server = await startServer({ name: 'create-batch-sqlite', dataDir: dir });
      pids.push(server.pid);
    } else {
      redis = await BenchRedis.start({ appendonly: true, name: 'create-batch' });
      const node = await startNode({ redisUrl: redis.url, prefix: `cb${process.pid}`, name: 'create-batch-redis' }, 'n1');
      server = node;
      await waitSettled([node], 1, 60_000);
      pids.push(node.pid, redis.pid);
    }
    const w = await drive(server.baseUrl, pids, o);
    const rate = w.stored / o.seconds;
    const d = distOf(w.latencyMs);
    const check = atLeast(`tasks/s stored (${store})`, Math.round(rate), TARGET_TASKS_PER_S, 'tasks/s');
    const who = store === 'sqlite' ? 'server' : 'server + redis';
    line(`${store}: batches (measured window)`, `${fmt(w.batches)} of ${fmt(o.size)}: ${fmt(w.stored)} tasks stored, ${fmt(w.failed)} refused`);
    line(`${store}: throughput`, `${fmt(rate)} tasks/s`, check);
    line(`${store}: batch latency p50 / p99`, `${fmt(d.p50, 1)} / ${fmt(d.p99, 1)} ms`);
    line(`${store}: CPU in the window (${who})`, `${fmt(w.serverCpuS, 2)} s, ${fmt((w.serverCpuS / Math.max(1, w.stored)) * 1e6, 1)} µs per task`);
    if (w.errors.size > 0) line(`${store}: errors`, [...w.errors].map(([k, v]) => `${v}x ${k}`).join('; '));
    return {
      figures: {
        tasks_per_s: Math.round(rate),
        stored: w.stored,
        refused: w.failed,
        batches: w.batches,
        batch_latency_ms: d,
        cpu_s: round1(w.serverCpuS),
        cpu_us_per_task: Math.round((w.serverCpuS / Math.max(1, w.stored)) * 1e7) / 10,
        errors: Object.fromEntries(w.errors),
      },
      check,
    };
  } finally {
    if (server) {
      if (store === 'redis') await stopNode(server as Parameters<typeof stopNode>[0]).catch(() => undefined);
      else await server.stop().catch(() => undefined);
    }
    if (redis) await redis.stop().catch(() => undefined);
    removeTempDir(dir);
  }
}

export async function runCreateBatch(): Promise<BenchResult> {
  const o = {
    clients: envInt('BENCH_CREATE_BATCH_CLIENTS', 4),
    size: envInt('BENCH_CREATE_BATCH_SIZE', 1000),
    seconds: envInt('BENCH_CREATE_BATCH_SECONDS', 10),
    warmupMs: envInt('BENCH_CREATE_BATCH_WARMUP_MS', 1000),
  };
  const stores = (process.env.BENCH_CREATE_BATCH_STORES ?? 'sqlite,redis').split(',').map((s) => s.trim()).filter((s): s is 'sqlite' | 'redis' => s === 'sqlite' || s === 'redis');
  const started = Date.now();
  header('create-batch', `POST /xcron/createTasks, batches of ${o.size}, ${o.clients} concurrent clients, ${o.seconds} s after a ${o.warmupMs} ms warm-up (${stores.join(', ')})`);
  const figures: Record<string, unknown> = {};
  const targets: TargetCheck[] = [];
  for (const s of stores) {
    const r = await runStore(s, o);
    figures[s] = r.figures;
    targets.push(r.check);
  }
  const r: BenchResult = {
    name: 'create-batch',
    started_at: new Date(started).toISOString(),
    duration_s: round1((Date.now() - started) / 1000),
    machine: machine(),
    config: { ...o, stores },
    figures,
    targets,
    notes: [],
  };
  writeResult(r);
  return r;
}

if (isMain(import.meta.url)) runStandalone(runCreateBatch);
