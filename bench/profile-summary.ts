/**
 * Prints the top functions by self time of a V8 .cpuprofile:
 *   node dist/bench/profile-summary.js bench/results/profiles/burst.cpuprofile [top] [fromUs toUs]
 * (The benches write such profiles of the server when run with BENCH_PROFILE=1.)
 */
import { summarizeProfile } from './lib/profile.js';

const file = process.argv[2];
if (!file) {
  console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]');
  process.exit(2);
}
const from = process.argv[4];
const to = process.argv[5];
const s = summarizeProfile(file, Number(process.argv[3] ?? 25), from && to ? { fromUs: Number(from), toUs: Number(to) } : undefined);
console.log(`${file}: ${s.total_ms} ms sampled, idle ${s.idle_ms} ms, GC ${s.gc_ms} ms`);
console.log('by package (% of busy time):');
for (const p of s.by_package) console.log(`  ${String(p.busy_pct).padStart(5)}%  ${String(p.self_ms).padStart(7)} ms  ${p.pkg}`);
console.log('top functions by self time (% of busy time):');
for (const h of s.hot) console.log(`  ${String(h.busy_pct).padStart(5)}%  ${String(h.self_ms).padStart(7)} ms  ${h.fn}  ${h.where}`);
console.log('top functions by inclusive time (% of busy time):');
for (const h of s.inclusive) console.log(`  ${String(h.busy_pct).padStart(5)}%  ${String(h.total_ms).padStart(7)} ms  ${h.fn}  ${h.where}`);
