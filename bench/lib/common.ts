/**
 * Shared bench plumbing: child-process and temp-dir bookkeeping (cleaned up in `finally` and on
 * SIGINT/SIGTERM), spawning the built server, /proc readings, percentiles, and result output.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Pool, request } from 'undici';

/** Repository root (this file is dist/bench/lib/common.js once compiled). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVER_MAIN = join(ROOT, 'dist', 'src', 'main.js');
export const LAUNCHER = join(ROOT, 'xcron_server');

/**
 * The node options the ./xcron_server launcher (written by build.sh) runs the server with, so that
 * every bench measures the server as it ships (its V8 young-generation size, say).
 */
export function launcherNodeFlags(): string[] {
  if (!existsSync(LAUNCHER)) throw new Error(`${LAUNCHER} not found: run \`bash build.sh\` first`);
  const m = /^exec node (.*?) "\$here\/dist\/src\/main\.js"/m.exec(readFileSync(LAUNCHER, 'utf8'));
  if (!m) throw new Error(`${LAUNCHER}: no "exec node ... main.js" line`);
  return m[1]!.split(/\s+/).filter(Boolean);
}
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const PROFILE_DIR = join(RESULTS_DIR, 'profiles');

/** Monotonic µs (same clock as V8 CPU-profile timestamps on Linux, so windows can be cut). */
export const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Cleanup registry

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let signalsHooked = false;

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function makeTempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `xcron-bench-${prefix}-`));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  // BENCH_KEEP_LOGS=1: each server's log (server.log) is copied to bench/results/logs/ first.
  if (envFlag('BENCH_KEEP_LOGS') && existsSync(join(d, 'server.log'))) {
    mkdirSync(join(RESULTS_DIR, 'logs'), { recursive: true });
    copyFileSync(join(d, 'server.log'), join(RESULTS_DIR, 'logs', `${basename(d)}.log`));
  }
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

/** Kills every child this process started (by pid) and removes every temp dir. Synchronous. */
export function cleanupAllSync(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  children.clear();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/** On SIGINT/SIGTERM: kill our children, remove temp dirs, exit. */
export function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`\nbench: ${sig}: stopping child processes and removing temp dirs`);
    cleanupAllSync();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => cleanupAllSync());
}

// ---------------------------------------------------------------------------------------------
// Env helpers

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: expected a non-negative number, got ${JSON.stringify(v)}`);
  return Math.floor(n);
}

export const envFlag = (name: string): boolean => ['1', 'true', 'yes', 'on'].includes((process.env[name] ?? '').toLowerCase());

// ---------------------------------------------------------------------------------------------
// Ports, /proc

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** VmRSS / VmHWM of a process in MB (null when unreadable). */
export function memOf(pid: number): { rss_mb: number; hwm_mb: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rss_mb: round1(kb('VmRSS') / 1024), hwm_mb: round1(kb('VmHWM') / 1024) };
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far (null when unreadable). */
export function cpuSecondsOf(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // Fields after "(comm)": state is index 0, so utime (field 14) is index 11 and stime index 12.
    return (Number(rest[11]) + Number(rest[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The server

export interface ServerHandle {
  pid: number;
  port: number;
  baseUrl: string;
  dataDir: string;
  child: ChildProcess;
  /** ms from spawn to the first 200 from /readyz. */
  readyMs: number;
  logFile: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Bench name (used for the CPU profile file name). */
  name: string;
  dataDir: string;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Poll /readyz every this many ms. */
  pollMs?: number;
}

/** Spawns `node dist/src/main.js` as its own process, waits for /readyz. BENCH_PROFILE=1 adds --cpu-prof. */
export async function startServer(o: ServerOptions): Promise<ServerHandle> {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} not found: run \`bash build.sh\` first`);
  const port = await freePort();
  const logFile = join(o.dataDir, 'server.log');
  // BENCH_SERVER_NODE_ARGS: extra node options for the servers only (not the bench, nor the receiver).
  const nodeArgs: string[] = serverNodeFlags();
  if (envFlag('BENCH_PROFILE')) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${o.name}.cpuprofile`);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XCRON_HTTP_HOST: '127.0.0.1',
    // The bench receivers listen on 127.0.0.1 (loopback and private callbacks are refused by default).
    XCRON_CALLBACK_ALLOW_LOOPBACK: 'true',
    XCRON_CALLBACK_ALLOW_PRIVATE: 'true',
    XCRON_HTTP_PORT: String(port),
    XCRON_DATA_DIR: o.dataDir,
    XCRON_LOG_LEVEL: 'warn',
    ...o.env,
  };
  const out = createWriteStream(logFile);
  const t0 = performance.now();
  // cwd = the temp dir, so the repository's xcron.toml is not picked up; config comes from env only.
  const child = track(spawn(process.execPath, [...nodeArgs, SERVER_MAIN], { cwd: o.dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the server');
  const baseUrl = `http://127.0.0.1:${port}`;

  let exited: string | null = null;
  const exitPromise = new Promise<void>((r) => {
    child.once('exit', (code, sig) => {
      exited = `exit code ${code ?? 'null'} signal ${sig ?? 'null'}`;
      r();
    });
  });

  const deadline = t0 + (o.readyTimeoutMs ?? 120_000);
  const pollMs = o.pollMs ?? 10;
  let readyMs = -1;
  while (performance.now() < deadline) {
    if (exited !== null) break;
    try {
      const res = await request(`${baseUrl}/readyz`, { method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200) {
        readyMs = performance.now() - t0;
        break;
      }
    } catch {
      /* not listening yet */
    }
    await sleep(pollMs);
  }
  const handle: ServerHandle = {
    pid,
    port,
    baseUrl,
    dataDir: o.dataDir,
    child,
    readyMs,
    logFile,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exitPromise;
        clearTimeout(t);
      }
      await new Promise<void>((r) => out.end(() => r()));
    },
  };
  if (readyMs < 0) {
    await handle.stop();
    throw new Error(`server not ready (${exited ?? 'timeout'}); log:\n${tail(logFile, 3000)}`);
  }
  return handle;
}

