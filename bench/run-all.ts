/**
 * `npm run bench`: runs precision, burst, create and scale in sequence (each with its own server,
 * receiver and temp dir), then prints one summary table. BENCH_ONLY=precision,burst selects a subset.
 * Exit code 0 even when a target is missed (benchmarks report, they do not assert); 1 on a crash.
 */
import { runBurst } from './burst.js';
import { runCreate } from './create.js';
import { cleanupAllSync, fmt, hookSignals, sleep, type BenchResult } from './lib/common.js';
import { runPrecision } from './precision.js';
import { runScale } from './scale.js';

const ALL: [string, () => Promise<BenchResult>][] = [
  ['precision', runPrecision],
  ['burst', runBurst],
  ['create', runCreate],
  ['scale', runScale],
];

async function main(): Promise<number> {
  hookSignals();
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const selected = only.length > 0 ? ALL.filter(([n]) => only.includes(n)) : ALL;
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const [name, fn] of selected) {
    try {
      results.push(await fn());
    } catch (e) {
      failed.push(name);
      console.error(`bench ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    await sleep(1000); // let the previous processes' exit settle before the next bench
  }
  console.log('\n=== summary');
  for (const r of results) {
    for (const t of r.targets) {
      console.log(`  ${r.name.padEnd(10)} ${t.metric.padEnd(28)} ${fmt(t.value).padStart(10)}   target ${t.target.padEnd(20)} ${t.pass ? 'PASS' : 'MISS'}`);
    }
    for (const n of r.notes) console.log(`  ${r.name.padEnd(10)} note: ${n}`);
  }
  for (const f of failed) console.log(`  ${f.padEnd(10)} FAILED to run`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    cleanupAllSync();
    process.exit(code);
  },
  (e: unknown) => {
    console.error(e);
    cleanupAllSync();
    process.exit(1);
  },
);
