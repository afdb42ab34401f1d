/**
 * `npm run bench:peer`: one workload against three systems in turn, on ONE redis-server the bench
 * starts (free port, no persistence, FLUSHALL between systems) and ONE shared HTTP receiver:
 *
 *   xcron          standalone (SQLite), one process;
 *   xcron-cluster  3 xcron nodes in cluster mode on the Redis;
 *   bullmq         BullMQ (pinned in package.json): delayed jobs for one-shots, job schedulers
 *                  (`upsertJobScheduler`, `every: 1000`, `startDate` on a whole second, `endDate` on
 *                  the last tick, as xcron's tasks get `end_time`) for the
 *                  periodic tasks; Worker processes of their own (bench/bullmq-worker.ts) that POST
 *                  the callback over undici; total worker concurrency = xcron's per-origin cap (256).
 *
 * Workload, per system: (a) 20,000 one-shot callbacks due in the same second; (b) 5,000 one-shots
 * spread evenly over 10 s; (c) 1,000 periodic tasks firing every second for 30 s (every task ticks
 * on the whole second; the window is [T0, T0 + 30 s): 30 expected ticks per task; a tick whose
 * scheduled time is outside the window is ignored and counted as "outside window").
 *
 * Warm-up: before (a), every system delivers BENCH_PEER_WARMUP (10,000) one-shots through the same
 * receiver, not measured, so that neither the system nor the shared receiver meets (a) cold (JIT
 * compilation, new connections); without it, whichever system runs first pays for the receiver's.
 * With 2,000 (until the sixth session), the JIT was still compiling during (a): xcron's first 250 ms
 * delivered a third of its later rate, and its fire phase cost 20 % more CPU per callback than
 * after 10,000 (paired xcron-only runs: 12,602 / 13,495 / 13,996 vs 15,810 / 16,892 / 13,671 callbacks/s).
 *
 * Interleaved (a) (BENCH_PEER_ROUNDS, default 3; 0 = off): after the three blocks, xcron standalone
 * and BullMQ are started together, warmed, and run (a) alternately, the order swapped every round.
 * The machine's speed drifts by tens of percent over minutes (the same xcron workload cost 25-50 %
 * more CPU in one full run than in the one before), and the blocks run one system after another,
 * so one block's ratio moves with the machine. The medians of the rounds are compared as well,
 * with the same targets; each round is printed and stored.
 *
 * Figures per system and workload: callbacks/s ((a): unique fires / (last arrival - due time);
 * (b), (c): unique fires / (last arrival - first scheduled time)), lateness p50/p99/max (receiver
 * arrival - scheduled time, first arrival of each fire), CPU seconds of the fire phase (creation
 * done -> last callback + 2 s settle) summed over the system's processes, with Redis separately,
 * peak RSS (sampled every 200 ms, summed), duplicates (deliveries of a fire id after its first),
 * missing (expected fires never received). Ratios xcron / BullMQ. Writes bench/results/peer.json
 * and bench/results/peer.png (SVG -> PNG with rsvg-convert).
 *
 * Env: BENCH_PEER_SYSTEMS (xcron,cluster,bullmq), BENCH_PEER_WARMUP (10000), BENCH_PEER_ROUNDS (3), BENCH_PEER_BURST (20000), BENCH_PEER_SPREAD
 * (5000), BENCH_PEER_SPREAD_MS (10000), BENCH_PEER_PERIODIC (1000), BENCH_PEER_PERIODIC_S (30),
 * BENCH_PEER_BULLMQ_WORKERS (2 processes), BENCH_PEER_CONCURRENCY (total BullMQ concurrency; default
 * XCRON_DELIVERY_PER_ORIGIN_CONCURRENCY or 256), BENCH_PEER_BULLMQ_KEEP (1: keep completed jobs;
 * default removeOnComplete).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Queue, type JobsOptions } from 'bullmq';
import { chartSvg, writeChart, type Panel } from './lib/chart.js';
import { colocatedEnv, startCluster, stopNode, type NodeHandle } from './lib/cluster.js';
import {
  RESULTS_DIR,
  ROOT,
  atLeast,
  atMost,
  calibrateCreateRate,
  createMany,
  distOf,
  envFlag,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  makeTempDir,
  removeTempDir,
  round1,
  round2,
  round4,
  runStandalone,
  serverLogSummary,
  serverPool,
  sleep,
  startServer,
  track,
  warmUpDueTimes,
  writeResult,
  type BenchResult,
  type Dist,
  type ServerHandle,
  type TargetCheck,
} from './lib/common.js';
import { GroupMeter } from './lib/procs.js';
import { Receiver, analyse, type Records } from './lib/receiver-client.js';
import { BenchRedis } from './lib/redis.js';

/** Issue #24 item 3: >= 2x BullMQ's callbacks/s with a receiver that parses every JSON body. */
export const TARGET_CPS_RATIO = 2;
export const TARGET_P99_RATIO = 0.5;

type Pool = ReturnType<typeof serverPool>;

interface OneShot {
  at: number;
  /** xcron's format: 10-digit seconds or 13-digit ms. */
  format: string;
  i: number;
}

interface Created {
  expected: Set<string>;
  errors: number;
  firstError?: string;
  ms: number;
}