export function tail(file: string, chars: number): string {
  try {
    const s = readFileSync(file, 'utf8');
    return s.length > chars ? `…${s.slice(-chars)}` : s;
  } catch {
    return '(no log)';
  }
}

/** Warn/error lines the server logged (pino JSON), summarised by message. */
export function serverLogSummary(file: string): { lines: number; top: { msg: string; count: number }[] } {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { lines: 0, top: [] };
  }
  const counts = new Map<string, number>();
  let lines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/no API tokens configured/.test(line)) continue; // expected: the benches run without auth
    lines++;
    let msg = line.slice(0, 160);
    try {
      const o = JSON.parse(line) as { msg?: string; level?: number };
      if (o.msg) msg = `[${o.level ?? '?'}] ${o.msg}`;
    } catch {
      /* not JSON */
    }
    counts.set(msg, (counts.get(msg) ?? 0) + 1);
  }
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([msg, count]) => ({ msg, count }));
  return { lines, top };
}

// ---------------------------------------------------------------------------------------------
// HTTP load

export function serverPool(baseUrl: string, connections: number): Pool {
  return new Pool(baseUrl, { connections, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
}

export interface CreateOutcome {
  ok: boolean;
  task_id?: string;
  next_fire_time?: number;
  error?: string;
}

/** POST /xcron/createTask with a JSON body; never throws. */
export async function createTask(pool: Pool, body: string): Promise<CreateOutcome> {
  try {
    const res = await pool.request({
      path: '/xcron/createTask',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return { ok: false, error: `HTTP ${res.statusCode}: ${text.slice(0, 200)}` };
    const env = JSON.parse(text) as { code: number; message?: string; data?: { task_id: string; next_fire_time: number } };
    if (env.code !== 0 || !env.data) return { ok: false, error: `code ${env.code}: ${env.message ?? ''}` };
    return { ok: true, task_id: env.data.task_id, next_fire_time: env.data.next_fire_time };
  } catch (e) {
    const err = e as Error & { code?: string };
    return { ok: false, error: `${err.code ?? err.name}: ${err.message}` };
  }
}

/**
 * Measures createTask req/s right now (one-shots a year ahead, never due) so a bench can schedule
 * its tasks far enough ahead for creation to finish first on a slow or busy machine.
 */
export async function calibrateCreateRate(pool: Pool, url: string, n: number, concurrency: number): Promise<number> {
  const at = Date.now() + 365 * 86_400_000;
  const bodies = Array.from({ length: n }, (_, i) => JSON.stringify({ type: 2, format: String(at + i), callback: { url, body: {} } }));
  const { results, ms } = await createMany(pool, bodies, concurrency);
  const bad = results.find((r) => !r.ok);
  if (bad) throw new Error(`createTask failed during calibration: ${bad.error ?? '?'}`);
  return (n / ms) * 1000;
}

/**
 * Due times of a warm-up of `n` one-shots: ten groups 200 ms apart, the first once every create has
 * landed (creation runs at 2,000-7,000 creates/s on the benches' machine).
 */
export function warmUpDueTimes(n: number, now = Date.now()): number[] {
  const t0 = now + 3000 + Math.ceil(n / 2);
  return Array.from({ length: n }, (_, i) => t0 + (i % 10) * 200);
}

/** Creates every body with `concurrency` requests in flight. Results are in input order. */
export async function createMany(pool: Pool, bodies: readonly string[], concurrency: number): Promise<{ results: CreateOutcome[]; ms: number }> {
  const results: CreateOutcome[] = new Array<CreateOutcome>(bodies.length);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      results[i] = await createTask(pool, bodies[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, bodies.length) }, () => worker()));
  return { results, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------------------------
// Numbers and output

export const round1 = (x: number): number => Math.round(x * 10) / 10;
export const round2 = (x: number): number => Math.round(x * 100) / 100;
export const round4 = (x: number): number => Math.round(x * 10000) / 10000;

/** Nearest-rank percentile of an ascending-sorted array (p in 0..100). */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Dist {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function distOf(values: ArrayLike<number>): Dist {
  const a = Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (const v of a) sum += v;
  return {
    n: a.length,
    min: round2(a[0] ?? NaN),
    p50: round2(pct(a, 50)),
    p90: round2(pct(a, 90)),
    p99: round2(pct(a, 99)),
    p999: round2(pct(a, 99.9)),
    max: round2(a[a.length - 1] ?? NaN),
    mean: round2(a.length ? sum / a.length : NaN),
  };
}

export interface TargetCheck {
  metric: string;
  value: number;
  target: string;
  pass: boolean;
}

export const atLeast = (metric: string, value: number, min: number, unit: string): TargetCheck => ({
  metric,
  value,
  target: `>= ${min.toLocaleString('en-US')} ${unit}`,
  pass: value >= min,
});
export const atMost = (metric: string, value: number, max: number, unit: string): TargetCheck => ({
  metric,
  value,
  target: `<= ${max.toLocaleString('en-US')} ${unit}`,
  pass: value <= max,
});

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : String(n);

export function line(label: string, value: string, check?: TargetCheck): void {
  const t = check ? `   target ${check.target}  ${check.pass ? 'PASS' : 'MISS'}` : '';
  console.log(`  ${label.padEnd(40)} ${value}${t}`);
}

/** Load average when the bench printed its header (machine() is called when results are written). */
let loadAtHeader: number[] | null = null;

export function header(name: string, what: string): void {
  loadAtHeader = loadavg();
  const la = loadAtHeader.map((x) => x.toFixed(2)).join(' ');
  console.log(`\n=== bench ${name}: ${what}`);
  console.log(`  machine: ${cpus().length} cpus, node ${process.version}, loadavg ${la}`);
  console.log(`  server node flags: ${serverNodeFlags().join(' ')}`);
}

/** The server's node flags: the launcher's, then BENCH_SERVER_NODE_ARGS (a later V8 flag wins). */
function serverNodeFlags(): string[] {
  return [...launcherNodeFlags(), ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];
}

export function machine(): Record<string, unknown> {
  // XCRON_* overrides passed through to the server (secrets masked), so tuned runs are recognisable.
  const xcronEnv = Object.fromEntries(
    Object.entries(process.env)
      .filter(([k]) => k.startsWith('XCRON_'))
      .map(([k, v]) => [k, /TOKEN|SECRET|PASSWORD/i.test(k) ? '***' : v]),
  );
  const now = loadavg().map(round2);
  return { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? '', node: process.version, loadavg_at_start: (loadAtHeader ?? now).map(round2), loadavg_now: now, git: gitInfo(), xcron_env: xcronEnv, server_node_flags: serverNodeFlags() };
}

/** The commit benchmarked and whether src/ had uncommitted changes (the build is of the working tree). */
function gitInfo(): { commit: string; src_dirty: boolean } | null {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, src_dirty: dirty };
  } catch {
    return null;
  }
}

export interface BenchResult {
  name: string;
  started_at: string;
  duration_s: number;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  figures: Record<string, unknown>;
  targets: TargetCheck[];
  notes: string[];
}

export function writeResult(r: BenchResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${r.name}.json`);
  writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
  console.log(`  -> ${file.slice(ROOT.length + 1)}`);
  return file;
}

/** True when this module file is the process's entry script. */
export const isMain = (metaUrl: string): boolean => process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === metaUrl;

/** Runs one bench as a script: signals hooked, exit code 1 on a crash (not on a MISS). */
export function runStandalone(fn: () => Promise<unknown>): void {
  hookSignals();
  fn().then(
    () => {
      cleanupAllSync();
      process.exit(0);
    },
    (e: unknown) => {
      console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      cleanupAllSync();
      process.exit(1);
    },
  );
}

/** Stops what a single-server bench started (in this order), ignoring errors, and removes its temp dir. */
export async function teardown(o: {
  pool?: { close(): Promise<unknown> } | null | undefined;
  server?: { stop(): Promise<unknown> } | null | undefined;
  receiver?: { stop(): Promise<unknown> } | null | undefined;
  dir: string;
}): Promise<void> {
  if (o.pool) await o.pool.close().catch(() => undefined);
  if (o.server) await o.server.stop().catch(() => undefined);
  if (o.receiver) await o.receiver.stop().catch(() => undefined);
  removeTempDir(o.dir);
}
