/**
 * (a) precision: N one-shot tasks (default 2,000) spread evenly over a 10 s window that starts a few
 * seconds after creation begins (13-digit ms timestamps). Lateness = receiver arrival (Date.now() in
 * the receiver process) - X-Xcron-Scheduled-Time. Target: p99 <= 5 ms (200 fires/s spread evenly).
 *
 * Env: BENCH_PRECISION_TASKS (2000), BENCH_PRECISION_SPAN_MS (10000), BENCH_PRECISION_LEAD_MS
 * (default: 1.5x the creation time a short calibration predicts + 2 s, at least 5 s).
 */
import {
  atMost,
  calibrateCreateRate,
  createMany,
  distOf,
  envInt,
  fmt,
  header,
  isMain,
  line,
  machine,
  memOf,
  monoUs,
  cpuSecondsOf,
  round1,
  runStandalone,
  writeResult,
  type BenchResult,
} from './lib/common.js';
import { reportProfile } from './lib/profile.js';
import { withRig } from './lib/rig.js';
import { analyse } from './lib/receiver-client.js';

/** Issue #24 item 4: at 200 fires/s spread evenly (2,000 over 10 s), lateness p99 <= 5 ms. */
export const TARGET_P99_MS = 5;

export async function runPrecision(): Promise<BenchResult> {
  const N = envInt('BENCH_PRECISION_TASKS', 2000);
  const spanMs = envInt('BENCH_PRECISION_SPAN_MS', 10_000);
  const started = Date.now();
  header('precision', `${fmt(N)} one-shot tasks spread evenly over ${spanMs / 1000} s; lateness = receiver arrival - scheduled`);
  const notes: string[] = [];
  return withRig('precision', { receiver: {} }, async ({ server, pool: p, stopServer, receiver }) => {
    const rate = await calibrateCreateRate(p, receiver.url, 500, 32);
    const leadMs = envInt('BENCH_PRECISION_LEAD_MS', Math.min(120_000, Math.max(5000, Math.ceil((N / rate) * 1500) + 2000)));
    line('createTask calibration', `${fmt(rate)} req/s -> first task due ${fmt(leadMs / 1000, 1)} s ahead`);

    const t0 = Date.now() + leadMs;
    const due: number[] = [];
    const bodies: string[] = [];
    for (let i = 0; i < N; i++) {
      const at = t0 + Math.floor((i * spanMs) / N);
      due.push(at);
      bodies.push(JSON.stringify({ type: 2, format: String(at), callback: { url: receiver.url, body: { i } } }));
    }
    const cpu0 = cpuSecondsOf(server.pid) ?? NaN;
    const rcpu0 = cpuSecondsOf(receiver.pid) ?? NaN;
    const { results, ms: createMs } = await createMany(p, bodies, 32);
    const createdAt = Date.now();
    const errors = results.filter((r) => !r.ok);
    const expected = new Set<string>();
    results.forEach((r, i) => {
      if (r.ok && r.task_id) expected.add(`${r.task_id}:${due[i]!}`);
    });
    line('created', `${fmt(expected.size)} tasks in ${fmt(createMs)} ms, ${errors.length} errors; first due ${t0 - createdAt} ms after creation finished`);
    if (errors.length > 0) notes.push(`create errors: ${errors.length}, e.g. ${errors[0]!.error ?? ''}`);
    if (createdAt > t0) {
      notes.push(`creation finished ${createdAt - t0} ms after the first task was due: early fires overlapped creation`);
      console.log(`  !! creation overlapped the first ${createdAt - t0} ms of fires (machine busy?)`);
    }

    const lastDue = t0 + spanMs;
    const monoOffset = monoUs() - Date.now() * 1000;
    const epochToMono = (ms: number): number => ms * 1000 + monoOffset;
    const stats = await receiver.waitFor(expected.size, lastDue + 30_000, 1000, (s) => console.log(`  … ${fmt(s.count)} callbacks so far`));
    const cpu1 = cpuSecondsOf(server.pid) ?? NaN;
    const rcpu1 = cpuSecondsOf(receiver.pid) ?? NaN;
    const mem = memOf(server.pid);
    const rec = await receiver.collect();
    const a = analyse(rec, expected);
    const late = distOf(a.lateness);
    const early = a.lateness.filter((x) => x < 0).length;
    const within10 = a.lateness.filter((x) => x <= 10).length;

    line('received (unique fires)', `${fmt(a.unique)} of ${fmt(expected.size)} (${fmt(stats.count)} deliveries)`);
    line('duplicates', fmt(a.duplicates));
    line('missing', fmt(a.missing) + (a.missing > 0 ? ` e.g. ${a.missingSample.join(', ')}` : ''));
    if (a.unexpected > 0) line('unexpected fire ids', fmt(a.unexpected));
    line('lateness p50', `${fmt(late.p50, 1)} ms`);
    line('lateness p90', `${fmt(late.p90, 1)} ms`);
    const check = atMost('lateness p99 (ms)', late.p99, TARGET_P99_MS, 'ms');
    line('lateness p99', `${fmt(late.p99, 1)} ms`, check);
    line('lateness p99.9 / max', `${fmt(late.p999, 1)} / ${fmt(late.max, 1)} ms`);
    line('lateness min (negative = early)', `${fmt(late.min, 1)} ms (${early} early)`);
    line('fires within 10 ms', `${fmt((within10 / Math.max(1, a.unique)) * 100, 2)} %`);
    line('CPU, creation to end: server / receiver', `${fmt(cpu1 - cpu0, 2)} s / ${fmt(rcpu1 - rcpu0, 2)} s`);
    line('server RSS / peak', mem ? `${fmt(mem.rss_mb, 1)} / ${fmt(mem.hwm_mb, 1)} MB` : 'n/a');
    if (a.missing > 0) notes.push(`${a.missing} fires never arrived`);
    if (a.duplicates > 0) notes.push(`${a.duplicates} duplicate deliveries (retries)`);

    const log = { lines: await stopServer(notes) };
    const profile = reportProfile('precision', { fromUs: epochToMono(t0 - 100), toUs: epochToMono(lastDue + 500) });

    const r: BenchResult = {
      name: 'precision',
      started_at: new Date(started).toISOString(),
      duration_s: round1((Date.now() - started) / 1000),
      machine: machine(),
      config: { tasks: N, span_ms: spanMs, lead_ms: leadMs, create_concurrency: 32, format: '13-digit ms' },
      figures: {
        created: expected.size,
        create_errors: errors.length,
        create_ms: Math.round(createMs),
        deliveries: a.deliveries,
        received_unique: a.unique,
        duplicates: a.duplicates,
        missing: a.missing,
        unexpected: a.unexpected,
        retried_deliveries: a.retriedDeliveries,
        lateness_ms: late,
        early_fires: early,
        pct_within_10ms: round1((within10 / Math.max(1, a.unique)) * 100),
        server_cpu_s: round1(cpu1 - cpu0),
        receiver_cpu_s: round1(rcpu1 - rcpu0),
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

if (isMain(import.meta.url)) runStandalone(runPrecision);
