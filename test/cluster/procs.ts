/**
 * Real cluster processes for the end-to-end cluster tests: `./xcron_server` nodes in cluster mode
 * (each with its own port, temp dir, node id and User-Agent, so the receiver knows which node
 * delivered a callback), a real HTTP receiver that records every callback by fire id, and the
 * checks every chaos scenario ends with. Every process is killed in `stopAllNodes()`.
 *
 * XCRON_TEST_MAIN may point at another compiled main.js (a private build); by default the real
 * built ./xcron_server is used (built by `bash build.sh` when missing).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { slotOf } from '../../src/task/index.js';
import { freePort } from '../helpers/redis.js';

const UP2 = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository (from dist/test/cluster when compiled for bench/chaos.ts: one level further up). */
export const REPO_ROOT = existsSync(join(UP2, 'package.json')) ? UP2 : resolve(UP2, '..');
const LAUNCHER = join(REPO_ROOT, 'xcron_server');

export function ensureBuilt(): void {
  if (process.env.XCRON_TEST_MAIN) return;
  if (existsSync(join(REPO_ROOT, 'dist/src/main.js')) && existsSync(join(REPO_ROOT, 'dist/src/redis/lua/commitFires-1.lua')) && existsSync(LAUNCHER)) return;
  execFileSync('bash', ['build.sh'], { cwd: REPO_ROOT, stdio: 'inherit', timeout: 600_000 });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, probe: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      last = v;
      if (ok(v)) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last instanceof Error ? last.message : JSON.stringify(last)).slice(0, 1500)}`);
    await delay(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface Envelope<T> {
  code: number;
  message: string;
  data: T;
}

export async function api<T = unknown>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Envelope<T> }> {
  const res = await request(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    reset: true,
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: JSON.parse(text) as Envelope<T> };
}

export interface ClusterView {
  node: string;
  members: string[];
  slots: { slot: number; owner: string | null; epoch: number | null }[];
}

export interface RunView {
  run_id: string;
  task_id: string;
  node: string | null;
  scheduled_time: number;
  start_time: number | null;
  end_time: number | null;
  attempts: number;
  status: string;
}

// ---------------------------------------------------------------------------------------------
// Nodes

export interface NodeOptions {
  redisUrl: string;
  prefix: string;
  name: string;
  slots?: number;
  leaseMs?: number;
  redisCluster?: boolean;
  env?: Record<string, string>;
  /** Written as the node's ./xcron.toml (for the file-only sections, e.g. `[targets.<name>]`). */
  toml?: string;
  /** Default true: wait until /readyz answers ready. */
  waitReady?: boolean;
}

const nodesLive = new Set<XNode>();
/** Every node started in this worker (for failure reports). */
export const allNodes: XNode[] = [];
const dirs = new Set<string>();

export class XNode {
  readonly lines: string[] = [];
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        nodesLive.delete(this);
        res();
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (l) => this.lines.push(l));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
  }

  static async start(o: NodeOptions): Promise<XNode> {
    ensureBuilt();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), `xcron-node-${o.name}-`));
    dirs.add(dir);
    if (o.toml !== undefined) writeFileSync(join(dir, 'xcron.toml'), o.toml);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('XCRON_') && v !== undefined) env[k] = v;
    Object.assign(env, {
      XCRON_HTTP_HOST: '127.0.0.1',
      // The test receivers listen on 127.0.0.1 (loopback and private callbacks are refused by default).
      XCRON_CALLBACK_ALLOW_LOOPBACK: 'true',
      XCRON_CALLBACK_ALLOW_PRIVATE: 'true',
      XCRON_HTTP_PORT: String(port),
      XCRON_DATA_DIR: join(dir, 'data'),
      XCRON_NODE_ID: o.name,
      XCRON_LOG_LEVEL: 'info',
      XCRON_DELIVERY_USER_AGENT: `xcron-test/${o.name}`,
      XCRON_CLUSTER_REDIS_URL: o.redisUrl,
      XCRON_CLUSTER_KEY_PREFIX: o.prefix,
      XCRON_CLUSTER_SLOTS: String(o.slots ?? 64),
      XCRON_CLUSTER_LEASE_MS: String(o.leaseMs ?? 3000),
      XCRON_CLUSTER_REDIS_CLUSTER: o.redisCluster ? 'true' : 'false',
      XCRON_SHUTDOWN_TIMEOUT_MS: '3000',
      ...o.env,
    });
    const main = process.env.XCRON_TEST_MAIN;
    const child = main
      ? spawn(process.execPath, ['--enable-source-maps', main], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(LAUNCHER, [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const n = new XNode(o.name, port, child);
    nodesLive.add(n);
    allNodes.push(n);
    if (o.waitReady !== false) await n.waitReady();
    return n;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get running(): boolean {
    return this.exit === null;
  }
  get userAgent(): string {
    return `xcron-test/${this.name}`;
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    await until(
      `${this.name} ready`,
      async () => {
        if (!this.running) throw new Error(`${this.name} exited ${JSON.stringify(this.exit)}: ${this.stderr.slice(-1500)} ${this.lines.slice(-10).join('\n')}`);
        return (await api(this.base, 'GET', '/readyz')).status;
      },
      (s) => s === 200,
      timeoutMs,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${this.tail()}`);
    });
  }

  call<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Envelope<T> }> {
    return api<T>(this.base, method, path, body);
  }

  async create(body: unknown): Promise<{ task_id: string; next_fire_time: number | null }> {
    const r = await this.call<{ task_id: string; next_fire_time: number | null }>('POST', '/xcron/createTask', body);
    if (r.status !== 200 || r.body.code !== 0) throw new Error(`createTask via ${this.name}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data;
  }

  async cluster(): Promise<ClusterView> {
    const r = await this.call<ClusterView>('GET', '/xcron/cluster');
    if (r.status !== 200) throw new Error(`cluster via ${this.name}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data;
  }

  /** Every run of a task (newest first), through the taskRuns endpoint. */
  async runs(taskId: string): Promise<RunView[]> {
    const out: RunView[] = [];
    let cursor: string | null = null;
    for (;;) {
      const r: { status: number; body: Envelope<{ runs: RunView[]; next_cursor: string | null }> } = await this.call('GET', `/xcron/taskRuns?task_id=${taskId}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      if (r.status !== 200) throw new Error(`taskRuns ${taskId} via ${this.name}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      out.push(...r.body.data.runs);
      cursor = r.body.data.next_cursor;
      if (!cursor) return out;
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  async kill9(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** JSON log lines matching `msg` (substring). */
  logs(msg: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      if (!l.includes(msg)) continue;
      try {
        out.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    }
    return out;
  }

  tail(n = 30): string {
    return `--- ${this.name} :${this.port} exit ${JSON.stringify(this.exit)}\n${this.lines.slice(-n).join('\n')}\n--- stderr\n${this.stderr.slice(-2000)}`;
  }
}

export async function stopAllNodes(): Promise<void> {
  await Promise.all(
    [...nodesLive].map(async (n) => {
      n.signal('SIGCONT');
      n.signal('SIGKILL');
      await n.exited;
    }),
  );
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.once('exit', () => {
  for (const n of nodesLive) {
    n.child.kill('SIGCONT');
    n.child.kill('SIGKILL');
  }
});

/** Writes every node's output to <tmp>/xcron-cluster-logs/<test>/<node>.log; returns the dir. */
export function dumpLogs(test: string): string {
  const dir = join(tmpdir(), 'xcron-cluster-logs', test.replace(/[^\w.-]+/g, '_').slice(0, 80));
  mkdirSync(dir, { recursive: true });
  for (const n of allNodes) writeFileSync(join(dir, `${n.name}-${n.port}.log`), `${n.lines.join('\n')}\n--- stderr\n${n.stderr}`);
  return dir;
}

/** Slot -> owner, read from one node's /xcron/cluster. */
export async function owners(via: XNode): Promise<Map<number, string | null>> {
  const v = await via.cluster();
  return new Map(v.slots.map((s) => [s.slot, s.owner]));
}

export const slotOfTask = (id: string, slots: number): number => slotOf(id, slots);

// ---------------------------------------------------------------------------------------------
// The receiver

export interface Callback {
  fireId: string;
  taskId: string;
  scheduled: number;
  attempt: number;
  /** The delivering node (from the User-Agent). */
  node: string;
  arrivedAt: number;
  path: string;
}

/** How a path is answered (default 200 with a small JSON body). */
export interface CallbackReply {
  status: number;
  headers?: Record<string, string>;
}

/**
 * Records every callback; `hold(path)` leaves requests to a path unanswered until `release`;
 * `answer(path, fn)` picks the status (and headers) per callback.
 */
export class CallbackReceiver {
  readonly got: Callback[] = [];
  private readonly held = new Map<string, ServerResponse[]>();
  private readonly holding = new Set<string>();
  private readonly answers = new Map<string, (c: Callback) => CallbackReply>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<CallbackReceiver> {
    const server = createServer();
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const rec = new CallbackReceiver(server, (server.address() as AddressInfo).port);
    server.on('request', (req, res) => {
      req.resume();
      req.on('end', () => {
        const h = (k: string): string => String(req.headers[k] ?? '');
        const path = (req.url ?? '/').split('?')[0]!;
        const c: Callback = {
          fireId: h('x-xcron-fire-id'),
          taskId: h('x-xcron-task-id'),
          scheduled: Number(h('x-xcron-scheduled-time')),
          attempt: Number(h('x-xcron-attempt')),
          node: h('user-agent').replace(/^xcron-test\//, ''),
          arrivedAt: Date.now(),
          path,
        };
        rec.got.push(c);
        if (rec.holding.has(path)) {
          const list = rec.held.get(path) ?? [];
          list.push(res);
          rec.held.set(path, list);
          return;
        }
        const reply = rec.answers.get(path)?.(c) ?? { status: 200 };
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end('{"ok":true}');
      });
    });
    return rec;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  hold(path: string): void {
    this.holding.add(path);
  }

  /** Answers callbacks to `path` with what `fn` returns. */
  answer(path: string, fn: (c: Callback) => CallbackReply): void {
    this.answers.set(path, fn);
  }

  /** Stops holding a path (held requests stay unanswered: their senders may be dead). */
  release(path: string): void {
    this.holding.delete(path);
  }

  forTask(id: string): Callback[] {
    return this.got.filter((c) => c.taskId === id);
  }

  async close(): Promise<void> {
    for (const list of this.held.values()) for (const r of list) r.destroy();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The checks every scenario ends with

/**
 * No tick committed twice: a task's runs have distinct scheduled times (one run per (task, tick)),
 * run_count equals the runs that count (not SKIPPED/MISSED), and every delivered fire id belongs
 * to a recorded run. Returns the runs by task.
 */
export async function checkNoDoubleCommit(via: XNode, taskIds: readonly string[], rec: CallbackReceiver): Promise<Map<string, RunView[]>> {
  const out = new Map<string, RunView[]>();
  for (const id of taskIds) {
    const q = await via.call<{ run_count: number }>('GET', `/xcron/queryTask?task_id=${id}`);
    if (q.status !== 200) throw new Error(`queryTask ${id}: HTTP ${q.status} ${JSON.stringify(q.body)}`);
    const runs = await via.runs(id);
    const ticks = runs.map((r) => r.scheduled_time);
    if (new Set(ticks).size !== ticks.length) throw new Error(`task ${id}: a tick has two runs: ${JSON.stringify(ticks.sort())}`);
    const counted = runs.filter((r) => r.status !== 'SKIPPED' && r.status !== 'MISSED').length;
    if (q.body.data.run_count !== counted) throw new Error(`task ${id}: run_count ${q.body.data.run_count} but ${counted} counted runs`);
    const runIds = new Set(runs.map((r) => r.run_id));
    for (const c of rec.forTask(id)) if (!runIds.has(c.fireId)) throw new Error(`task ${id}: fire ${c.fireId} delivered without a run record`);
    out.set(id, runs);
  }
  return out;
}

/**
 * Every tick of an every-second task in [from, to] is either recorded as a run (delivered, or
 * MISSED / SKIPPED by a policy), or skipped by the misfire policy: it lies between a run that was
 * committed more than `thresholdMs` late (fire_once jumps to the next tick after "now") and the
 * next recorded run. Returns the ticks that are neither (lost ticks).
 */
export function lostTicks(runs: readonly RunView[], from: number, to: number, thresholdMs: number): number[] {
  const sorted = [...runs].sort((a, b) => a.scheduled_time - b.scheduled_time);
  const have = new Set(sorted.map((r) => r.scheduled_time));
  const lost: number[] = [];
  for (let t = Math.ceil(from / 1000) * 1000; t <= to; t += 1000) {
    if (have.has(t)) continue;
    const before = sorted.filter((r) => r.scheduled_time < t).at(-1);
    const committedAt = before ? (before.start_time ?? before.end_time) : null;
    if (before && committedAt !== null && committedAt - before.scheduled_time > thresholdMs) continue;
    lost.push(t);
  }
  return lost;
}

/** Fire ids delivered by more than one node. */
export function deliveredByTwoNodes(cbs: readonly Callback[]): Map<string, string[]> {
  const by = new Map<string, Set<string>>();
  for (const c of cbs) {
    const s = by.get(c.fireId) ?? new Set<string>();
    s.add(c.node);
    by.set(c.fireId, s);
  }
  const out = new Map<string, string[]>();
  for (const [f, s] of by) if (s.size > 1) out.set(f, [...s]);
  return out;
}
