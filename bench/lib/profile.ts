/** Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROFILE_DIR, ROOT, envFlag } from './common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  where: string;
  self_ms: number;
  self_pct: number;
  /** Self time with idle excluded from the denominator. */
  busy_pct: number;
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  if (u.startsWith(ROOT)) return u.slice(ROOT.length + 1);
  return u;
}

export interface Summary {
  total_ms: number;
  idle_ms: number;
  gc_ms: number;
  hot: HotSpot[];
  by_package: { pkg: string; self_ms: number; busy_pct: number }[];
  /** Inclusive (self + callees) time of functions, recursion counted once. */
  inclusive: { fn: string; where: string; total_ms: number; busy_pct: number }[];
  /** The sample window used (monotonic µs), when one was given. */
  window?: { fromUs: number; toUs: number };
}

/**
 * `window` (monotonic µs, the clock of process.hrtime and of V8's profile timestamps on Linux)
 * restricts the summary to samples taken inside it.
 */
export function summarizeProfile(file: string, top = 20, window?: { fromUs: number; toUs: number }): Summary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  let ts = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    ts += p.timeDeltas[i] ?? 0;
    if (window && (ts < window.fromUs || ts > window.toUs)) continue;
    // timeDeltas[i] is the time before sample i; attribute the following delta to sample i.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const agg = new Map<string, { fn: string; where: string; ms: number }>();
  const pkgs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += ms;
    const cf = n.callFrame;
    const fn = cf.functionName || '(anonymous)';
    if (fn === '(idle)') idle += ms;
    if (fn === '(garbage collector)') gc += ms;
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${fn}@${where}`;
    const a = agg.get(key) ?? { fn, where, ms: 0 };
    a.ms += ms;
    agg.set(key, a);
    let pkg = '(native/vm)';
    if (cf.url.includes('node_modules/')) {
      const rest = cf.url.slice(cf.url.lastIndexOf('node_modules/') + 'node_modules/'.length).split('/');
      pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : rest[0]!;
    } else if (cf.url.startsWith('node:')) pkg = 'node core';
    else if (cf.url.includes('/dist/src/')) pkg = `xcron ${cf.url.slice(cf.url.indexOf('/dist/src/') + 10).split('/')[0] ?? ''}`;
    else if (fn === '(idle)') pkg = '(idle)';
    else if (fn === '(garbage collector)') pkg = '(gc)';
    else if (fn === '(program)') pkg = '(program)';
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + ms);
  }
  const busy = Math.max(1e-9, total - idle);
  const hot = [...agg.values()]
    .filter((a) => a.fn !== '(idle)')
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((a) => ({ fn: a.fn, where: a.where, self_ms: Math.round(a.ms), self_pct: Math.round((a.ms / total) * 1000) / 10, busy_pct: Math.round((a.ms / busy) * 1000) / 10 }));
  const by_package = [...pkgs.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([pkg, ms]) => ({ pkg, self_ms: Math.round(ms), busy_pct: Math.round((ms / busy) * 1000) / 10 }));
  // Inclusive time: walk the call tree from the root, carrying the set of keys already on the stack.
  const incl = new Map<string, { fn: string; where: string; ms: number }>();
  const childIds = new Set<number>();
  for (const n of p.nodes) for (const c of n.children ?? []) childIds.add(c);
  const keyOf = (n: ProfileNode): { key: string; fn: string; where: string } => {
    const fn = n.callFrame.functionName || '(anonymous)';
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '';
    return { key: `${fn}@${where}`, fn, where };
  };
  const subtotal = new Map<number, number>();
  const sub = (id: number): number => {
    const cached = subtotal.get(id);
    if (cached !== undefined) return cached;
    const n = byId.get(id);
    let t = self.get(id) ?? 0;
    for (const c of n?.children ?? []) t += sub(c);
    subtotal.set(id, t);
    return t;
  };
  const stack: { id: number; onStack: Set<string> }[] = p.nodes.filter((n) => !childIds.has(n.id)).map((n) => ({ id: n.id, onStack: new Set<string>() }));
  while (stack.length > 0) {
    const { id, onStack } = stack.pop()!;
    const n = byId.get(id);
    if (!n) continue;
    const k = keyOf(n);
    let next = onStack;
    if (!onStack.has(k.key)) {
      const a = incl.get(k.key) ?? { fn: k.fn, where: k.where, ms: 0 };
      a.ms += sub(id);
      incl.set(k.key, a);
      next = new Set(onStack).add(k.key);
    }
    for (const c of n.children ?? []) stack.push({ id: c, onStack: next });
  }
  const inclusive = [...incl.values()]
    .filter((a) => !['(root)', '(idle)', '(program)'].includes(a.fn))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((a) => ({ fn: a.fn, where: a.where, total_ms: Math.round(a.ms), busy_pct: Math.round((a.ms / busy) * 1000) / 10 }));
  return { total_ms: Math.round(total), idle_ms: Math.round(idle), gc_ms: Math.round(gc), hot, by_package, inclusive, ...(window ? { window } : {}) };
}

/** When BENCH_PROFILE=1: prints and returns the summary of `<PROFILE_DIR>/<name>.cpuprofile`. */
export function reportProfile(name: string, window?: { fromUs: number; toUs: number }): Summary | null {
  if (!envFlag('BENCH_PROFILE')) return null;
  const file = join(PROFILE_DIR, `${name}.cpuprofile`);
  if (!existsSync(file)) {
    console.log(`  (no CPU profile at ${file}: the server did not exit cleanly)`);
    return null;
  }
  const s = summarizeProfile(file, 20, window);
  const span = window ? ` (only the measured window, ${Math.round((window.toUs - window.fromUs) / 1000)} ms)` : '';
  console.log(`  server CPU profile ${file.slice(ROOT.length + 1)}${span}: ${s.total_ms} ms sampled, idle ${s.idle_ms} ms, GC ${s.gc_ms} ms`);
  console.log('  by package (% of busy time): ' + s.by_package.map((p) => `${p.pkg} ${p.busy_pct}%`).join(', '));
  console.log('  top functions by self time (% of busy time):');
  for (const h of s.hot.slice(0, 15)) console.log(`    ${String(h.busy_pct).padStart(5)}%  ${String(h.self_ms).padStart(6)} ms  ${h.fn}  ${h.where}`);
  console.log('  top xcron functions by inclusive time (% of busy time):');
  for (const h of s.inclusive.filter((x) => x.where.startsWith('dist/src/')).slice(0, 8)) {
    console.log(`    ${String(h.busy_pct).padStart(5)}%  ${String(h.total_ms).padStart(6)} ms  ${h.fn}  ${h.where}`);
  }
  return s;
}
