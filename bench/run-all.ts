/**
 * `npm run bench`: every figure of the performance issue (#24) in one run and one table: create
 * (single), create-batch, burst (first callback, first 250 ms / peak, callbacks/s), precision
 * (200 fires/s), load (5,000 fires/s), cluster (failover; CPU per callback and Redis commands per
 * callback against standalone), cluster-cost (per-node CPU per callback with 1, 2 and 3 nodes), peer (xcron vs BullMQ), scale. Each bench starts its own server, receiver
 * and temp dir, in sequence; the table lists every target with PASS / MISS and is also written to
 * bench/results/run-all.json.
 *
 *   npm run bench                 # the full run (about 20 minutes on 2 cores)
 *   npm run bench -- --quick      # shorter windows and smaller sizes (about 8 minutes); figures marked quick
 *   BENCH_ONLY=burst,precision npm run bench
 *
 * Exit code 0 even when a target is missed (benchmarks report, they do not assert); 1 when a bench
 * could not run.
 */
import { loadavg } from 'node:os';
import { runBurst } from './burst.js';
import { runClusterCost } from './cluster-cost.js';
import { runCluster } from './cluster.js';
import { runCreateBatch } from './create-batch.js';
import { runCreate } from './create.js';
import { atMost, cleanupAllSync, fmt, hookSignals, machine, round1, sleep, writeResult, type BenchResult, type TargetCheck } from './lib/common.js';
import { runLoad } from './load.js';
import { runPeer } from './peer.js';
import { runPrecision } from './precision.js';
import { runScale } from './scale.js';

const ALL: [string, () => Promise<BenchResult>][] = [
  ['create', runCreate],
  ['create-batch', runCreateBatch],
  ['burst', runBurst],
  ['precision', runPrecision],
  ['load', runLoad],
  ['cluster', runCluster],
  ['cluster-cost', runClusterCost],
  ['peer', runPeer],
  ['scale', runScale],
];

/** `--quick`: defaults for a shorter run (an explicit environment variable still wins). */
const QUICK: Record<string, string> = {
  BENCH_CREATE_SECONDS: '5',
  BENCH_LOAD_SECONDS: '20',
  BENCH_LOAD_WARMUP_MS: '3000',
  BENCH_CLUSTER_CREATE_SECONDS: '5',
  BENCH_CLUSTER_PERIODIC: '100',
  BENCH_PEER_SYSTEMS: 'xcron,bullmq',
  BENCH_PEER_ROUNDS: '1',
  BENCH_PEER_PERIODIC_S: '10',
  BENCH_SCALE_TASKS: '100000',
};

/** Issue #24 item 5: cluster CPU per callback (nodes + Redis) <= 1.25x standalone, <= 10 Redis commands per callback. */
const TARGET_CLUSTER_CPU_RATIO = 1.25;
const TARGET_REDIS_CMDS = 10;

interface BurstFigures {
  cpu_s?: number;
  redis_cpu_s?: number;
  deliveries?: number;
  redis_calls_per_callback?: Record<string, number> | null;
}

/** The cluster cost rows, from bench:cluster's figures (when it recorded them). */
function clusterCost(r: BenchResult): TargetCheck[] {
  const f = r.figures as { standalone?: { burst?: BurstFigures }; cluster?: { burst?: BurstFigures } };
  const s = f.standalone?.burst;
  const c = f.cluster?.burst;
  const out: TargetCheck[] = [];
  if (s?.cpu_s !== undefined && c?.cpu_s !== undefined && s.deliveries && c.deliveries) {
    const sPer = s.cpu_s / s.deliveries;
    const cPer = (c.cpu_s + (c.redis_cpu_s ?? 0)) / c.deliveries;
    out.push(atMost('CPU per callback, 3 nodes + Redis / standalone', Math.round((cPer / sPer) * 100) / 100, TARGET_CLUSTER_CPU_RATIO, 'x'));
  }
  if (c?.redis_calls_per_callback) {
    const total = Object.values(c.redis_calls_per_callback).reduce((a, b) => a + b, 0);
    out.push(atMost('Redis commands per callback (burst)', round1(total), TARGET_REDIS_CMDS, ''));
  }
  return out;
}

async function main(): Promise<number> {
  hookSignals();
  const quick = process.argv.includes('--quick');
  if (quick) for (const [k, v] of Object.entries(QUICK)) process.env[k] ??= v;
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const selected = only.length > 0 ? ALL.filter(([n]) => only.includes(n)) : ALL;
  const started = Date.now();
  const load0 = loadavg();
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const [name, fn] of selected) {
    try {
      const r = await fn();
      if (name === 'cluster') r.targets.push(...clusterCost(r));
      results.push(r);
    } catch (e) {
      failed.push(name);
      console.error(`bench ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    await sleep(1000); // let the previous processes' exit settle before the next bench
  }
  const rows = results.flatMap((r) => r.targets.map((t) => ({ bench: r.name, ...t, loadavg: (r.machine.loadavg_at_start as number[] | undefined)?.[0] ?? null })));
  console.log(`\n=== summary${quick ? ' (--quick)' : ''}: load average ${load0.map((x) => x.toFixed(1)).join(' ')} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} now`);
  console.log('| bench | figure | value | target | | load avg |');
  console.log('|---|---|---|---|---|---|');
  for (const x of rows) console.log(`| ${x.bench} | ${x.metric} | ${fmt(x.value, Number.isInteger(x.value) ? 0 : 2)} | ${x.target} | ${x.pass ? 'PASS' : '**MISS**'} | ${x.loadavg === null ? '' : x.loadavg.toFixed(1)} |`);
  for (const r of results) for (const n of r.notes) console.log(`  ${r.name} note: ${n}`);
  for (const f of failed) console.log(`| ${f} | FAILED to run | | | | |`);
  writeResult({
    name: quick ? 'run-all-quick' : 'run-all',
    started_at: new Date(started).toISOString(),
    duration_s: round1((Date.now() - started) / 1000),
    machine: machine(),
    config: { quick, only: selected.map(([n]) => n) },
    figures: { rows, failed },
    targets: rows,
    notes: results.flatMap((r) => r.notes.map((n) => `${r.name}: ${n}`)),
  });
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    cleanupAllSync();
    process.exit(code);
  },
  (e: unknown) => {
    cleanupAllSync();
    console.error(e);
    process.exit(1);
  },
);
