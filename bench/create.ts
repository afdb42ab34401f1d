/**
 * (c) createTask throughput: C concurrent clients (default 64) each loop POST /xcron/createTask for
 * a 1 s warm-up and then a measured window (default 10 s). Requests completing inside the window
 * count. Tasks are one-shots 30-395 days ahead (never fire during the run); BENCH_CREATE_KIND=periodic
 * sends a yearly cron expression instead. Target: >= 5,000 req/s.
 *
 * Env: BENCH_CREATE_CLIENTS (64), BENCH_CREATE_SECONDS (10), BENCH_CREATE_WARMUP_MS (1000),
 *      BENCH_CREATE_KIND (oneshot | periodic).
 */
import {
  atLeast,
  cpuSecondsOf,
  createTask,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  memOf,
  monoUs,
  round1,
  runStandalone,
  writeResult,
  type BenchResult,
} from './lib/common.js';
import { reportProfile } from './lib/profile.js';
import { withRig } from './lib/rig.js';

/** Issue #24 item 1: createTask at >= 12,000 req/s. */
export const TARGET_RPS = 12_000;

export async function runCreate(): Promise<BenchResult> {
  const clients = envInt('BENCH_CREATE_CLIENTS', 64);
  const seconds = envInt('BENCH_CREATE_SECONDS', 10);
  const warmupMs = envInt('BENCH_CREATE_WARMUP_MS', 1000);
  const kind = process.env.BENCH_CREATE_KIND === 'periodic' ? 'periodic' : 'oneshot';
  const name = kind === 'periodic' ? 'create-periodic' : 'create';
  const started = Date.now();
  header(name, `POST /xcron/createTask, ${clients} concurrent clients, ${seconds} s after a ${warmupMs} ms warm-up (${kind} tasks)`);
  const notes: string[] = [];
  return withRig(name, { connections: clients }, async ({ server, pool: p, stopServer }) => {
    const pool = p;

    const base = Date.now() + 30 * 86_400_000;
    let seq = 0;
    const bodyFor = (): string => {
      const i = seq++;
      const format = kind === 'periodic' ? '0 0 1 1 *' : String(base + Math.floor(Math.random() * 365 * 86_400_000));
      return JSON.stringify({ type: kind === 'periodic' ? 1 : 2, format, callback: { url: 'http://127.0.0.1:9/never', body: { i } } });
    };

    const t0 = performance.now();
    const measureFrom = t0 + warmupMs;
    const measureTo = measureFrom + seconds * 1000;
    const lat: number[] = [];
    let okCount = 0;
    let errCount = 0;
    let warmupCount = 0;
    let total = 0;
    const errKinds = new Map<string, number>();
    // CPU and profile-window marks, taken by whichever worker first sees the window start / end
    // (timers can fire late on a busy machine).
    let cpu0 = NaN;
    let cpu1 = NaN;
    let benchCpu0: NodeJS.CpuUsage | null = null;
    let benchCpu1: NodeJS.CpuUsage | null = null;
    const srvPid = server.pid;
    let winFrom = 0;
    let winTo = 0;
    const mark = (t: number): void => {
      if (winFrom === 0 && t >= measureFrom) {
        winFrom = monoUs();
        cpu0 = cpuSecondsOf(srvPid) ?? NaN;
        benchCpu0 = process.cpuUsage();
      }
      if (winTo === 0 && t >= measureTo) {
        winTo = monoUs();
        cpu1 = cpuSecondsOf(srvPid) ?? NaN;
        benchCpu1 = process.cpuUsage();
      }
    };

    const worker = async (): Promise<void> => {
      for (;;) {
        const s = performance.now();
        mark(s);
        if (s >= measureTo) return;
        const r = await createTask(pool, bodyFor());
        const e = performance.now();
        mark(e);
        total++;
        if (e < measureFrom) {
          warmupCount++;
          continue;
        }
        if (e > measureTo) continue;
        if (r.ok) {
          okCount++;
          lat.push(e - s);
        } else {
          errCount++;
          const k = (r.error ?? '?').slice(0, 80);
          errKinds.set(k, (errKinds.get(k) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, () => worker()));
    const mem = memOf(server.pid);

    const rps = okCount / seconds;
    const d = distOf(lat);
    const check = atLeast('createTask req/s', Math.round(rps), TARGET_RPS, 'req/s');
    line('requests (measured window)', `${fmt(okCount)} ok, ${fmt(errCount)} errors (${fmt(warmupCount)} in warm-up, ${fmt(total)} total)`);
    line('throughput', `${fmt(rps)} req/s`, check);
    line('latency p50 / p90 / p99', `${fmt(d.p50, 2)} / ${fmt(d.p90, 2)} / ${fmt(d.p99, 2)} ms`);
    line('latency max', `${fmt(d.max, 1)} ms`);
    line('errors', errCount === 0 ? '0' : `${errCount}: ${[...errKinds.entries()].map(([k, v]) => `${v}x ${k}`).join('; ')}`);
    const srvCpu = cpu1 - cpu0;
    const bc0 = benchCpu0 as NodeJS.CpuUsage | null;
    const bc1 = benchCpu1 as NodeJS.CpuUsage | null;
    const benchCpu = bc0 && bc1 ? (bc1.user + bc1.system - bc0.user - bc0.system) / 1e6 : NaN;
    line('CPU in the window: server / load gen', `${fmt(srvCpu, 2)} s / ${fmt(benchCpu, 2)} s of ${seconds} s (2 cores shared)`);
    const cpuPerReq = (srvCpu / Math.max(1, okCount + errCount)) * 1e6;
    line('server CPU per request', `${fmt(cpuPerReq)} µs (one core would allow ~${fmt(1e6 / cpuPerReq)} req/s)`);
    line('server RSS / peak', mem ? `${fmt(mem.rss_mb, 1)} / ${fmt(mem.hwm_mb, 1)} MB` : 'n/a');
    if (errCount > 0) notes.push(`${errCount} errors`);

    const log = { lines: await stopServer(notes) };
    const profile = reportProfile(name, winFrom > 0 && winTo > 0 ? { fromUs: winFrom, toUs: winTo } : undefined);

    const r: BenchResult = {
      name,
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: machine(),
      config: { clients, seconds, warmup_ms: warmupMs, kind },
      figures: {
        ok: okCount,
        errors: errCount,
        error_kinds: Object.fromEntries(errKinds),
        warmup_requests: warmupCount,
        req_per_s: Math.round(rps),
        latency_ms: d,
        server_cpu_s: round1(srvCpu),
        server_cpu_us_per_req: Math.round(cpuPerReq),
        loadgen_cpu_s: round1(benchCpu),
        server_mem_mb: mem,
        server_log_lines: log.lines,
        profile: profile ? { window_us: profile.window, hot: profile.hot.slice(0, 10), by_package: profile.by_package } : undefined,
      },
      targets: [check],
      notes,
    };
    writeResult(r);
    return r;
  });
}

if (isMain(import.meta.url)) runStandalone(runCreate);