interface System {
  key: string;
  label: string;
  usesRedis: boolean;
  pids(): number[];
  /** Creation rate (items/s) measured now, for lead times. */
  createRate(): Promise<number>;
  createOneShots(items: readonly OneShot[], tag: string): Promise<Created>;
  createPeriodic(n: number, t0: number, ticks: number): Promise<Created & { handles: string[] }>;
  removePeriodic(handles: readonly string[]): Promise<void>;
  logLines(): string;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// xcron (standalone or cluster): tasks are created through the HTTP API, round-robin over nodes.

function xcronSystem(key: string, label: string, servers: ServerHandle[], receiverUrl: string, onStop: () => Promise<void>, usesRedis: boolean): System {
  const pools: Pool[] = servers.map((s) => serverPool(s.baseUrl, Math.max(16, Math.ceil(64 / servers.length))));
  const per = Math.max(16, Math.ceil(64 / servers.length));
  const createAll = async (bodies: string[]): Promise<{ results: { ok: boolean; task_id?: string; error?: string }[]; ms: number }> => {
    const t0 = performance.now();
    const parts = pools.map(() => [] as number[]);
    bodies.forEach((_, i) => parts[i % pools.length]!.push(i));
    const results = new Array<{ ok: boolean; task_id?: string; error?: string }>(bodies.length);
    await Promise.all(
      parts.map(async (idx, p) => {
        const r = await createMany(pools[p]!, idx.map((i) => bodies[i]!), per);
        idx.forEach((i, j) => (results[i] = r.results[j]!));
      }),
    );
    return { results, ms: performance.now() - t0 };
  };
  return {
    key,
    label,
    usesRedis,
    pids: () => servers.map((s) => s.pid),
    async createRate() {
      const rates = await Promise.all(pools.map((p) => calibrateCreateRate(p, receiverUrl, Math.ceil(1000 / pools.length), per)));
      return rates.reduce((a, b) => a + b, 0);
    },
    async createOneShots(items) {
      const bodies = items.map((it) => JSON.stringify({ type: 2, format: it.format, callback: { url: receiverUrl, body: { i: it.i } } }));
      const { results, ms } = await createAll(bodies);
      const expected = new Set<string>();
      let errors = 0;
      let firstError: string | undefined;
      results.forEach((r, i) => {
        if (r.ok && r.task_id) expected.add(`${r.task_id}:${items[i]!.at}`);
        else {
          errors++;
          firstError ??= r.error;
        }
      });
      return { expected, errors, firstError, ms };
    },
    async createPeriodic(n, t0, ticks) {
      const bodies = Array.from({ length: n }, (_, i) =>
        JSON.stringify({ type: 1, format: '* * * * * *', start_time: t0, end_time: t0 + (ticks - 1) * 1000, callback: { url: receiverUrl, body: { i } } }),
      );
      const { results, ms } = await createAll(bodies);
      const expected = new Set<string>();
      const handles: string[] = [];
      let errors = 0;
      let firstError: string | undefined;
      for (const r of results) {
        if (!r.ok || !r.task_id) {
          errors++;
          firstError ??= r.error;
          continue;
        }
        handles.push(r.task_id);
        for (let k = 0; k < ticks; k++) expected.add(`${r.task_id}:${t0 + k * 1000}`);
      }
      return { expected, errors, firstError, ms, handles };
    },
    // The tasks end by themselves (end_time = the last tick of the window).
    removePeriodic: () => Promise.resolve(),
    logLines() {
      const parts: string[] = [];
      for (const s of servers) {
        const l = serverLogSummary(s.logFile);
        if (l.lines > 0) parts.push(`${s.pid}: ${l.lines} lines: ${l.top.map((t) => `${t.count}x ${t.msg}`).join('; ')}`);
      }
      return parts.join(' | ');
    },
    async stop() {
      await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
      await onStop();
    },
  };
}

async function startStandalone(receiverUrl: string): Promise<System> {
  const dir = makeTempDir('peer-xcron');
  const s = await startServer({ name: 'peer-xcron', dataDir: dir });
  return xcronSystem('xcron', 'xcron standalone', [s], receiverUrl, async () => {
    await s.stop();
    removeTempDir(dir);
  }, false);
}

async function startXcronCluster(receiverUrl: string, redisUrl: string): Promise<System> {
  const nodes: NodeHandle[] = await startCluster({ redisUrl, prefix: 'peer', name: 'peer-cluster', env: colocatedEnv(3) }, 3);
  return xcronSystem('cluster', 'xcron cluster (3 nodes)', nodes, receiverUrl, async () => {
    await Promise.all(nodes.map((n) => stopNode(n)));
  }, true);
}

// ---------------------------------------------------------------------------------------------
// BullMQ

async function startBullmq(receiverUrl: string, redis: BenchRedis, workers: number, concurrency: number, keep: boolean): Promise<System> {
  const queueName = 'callbacks';
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  const queue = new Queue(queueName, { connection });
  await queue.waitUntilReady();
  const procs: ChildProcess[] = [];
  const perWorker = Math.max(1, Math.round(concurrency / workers));
  const script = join(ROOT, 'dist', 'bench', 'bullmq-worker.js');
  for (let w = 0; w < workers; w++) {
    const child = track(
      fork(script, [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, BENCH_REDIS_URL: redis.url, BENCH_BULLMQ_QUEUE: queueName, BENCH_BULLMQ_CONCURRENCY: String(perWorker), BENCH_RECEIVER_URL: receiverUrl },
      }),
    );
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error('bullmq worker did not start within 20 s')), 20_000);
      child.once('message', (m: { type?: string }) => {
        if (m.type === 'ready') {
          clearTimeout(t);
          res();
        }
      });
      child.once('exit', (code) => rej(new Error(`bullmq worker exited (code ${code ?? 'null'})`)));
    });
    procs.push(child);
  }
  const jobOpts: JobsOptions = {
    attempts: 3,
    backoff: { type: 'fixed', delay: 1000 },
    removeOnComplete: keep ? { count: 1_000_000 } : true,
    removeOnFail: keep ? { count: 1_000_000 } : true,
  };
  const addOneShots = async (items: readonly OneShot[], tag: string): Promise<Created> => {
    const t0 = performance.now();
    const expected = new Set<string>();
    let errors = 0;
    let firstError: string | undefined;
    const CHUNK = 1000;
    const chunks: number[] = [];
    for (let from = 0; from < items.length; from += CHUNK) chunks.push(from);
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let c = next++; c < chunks.length; c = next++) {
        const from = chunks[c]!;
        const now = Date.now();
        const jobs = items.slice(from, from + CHUNK).map((it, j) => {
          const id = `${tag}${from + j}`;
          return { name: 'cb', data: { fid: `${id}:${it.at}`, sched: it.at, body: { i: it.i } }, opts: { ...jobOpts, jobId: id, timestamp: now, delay: Math.max(0, it.at - now) } };
        });
        try {
          await queue.addBulk(jobs);
          for (const j of jobs) expected.add(j.data.fid);
        } catch (e) {
          errors += jobs.length;
          firstError ??= (e as Error).message;
        }
      }
    };
    await Promise.all([lane(), lane(), lane(), lane()]);
    return { expected, errors, firstError, ms: performance.now() - t0 };
  };
  return {
    key: 'bullmq',
    label: `BullMQ (${workers} worker process${workers === 1 ? '' : 'es'} x ${perWorker})`,
    usesRedis: true,
    pids: () => procs.map((p) => p.pid ?? -1).filter((p) => p > 0),
    async createRate() {
      const at = Date.now() + 365 * 86_400_000;
      const items = Array.from({ length: 1000 }, (_, i) => ({ at, format: '', i }));
      const r = await addOneShots(items, 'cal');
      await queue.drain(true);
      return (1000 / r.ms) * 1000;
    },
    createOneShots: addOneShots,
    async createPeriodic(n, t0, ticks) {
      const t = performance.now();
      const expected = new Set<string>();
      const handles: string[] = [];
      let errors = 0;
      let firstError: string | undefined;
      let next = 0;
      const lane = async (): Promise<void> => {
        for (let i = next++; i < n; i = next++) {
          const id = `p${i}`;
          try {
            await queue.upsertJobScheduler(id, { every: 1000, startDate: t0, endDate: t0 + (ticks - 1) * 1000 }, { name: 'tick', data: { body: { i } }, opts: jobOpts });
            handles.push(id);
            for (let k = 0; k < ticks; k++) expected.add(`${id}:${t0 + k * 1000}`);
          } catch (e) {
            errors++;
            firstError ??= (e as Error).message;
          }
        }
      };
      await Promise.all(Array.from({ length: 32 }, lane));
      return { expected, errors, firstError, ms: performance.now() - t, handles };
    },
    async removePeriodic(handles) {
      let next = 0;
      const lane = async (): Promise<void> => {
        for (let i = next++; i < handles.length; i = next++) await queue.removeJobScheduler(handles[i]!);
      };
      await Promise.all(Array.from({ length: 32 }, lane));
    },
    logLines: () => '',
    async stop() {
      for (const p of procs) {
        if (p.exitCode !== null || p.signalCode !== null) continue;
        const done = new Promise<void>((r) => p.once('exit', () => r()));
        try {
          p.send({ cmd: 'stop' });
        } catch {
          p.kill('SIGKILL');
        }
        const t = setTimeout(() => p.kill('SIGKILL'), 8000);
        await done;
        clearTimeout(t);
      }
      await queue.close().catch(() => undefined);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Workloads

interface WorkloadResult {
  workload: string;
  valid: boolean;
  created: number;
  create_errors: number;
  create_ms: number;
  expected: number;
  deliveries: number;
  received_unique: number;
  duplicates: number;
  missing: number;
  outside_window: number;
  /**
   * Deliveries outside this workload's fire ids that belong to an earlier phase of the same system
   * (the warm-up or an earlier workload) and were delivered there already: a fire delivered again
   * after its phase ended. They count as duplicates in the targets. `outside_sample` shows a few of
   * every kind of outside delivery (duplicate, late, unknown).
   */
  late_duplicates: number;
  late_duplicates_by_phase: Record<string, number>;
  /** Fires of an earlier phase that arrived only in this workload's window (missing there). */
  late_arrivals: number;
  outside_sample: { id: string; phase: string | null; kind: string; sched: number; arrival: number; attempt: number }[];
  retried_deliveries: number;
  callbacks_per_s: number;
  /** (a) only: callbacks/s from the first to the last arrival. */
  cps_first_to_last?: number;
  span_ms: number;
  lateness_ms: Dist;
  /** (a) only: first arrivals per 250 ms of lateness (every fire of (a) is due at the same time). */
  arrivals_per_250ms?: number[];
  cpu_s: number;
  redis_cpu_s: number | null;
  /** CPU s of the shared receiver over the same fire phase. */
  receiver_cpu_s: number;
  create_cpu_s: number;
  create_redis_cpu_s: number | null;
  peak_rss_mb: number;
  redis_peak_rss_mb: number | null;
  fire_window_s: number;
  /** 1/5/15-minute load average when the workload started. */
  loadavg: number[];
  note?: string;
}

/** One system's (a) in the interleaved rounds. */
interface InterleavedRound {
  round: number;
  system: string;
  callbacks_per_s: number;
  p99_ms: number;
  /** Lateness of the first callback (ms): how long before the burst started going out. */
  min_ms: number;
  cpu_s: number;
  /** The shared receiver's CPU over the same window (it competes for the same cores). */
  receiver_cpu_s: number;
  /** Callbacks received per 250 ms from the due time. */
  arrivals_per_250ms: number[];
  /** CPU the other system's processes (and Redis, when it uses it) used meanwhile (creation to last callback): both are up. */
  other_cpu_s: number;
  duplicates: number;
  missing: number;
  valid: boolean;
}

interface WarmUp {
  expected: number;
  unique: number;
  duplicates: number;
  missing: number;
  outside: number;
}

interface Ctx {
  receiver: Receiver;
  redis: BenchRedis;
  /** Fire ids expected by the current system's earlier phases (warm-up, a, b, c) -> the phase. */
  phases: Map<string, string>;
  /** Fire ids of those phases delivered so far. */
  delivered: Set<string>;
}

/**
 * Records delivered outside `expected`: fires of an earlier phase delivered again (late duplicates),
 * fires of an earlier phase delivered for the first time only now (late arrivals), and unknown ids.
 */
function outsideOf(
  rec: Records,
  expected: ReadonlySet<string>,
  ctx: Ctx,
): Pick<WorkloadResult, 'late_duplicates' | 'late_duplicates_by_phase' | 'late_arrivals' | 'outside_sample'> {
  const byPhase: Record<string, number> = {};
  const sample: WorkloadResult['outside_sample'] = [];
  const sampled = new Map<string, number>();
  let dup = 0;
  let arrivals = 0;
  for (let i = 0; i < rec.ids.length; i++) {
    const id = rec.ids[i]!;
    if (expected.has(id)) continue;
    const phase = ctx.phases.get(id) ?? null;
    let kind = 'unknown';
    if (phase !== null) {
      if (ctx.delivered.has(id)) {
        dup++;
        byPhase[phase] = (byPhase[phase] ?? 0) + 1;
        kind = 'duplicate';
      } else {
        arrivals++;
        ctx.delivered.add(id);
        kind = 'late';
      }
    }
    const k = `${kind}:${phase ?? ''}`;
    const n = sampled.get(k) ?? 0;
    if (n < 2) {
      sampled.set(k, n + 1);
      sample.push({ id, phase, kind, sched: rec.sched[i]!, arrival: rec.arrival[i]!, attempt: rec.attempt[i]! });
    }
  }
  return { late_duplicates: dup, late_duplicates_by_phase: byPhase, late_arrivals: arrivals, outside_sample: sample };
}

async function waitUntil(t: number): Promise<void> {
  while (Date.now() < t) await sleep(Math.min(200, t - Date.now()));
}

async function measure(
  sys: System,
  ctx: Ctx,
  workload: string,
  create: () => Promise<Created>,
  fireFrom: number,
  deadline: number,
  spanFrom: (firstArrival: number) => number,
  notBefore: number,
): Promise<WorkloadResult> {
  const la = loadavg().map(round2);
  const meter = new GroupMeter(sys.key, () => sys.pids());
  const rmeter = new GroupMeter('redis', () => [ctx.redis.pid]);
  const recvMeter = new GroupMeter('receiver', () => [ctx.receiver.pid]);
  await ctx.receiver.reset();
  meter.start();
  rmeter.start();
  const cpuCreate0 = meter.cpuNow();
  const rcpuCreate0 = rmeter.cpuNow();
  const c = await create();
  const createdAt = Date.now();
  const createCpu = meter.cpuNow() - cpuCreate0;
  const createRcpu = rmeter.cpuNow() - rcpuCreate0;
  const valid = createdAt <= notBefore && c.errors === 0;
  // Fire phase: from creation done (or fireFrom - 0.5 s when that is later) to the last callback.
  await waitUntil(fireFrom - 500);
  const fire0 = Date.now();
  const cpu0 = meter.cpuNow();
  const rcpu0 = rmeter.cpuNow();
  const recv0 = recvMeter.cpuNow();
  await ctx.receiver.waitFor(c.expected.size, deadline, 2000);
  const cpu1 = meter.cpuNow();
  const rcpu1 = rmeter.cpuNow();
  const recv1 = recvMeter.cpuNow();
  const fireWindow = (Date.now() - fire0) / 1000;
  const m = meter.stop();
  const rm = rmeter.stop();
  const rec = await ctx.receiver.collect();
  const a = analyse(rec, c.expected);
  const outside = outsideOf(rec, c.expected, ctx);
  for (const id of c.expected) ctx.phases.set(id, workload);
  for (let i = 0; i < rec.ids.length; i++) if (c.expected.has(rec.ids[i]!)) ctx.delivered.add(rec.ids[i]!);
  const late = distOf(a.lateness);
  const from = spanFrom(a.firstArrival);
  const span = a.lastArrival - from;
  const cps = a.unique > 0 ? (a.unique / Math.max(1, span)) * 1000 : NaN;
  return {
    workload,
    valid,
    created: c.expected.size,
    create_errors: c.errors,
    create_ms: Math.round(c.ms),
    expected: c.expected.size,
    deliveries: a.deliveries,
    received_unique: a.unique,
    duplicates: a.duplicates,
    missing: a.missing,
    outside_window: a.unexpected,
    ...outside,
    retried_deliveries: a.retriedDeliveries,
    callbacks_per_s: Math.round(cps),
    span_ms: span,
    lateness_ms: late,
    cpu_s: round2(cpu1 - cpu0),
    redis_cpu_s: sys.usesRedis ? round2(rcpu1 - rcpu0) : null,
    receiver_cpu_s: round2(recv1 - recv0),
    create_cpu_s: round2(createCpu),
    create_redis_cpu_s: sys.usesRedis ? round2(createRcpu) : null,
    peak_rss_mb: m.peak_rss_mb,
    redis_peak_rss_mb: sys.usesRedis ? rm.peak_rss_mb : null,
    fire_window_s: round1(fireWindow),
    loadavg: la,
    ...(workload === 'a' ? { arrivals_per_250ms: bins250(a.lateness) } : {}),
    ...(a.firstArrival !== Infinity && workload === 'a' ? { cps_first_to_last: a.unique > 1 ? Math.round(((a.unique - 1) / Math.max(1, a.lastArrival - a.firstArrival)) * 1000) : 0 } : {}),
    ...(c.errors > 0 ? { note: `${c.errors} create errors, e.g. ${c.firstError ?? '?'}` } : !valid ? { note: `creation ended ${createdAt - notBefore} ms after the first fire was due` } : {}),
  };
}

/**
 * Before the measured workloads of a system: `n` one-shots due 1 s apart in ten groups, delivered
 * through the shared receiver and not measured. Every system (and the receiver, which the first
 * system would otherwise meet cold) starts the measurements with its code compiled and its
 * connections open, as a running service would be.
 */
async function warmUp(sys: System, ctx: Ctx, n: number): Promise<WarmUp | undefined> {
  if (n <= 0) return undefined;
  const due = warmUpDueTimes(n);
  const items = due.map((at, i) => ({ at, format: String(at), i }));
  const t0 = due[0]!;
  // The receiver still holds the previous system's last workload: cleared first, so the wait below
  // counts this warm-up's deliveries (it once returned at once, and the warm-up's fires then landed
  // in (a)'s window as fire ids outside (a)).
  await ctx.receiver.reset();
  const c = await sys.createOneShots(items, 'warm');
  await ctx.receiver.waitFor(c.expected.size, t0 + 60_000, 1000);
  const rec = await ctx.receiver.collect();
  const a = analyse(rec, c.expected);
  for (let i = 0; i < rec.ids.length; i++) if (c.expected.has(rec.ids[i]!)) ctx.delivered.add(rec.ids[i]!);
  await ctx.receiver.reset();
  for (const id of c.expected) ctx.phases.set(id, 'warm-up');
  const extra = a.duplicates + a.missing + a.unexpected > 0 ? `; duplicates ${fmt(a.duplicates)}, missing ${fmt(a.missing)}, outside ${fmt(a.unexpected)}` : '';
  line(`${sys.key} warm-up`, `${fmt(a.unique)} / ${fmt(c.expected.size)} one-shots delivered (not measured)${extra}`);
  return { expected: c.expected.size, unique: a.unique, duplicates: a.duplicates, missing: a.missing, outside: a.unexpected };
}

async function workloadBurst(sys: System, ctx: Ctx, n: number, tag = 'a'): Promise<WorkloadResult> {
  const rate = await sys.createRate();
  const leadMs = Math.min(300_000, Math.max(6000, Math.ceil((n / rate) * 1500) + 3000));
  const dueSec = Math.ceil((Date.now() + leadMs) / 1000);
  const dueMs = dueSec * 1000;
  const items = Array.from({ length: n }, (_, i) => ({ at: dueMs, format: String(dueSec), i }));
  line(`${sys.key} (a) calibration`, `${fmt(rate)} creates/s -> due ${fmt(leadMs / 1000, 1)} s ahead`);
  return measure(sys, ctx, 'a', () => sys.createOneShots(items, tag), dueMs, dueMs + 120_000, () => dueMs, dueMs - 500);
}

async function workloadSpread(sys: System, ctx: Ctx, n: number, spanMs: number): Promise<WorkloadResult> {
  const rate = await sys.createRate();
  const leadMs = Math.min(120_000, Math.max(5000, Math.ceil((n / rate) * 1500) + 2000));
  const t0 = Date.now() + leadMs;
  const items = Array.from({ length: n }, (_, i) => {
    const at = t0 + Math.floor((i * spanMs) / n);
    return { at, format: String(at), i };
  });
  return measure(sys, ctx, 'b', () => sys.createOneShots(items, 'b'), t0, t0 + spanMs + 60_000, () => t0, t0);
}

async function workloadPeriodic(sys: System, ctx: Ctx, n: number, seconds: number): Promise<WorkloadResult> {
  const rate = await sys.createRate();
  const leadMs = Math.max(5000, Math.ceil((n / rate) * 1500) + 3000);
  const t0 = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
  let handles: string[] = [];
  const r = await measure(
    sys,
    ctx,
    'c',
    async () => {
      const c = await sys.createPeriodic(n, t0, seconds);
      handles = c.handles;
      return c;
    },
    t0,
    t0 + seconds * 1000 + 15_000,
    () => t0,
    t0 - 200,
  );
  await sys.removePeriodic(handles);
  return r;
}

/** How many values fall in each 250 ms bin from 0 (negative values are left out). */
function bins250(values: ArrayLike<number>): number[] {
  const bins: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(values[i]! / 250);
    if (b >= 0 && b < 400) bins[b] = (bins[b] ?? 0) + 1;
  }
  return Array.from(bins, (x) => x ?? 0);
}

// ---------------------------------------------------------------------------------------------

const WL_NAMES: Record<string, string> = { a: '(a) burst', b: '(b) spread', c: '(c) periodic' };

function printWorkload(sysKey: string, r: WorkloadResult): void {
  const l = r.lateness_ms;
  const label = `${sysKey} ${WL_NAMES[r.workload] ?? r.workload}`;
  const redis = r.redis_cpu_s !== null ? ` (+ redis ${fmt(r.redis_cpu_s, 2)} s)` : '';
  const rss = r.redis_peak_rss_mb !== null ? ` (+ redis ${fmt(r.redis_peak_rss_mb, 1)} MB)` : '';
  console.log(`  ${label} (loadavg ${r.loadavg.join(' ')})${r.valid ? '' : '  !! INVALID: ' + (r.note ?? '')}`);
  line('    received / expected', `${fmt(r.received_unique)} / ${fmt(r.expected)} (${fmt(r.deliveries)} deliveries, created in ${fmt(r.create_ms)} ms)`);
  line('    callbacks/s', `${fmt(r.callbacks_per_s)}${r.cps_first_to_last !== undefined ? ` (first->last ${fmt(r.cps_first_to_last)})` : ''} over ${fmt(r.span_ms)} ms`);
  line('    lateness p50 / p99 / max', `${fmt(l.p50)} / ${fmt(l.p99)} / ${fmt(l.max)} ms`);
  if (r.arrivals_per_250ms) line('    arrivals per 250 ms from due', r.arrivals_per_250ms.join(' '));
  line('    CPU (fire phase, system procs)', `${fmt(r.cpu_s, 2)} s${redis} in ${fmt(r.fire_window_s, 1)} s (receiver ${fmt(r.receiver_cpu_s, 2)} s); creation ${fmt(r.create_cpu_s, 2)} s`);
  line('    peak RSS (system procs)', `${fmt(r.peak_rss_mb, 1)} MB${rss}`);
  const lateDup = r.late_duplicates > 0 ? ` + ${fmt(r.late_duplicates)} late duplicates of ${Object.entries(r.late_duplicates_by_phase).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}` : '';
  const unknown = r.outside_window - r.late_duplicates - r.late_arrivals;
  const lateArr = r.late_arrivals > 0 ? `; ${fmt(r.late_arrivals)} first deliveries of an earlier phase` : '';
  line('    duplicates / missing', `${fmt(r.duplicates)}${lateDup} / ${fmt(r.missing)}${lateArr}${unknown > 0 ? `; unknown fire ids: ${fmt(unknown)}` : ''}`);
  if (r.outside_sample.length > 0) line('    outside deliveries (sample)', r.outside_sample.map((o) => `${o.id} [${o.kind} ${o.phase ?? ''}] sched ${o.sched} arrived ${o.arrival} attempt ${o.attempt}`).join('; '));
}

export async function runPeer(): Promise<BenchResult> {
  const systems = (process.env.BENCH_PEER_SYSTEMS ?? 'xcron,cluster,bullmq').split(',').map((s) => s.trim()).filter(Boolean);
  const nBurst = envInt('BENCH_PEER_BURST', 20_000);
  const nSpread = envInt('BENCH_PEER_SPREAD', 5000);
  const spreadMs = envInt('BENCH_PEER_SPREAD_MS', 10_000);
  const nPeriodic = envInt('BENCH_PEER_PERIODIC', 1000);
  const periodicS = envInt('BENCH_PEER_PERIODIC_S', 30);
  const nWarm = envInt('BENCH_PEER_WARMUP', 10_000);
  const nRounds = envInt('BENCH_PEER_ROUNDS', 3);
  const workers = Math.max(1, envInt('BENCH_PEER_BULLMQ_WORKERS', 2));
  const concurrency = envInt('BENCH_PEER_CONCURRENCY', envInt('XCRON_DELIVERY_PER_ORIGIN_CONCURRENCY', 256));
  const keep = envFlag('BENCH_PEER_BULLMQ_KEEP');
  const started = Date.now();
  const m = machine();
  header('peer', `xcron vs BullMQ: (a) ${fmt(nBurst)} one-shots due in one second, (b) ${fmt(nSpread)} over ${spreadMs / 1000} s, (c) ${fmt(nPeriodic)} periodic x ${periodicS} s`);
  const notes: string[] = [];
  let redis: BenchRedis | null = null;
  let receiver: Receiver | null = null;
  let sys: System | null = null;
  const results: Record<string, { label: string; warmup?: WarmUp; a?: WorkloadResult; b?: WorkloadResult; c?: WorkloadResult; log?: string }> = {};
  try {
    redis = await BenchRedis.start({ name: 'peer' });
    receiver = await Receiver.start({ parseJson: true });
    const ctx: Ctx = { receiver, redis, phases: new Map(), delivered: new Set() };
    line('redis-server', `pid ${redis.pid}, port ${redis.port}, no persistence`);
    for (const key of systems) {
      await redis.flushAll();
      if (key === 'xcron') sys = await startStandalone(receiver.url);
      else if (key === 'cluster') sys = await startXcronCluster(receiver.url, redis.url);
      else if (key === 'bullmq') sys = await startBullmq(receiver.url, redis, workers, concurrency, keep);
      else throw new Error(`BENCH_PEER_SYSTEMS: unknown system ${key} (xcron, cluster, bullmq)`);
      console.log(`\n  --- ${sys.label} (pids ${sys.pids().join(', ')})`);
      const r: (typeof results)[string] = { label: sys.label };
      results[key] = r;
      ctx.phases.clear();
      ctx.delivered.clear();
      r.warmup = await warmUp(sys, ctx, nWarm);
      r.a = await workloadBurst(sys, ctx, nBurst);
      printWorkload(key, r.a);
      await sleep(1000);
      r.b = await workloadSpread(sys, ctx, nSpread, spreadMs);
      printWorkload(key, r.b);
      await sleep(1000);
      r.c = await workloadPeriodic(sys, ctx, nPeriodic, periodicS);
      printWorkload(key, r.c);
      r.log = sys.logLines();
      if (r.log) line('  server warn/error log lines', r.log.slice(0, 300));
      await sys.stop();
      sys = null;
      await sleep(1000);
    }

    // Interleaved rounds of (a): xcron standalone and BullMQ both started, (a) run alternately, the
    // order swapped every round. The machine's speed drifts by tens of percent over minutes, and the
    // blocks above run one system after another: a slow stretch during one block moves the ratio.
    // Here each round's pair meets about the same machine, and the medians are compared.
    const rounds: InterleavedRound[] = [];
    if (nRounds > 0 && systems.includes('xcron') && systems.includes('bullmq')) {
      console.log(`\n  --- interleaved (a): xcron standalone and BullMQ both running, ${nRounds} rounds, the order swapped every round`);
      await redis.flushAll();
      const pair: System[] = [];
      try {
        pair.push(await startStandalone(receiver.url));
        pair.push(await startBullmq(receiver.url, redis, workers, concurrency, keep));
        ctx.phases.clear();
        ctx.delivered.clear();
        for (const s of pair) {
          const w = await warmUp(s, ctx, nWarm);
          if (w && w.duplicates + w.missing > 0) notes.push(`interleaved ${s.key} warm-up: ${w.duplicates} duplicates, ${w.missing} missing`);
        }
        for (let k = 0; k < nRounds; k++) {
          for (const s of k % 2 === 0 ? pair : [...pair].reverse()) {
            const other = pair.find((x) => x !== s)!;
            const om = new GroupMeter(other.key, () => (other.usesRedis ? [...other.pids(), ctx.redis.pid] : other.pids()));
            const o0 = om.cpuNow();
            const res = await workloadBurst(s, ctx, nBurst, `r${k}a`);
            const round: InterleavedRound = {
              round: k + 1,
              system: s.key,
              callbacks_per_s: res.callbacks_per_s,
              p99_ms: res.lateness_ms.p99,
              min_ms: res.lateness_ms.min,
              cpu_s: round2(res.cpu_s + (res.redis_cpu_s ?? 0)),
              receiver_cpu_s: res.receiver_cpu_s,
              arrivals_per_250ms: res.arrivals_per_250ms ?? [],
              other_cpu_s: round2(om.cpuNow() - o0),
              duplicates: res.duplicates + res.late_duplicates,
              missing: res.missing,
              valid: res.valid,
            };
            rounds.push(round);
            line('    arrivals per 250 ms from due', round.arrivals_per_250ms.join(' '));
            line(
              `  round ${k + 1} ${s.key} (a)`,
              `${fmt(round.callbacks_per_s)} callbacks/s, first / p99 ${fmt(round.min_ms)} / ${fmt(round.p99_ms)} ms, CPU incl. redis ${fmt(round.cpu_s, 2)} s (receiver ${fmt(round.receiver_cpu_s, 2)} s), duplicates / missing ${round.duplicates} / ${round.missing}; ${other.key}${other.usesRedis ? ' + redis' : ''} meanwhile ${fmt(round.other_cpu_s, 2)} s CPU${res.valid ? '' : '  !! INVALID'}`,
            );
            await sleep(1000);
          }
        }
      } finally {
        for (const s of pair) await s.stop().catch(() => undefined);
      }
    }

    // Ratios and targets
    const targets: TargetCheck[] = [];
    const ratios: Record<string, Record<string, number>> = {};
    const bq = results.bullmq;
    console.log('\n  ratios to BullMQ (callbacks/s: higher is better; p99 lateness, CPU, RSS: lower is better)');
    for (const key of ['xcron', 'cluster']) {
      const x = results[key];
      if (!x) continue;
      for (const w of ['a', 'b', 'c'] as const) {
        const xr = x[w];
        if (!xr) continue;
        targets.push(atMost(`${key} ${w} duplicates+missing`, xr.duplicates + xr.late_duplicates + xr.missing, 0, 'fires'));
      }
      if (x.warmup) targets.push(atMost(`${key} warm-up duplicates+missing`, x.warmup.duplicates + x.warmup.missing, 0, 'fires'));
      if (!bq) continue;
      const rr: Record<string, number> = {};
      for (const w of ['a', 'b', 'c'] as const) {
        const xr = x[w];
        const br = bq[w];
        if (!xr || !br) continue;
        // Targets are checked on the unrounded ratios (0.504 is not <= 0.5); printed with 3 decimals.
        const cpsR = round4(xr.callbacks_per_s / Math.max(1, br.callbacks_per_s));
        const p99R = round4(xr.lateness_ms.p99 / Math.max(1, br.lateness_ms.p99));
        const cpuX = xr.cpu_s + (xr.redis_cpu_s ?? 0);
        const cpuB = br.cpu_s + (br.redis_cpu_s ?? 0);
        const rssX = xr.peak_rss_mb + (xr.redis_peak_rss_mb ?? 0);
        const rssB = br.peak_rss_mb + (br.redis_peak_rss_mb ?? 0);
        rr[`${w}_cps`] = cpsR;
        rr[`${w}_p99`] = p99R;
        rr[`${w}_cpu_incl_redis`] = round2(cpuX / Math.max(0.01, cpuB));
        rr[`${w}_rss_incl_redis`] = round2(rssX / Math.max(1, rssB));
        const tp = atMost(`${key}/bullmq ${w} p99 lateness`, p99R, TARGET_P99_RATIO, 'x');
        targets.push(tp);
        if (w === 'a') {
          const tc = atLeast(`${key}/bullmq a callbacks/s`, cpsR, TARGET_CPS_RATIO, 'x');
          targets.push(tc);
          line(`  ${key}/bullmq ${WL_NAMES[w]} callbacks/s`, `${fmt(cpsR, 3)}x (${fmt(xr.callbacks_per_s)} vs ${fmt(br.callbacks_per_s)})`, tc);
        } else {
          line(`  ${key}/bullmq ${WL_NAMES[w]} callbacks/s`, `${fmt(cpsR, 3)}x (${fmt(xr.callbacks_per_s)} vs ${fmt(br.callbacks_per_s)}; offered load)`);
        }
        line(`  ${key}/bullmq ${WL_NAMES[w]} p99 lateness`, `${fmt(p99R, 3)}x (${fmt(xr.lateness_ms.p99)} vs ${fmt(br.lateness_ms.p99)} ms)`, tp);
        line(`  ${key}/bullmq ${WL_NAMES[w]} CPU / peak RSS incl. redis`, `${fmt(rr[`${w}_cpu_incl_redis`] ?? NaN, 2)}x / ${fmt(rr[`${w}_rss_incl_redis`] ?? NaN, 2)}x`);
      }
      ratios[key] = rr;
    }
    let interleaved: Record<string, unknown> | null = null;
    if (rounds.length > 0) {
      const of = (k: string): InterleavedRound[] => rounds.filter((r) => r.system === k);
      const med = (xs: number[]): number => {
        const a = [...xs].sort((p, q) => p - q);
        return a.length % 2 === 1 ? a[(a.length - 1) / 2]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
      };
      const xr = of('xcron');
      const br = of('bullmq');
      const cpsR = round4(med(xr.map((r) => r.callbacks_per_s)) / Math.max(1, med(br.map((r) => r.callbacks_per_s))));
      const p99R = round4(med(xr.map((r) => r.p99_ms)) / Math.max(1, med(br.map((r) => r.p99_ms))));
      const perRound = xr.map((x) => {
        const b = br.find((r) => r.round === x.round)!;
        return { round: x.round, cps: round4(x.callbacks_per_s / Math.max(1, b.callbacks_per_s)), p99: round4(x.p99_ms / Math.max(1, b.p99_ms)) };
      });
      console.log(`\n  interleaved (a), medians of ${xr.length} rounds`);
      const tc = atLeast('xcron/bullmq a callbacks/s, interleaved median', cpsR, TARGET_CPS_RATIO, 'x');
      const tp = atMost('xcron/bullmq a p99 lateness, interleaved median', p99R, TARGET_P99_RATIO, 'x');
      const td = atMost('xcron interleaved a duplicates+missing', xr.reduce((t, r) => t + r.duplicates + r.missing, 0), 0, 'fires');
      targets.push(tc, tp, td);
      line('    xcron/bullmq (a) callbacks/s', `${fmt(cpsR, 3)}x (median ${fmt(med(xr.map((r) => r.callbacks_per_s)))} vs ${fmt(med(br.map((r) => r.callbacks_per_s)))})`, tc);
      line('    xcron/bullmq (a) p99 lateness', `${fmt(p99R, 3)}x (median ${fmt(med(xr.map((r) => r.p99_ms)))} vs ${fmt(med(br.map((r) => r.p99_ms)))} ms)`, tp);
      line('    per round (callbacks/s, p99)', perRound.map((r) => `${r.round}: ${fmt(r.cps, 3)}x, ${fmt(r.p99, 3)}x`).join('; '));
      interleaved = { rounds, ratio_of_medians: { a_cps: cpsR, a_p99: p99R }, per_round_ratios: perRound };
      if (rounds.some((r) => !r.valid)) notes.push('an interleaved round was INVALID (creation overran the due time or failed)');
    }
    for (const [key, x] of Object.entries(results)) {
      for (const w of ['a', 'b', 'c'] as const) {
        const r = x[w];
        if (r && !r.valid) notes.push(`${key} ${w}: INVALID (${r.note ?? ''})`);
        if (r && (r.duplicates > 0 || r.missing > 0)) notes.push(`${key} ${w}: ${r.duplicates} duplicates, ${r.missing} missing`);
      }
    }
    console.log('\n  targets');
    for (const t of targets) console.log(`    ${t.metric.padEnd(40)} ${fmt(t.value, t.target.endsWith(' x') ? 3 : 2).padStart(8)}   target ${t.target.padEnd(12)} ${t.pass ? 'PASS' : 'MISS'}`);

    // Chart
    const keys = Object.keys(results);
    const colors: Record<string, string> = { xcron: '#1f77b4', cluster: '#2ca02c', bullmq: '#d62728' };
    const wl = ['a', 'b', 'c'] as const;
    const kfmt = (n: number): string => (n >= 1000 ? `${round1(n / 1000)}k` : String(n));
    const groups = [`(a) ${kfmt(nBurst)} in 1 s`, `(b) ${kfmt(nSpread)} over ${spreadMs / 1000} s`, `(c) ${kfmt(nPeriodic)} x 1/s x ${periodicS} s`];
    const ser = (f: (r: WorkloadResult) => number): Panel['series'] =>
      keys.map((k) => ({ name: results[k]!.label, color: colors[k] ?? '#888', values: wl.map((w) => (results[k]![w] ? f(results[k]![w]) : null)) }));
    const la = (m.loadavg_at_start as number[]).join(' ');
    const panels: Panel[] = [
      { title: 'callbacks/s (higher is better)', unit: 'callbacks/s', groups, series: ser((r) => r.callbacks_per_s) },
      { title: 'lateness p99 (lower is better)', unit: 'ms', groups, series: ser((r) => Math.max(0.5, r.lateness_ms.p99)), log: true },
      { title: 'lateness p50', unit: 'ms', groups, series: ser((r) => Math.max(0.5, r.lateness_ms.p50)), log: true },
      { title: 'lateness max', unit: 'ms', groups, series: ser((r) => Math.max(0.5, r.lateness_ms.max)), log: true },
      { title: 'CPU s, fire phase, incl. Redis', unit: 'CPU seconds', groups, series: ser((r) => r.cpu_s + (r.redis_cpu_s ?? 0)) },
      { title: 'peak RSS, incl. Redis', unit: 'MB', groups, series: ser((r) => r.peak_rss_mb + (r.redis_peak_rss_mb ?? 0)) },
    ];
    const footer = `${new Date(started).toISOString().slice(0, 16)}Z, ${String(m.cpus)} cpus (${String(m.cpu_model)}), node ${String(m.node)}, loadavg at start ${la}; duplicates/missing: ${keys
      .map((k) => `${k} ${wl.map((w) => `${results[k]![w]?.duplicates ?? '-'}/${results[k]![w]?.missing ?? '-'}`).join(' ')}`)
      .join('; ')}`;
    const chart = writeChart(chartSvg('xcron vs BullMQ on one Redis, one receiver, same machine', footer, panels, 2), join(RESULTS_DIR, 'peer.png'));
    if (chart.png) console.log(`  -> ${chart.png.slice(ROOT.length + 1)}`);
    else notes.push(chart.error ?? 'chart not written');

    const r: BenchResult = {
      name: 'peer',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: m,
      config: {
        systems,
        warmup: nWarm,
        interleaved_rounds: nRounds,
        burst: nBurst,
        spread: nSpread,
        spread_ms: spreadMs,
        periodic: nPeriodic,
        periodic_s: periodicS,
        bullmq_workers: workers,
        bullmq_total_concurrency: concurrency,
        bullmq_remove_on_complete: !keep,
        xcron_cluster_nodes: 3,
        xcron_cluster_node_env: colocatedEnv(3),
        periodic_window_rule: '[T0, T0 + periodic_s): T0 on a whole second; every task ticks at T0 + k s, k = 0..periodic_s-1; fires outside the window are ignored (outside_window)',
      },
      figures: { systems: results, ratios_to_bullmq: ratios, interleaved_a: interleaved },
      targets,
      notes,
    };
    writeResult(r);
    return r;
  } finally {
    if (sys) await sys.stop().catch(() => undefined);
    if (receiver) await receiver.stop().catch(() => undefined);
    if (redis) await redis.stop().catch(() => undefined);
  }
}

if (isMain(import.meta.url)) runStandalone(runPeer);
