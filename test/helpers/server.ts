/**
 * The real built server as a child process: `./xcron_server` with a temp data dir, a free port and
 * XCRON_* env overrides. Captures stdout (pino JSON lines) and stderr, waits for /healthz, and can be
 * signalled (SIGTERM, SIGKILL) and restarted on the same data dir.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { XcronClient } from './http.js';
import { freePort } from './ports.js';
import { waitUntil } from './wait.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const LAUNCHER = join(REPO_ROOT, 'xcron_server');
const MAIN_JS = join(REPO_ROOT, 'dist/src/main.js');

/** Builds once (bash build.sh) when the compiled server or the launcher is missing. CI builds first. */
export function ensureBuilt(): void {
  if (existsSync(MAIN_JS) && existsSync(LAUNCHER)) return;
  execFileSync('bash', ['build.sh'], { cwd: REPO_ROOT, stdio: 'inherit', timeout: 600_000 });
  if (!existsSync(MAIN_JS) || !existsSync(LAUNCHER)) throw new Error('bash build.sh did not produce dist/src/main.js and ./xcron_server');
}

/** The path of a command on the PATH, or null (the docs examples in Go are skipped without `go`). */
export function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`]).toString().trim() || null;
  } catch {
    return null;
  }
}

/** A temp directory removed by `cleanupTempDirs`. */
const tempDirs = new Set<string>();
export function tempDir(prefix = 'xcron-e2e-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}
export function cleanupTempDirs(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

/**
 * Callbacks to loopback and private addresses, refused by default, allowed: the test receivers
 * listen on 127.0.0.1. A test of the default policy overrides these with 'false'.
 */
export const DEV_CALLBACK_ENV: Readonly<Record<string, string>> = { XCRON_CALLBACK_ALLOW_LOOPBACK: 'true', XCRON_CALLBACK_ALLOW_PRIVATE: 'true' };

/** The environment of a child: ours without any XCRON_* (unknown keys are fatal), plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('XCRON_') && v !== undefined) env[k] = v;
  return { ...env, ...extra };
}

export interface ServerOptions {
  /** Working dir; it holds no xcron.toml unless the test writes one. Default: a new temp dir. */
  cwd?: string;
  /** Default: `<cwd>/data`. */
  dataDir?: string;
  /** Default: a free port. */
  port?: number;
  /** Extra XCRON_* (or other) variables. */
  env?: Record<string, string>;
  args?: string[];
  /**
   * Node options: the server is then started as `node <nodeArgs> dist/src/main.js <args>` instead of
   * through ./xcron_server (as a Dockerfile's CMD or a process manager would start it).
   */
  nodeArgs?: string[];
  /** Default true: resolve only once GET /healthz answers code 0. */
  waitHealthy?: boolean;
  /**
   * Default true: callbacks to loopback and private addresses allowed (DEV_CALLBACK_ENV), as the
   * test receivers listen on 127.0.0.1. false: the server's own default policy.
   */
  devCallbacks?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<XcronServer>();
let started: XcronServer[] = [];

export class XcronServer {
  /** Every stdout line, in order. */
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | null = null;
  readonly client: XcronClient;
  private readonly lineWaiters = new Set<() => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly opts: Required<Pick<ServerOptions, 'cwd' | 'dataDir' | 'port' | 'env' | 'args'>>,
  ) {
    this.client = new XcronClient(this.baseUrl);
    this.exited = new Promise<ExitInfo>((res) => {
      child.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        for (const w of this.lineWaiters) w();
        res(this.exitInfo);
      });
    });
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      for (const w of this.lineWaiters) w();
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      this.stderr += s;
    });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.opts.port}`;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get dbFile(): string {
    return join(this.opts.dataDir, 'xcron.db');
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  /** Spawns ./xcron_server and (by default) waits until /healthz answers. */
  static async start(opts: ServerOptions = {}): Promise<XcronServer> {
    ensureBuilt();
    const cwd = opts.cwd ?? tempDir();
    const full = {
      cwd,
      dataDir: opts.dataDir ?? join(cwd, 'data'),
      port: opts.port ?? (await freePort()),
      env: opts.env ?? {},
      args: opts.args ?? [],
    };
    const env = childEnv({
      XCRON_HTTP_HOST: '127.0.0.1',
      // The test receivers listen on 127.0.0.1: the development setting (as --dev), set explicitly.
      ...(opts.devCallbacks === false ? {} : DEV_CALLBACK_ENV),
      XCRON_HTTP_PORT: String(full.port),
      XCRON_DATA_DIR: full.dataDir,
      XCRON_NODE_ID: `e2e-${full.port}`,
      XCRON_LOG_LEVEL: 'info',
      ...full.env,
    });
    const child = opts.nodeArgs
      ? spawn(process.execPath, [...opts.nodeArgs, join(REPO_ROOT, 'dist', 'src', 'main.js'), ...full.args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(LAUNCHER, full.args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new XcronServer(child, full);
    live.add(s);
    started.push(s);
    if (opts.waitHealthy !== false) await s.waitHealthy();
    return s;
  }

  /** A new process on the same data dir, port and env (this one must have exited). */
  async restart(extra: Partial<ServerOptions> = {}): Promise<XcronServer> {
    if (this.running) throw new Error('restart: the previous process is still running');
    return XcronServer.start({ ...this.opts, ...extra, env: { ...this.opts.env, ...extra.env } });
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitUntil(
      async () => {
        if (!this.running) throw new Error(`server exited early (${JSON.stringify(this.exitInfo)}); stderr: ${this.stderr.slice(-2000)}; stdout: ${this.lines.slice(-20).join('\n')}`);
        const r = await this.client.healthz();
        return r.status === 200 && r.body.code === 0;
      },
      (okay) => okay,
      timeoutMs,
      `GET ${this.baseUrl}/healthz of pid ${this.child.pid}`,
      50,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\nstderr: ${this.stderr.slice(-2000)}\nstdout: ${this.lines.slice(-20).join('\n')}`);
    });
  }

  /** Stdout lines parsed as JSON (non-JSON lines are skipped). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const l of this.lines) {
      try {
        const v = JSON.parse(l) as unknown;
        if (typeof v === 'object' && v !== null) out.push(v as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
    return out;
  }

  /** Resolves with the first JSON log line matching `pred` (already written or still to come). */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs: number, what = 'a log line'): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): boolean => {
        const hit = this.logs().find(pred);
        if (hit) {
          done();
          resolve(hit);
          return true;
        }
        if (!this.running) {
          done();
          reject(new Error(`server exited (${JSON.stringify(this.exitInfo)}) before ${what}; stdout tail: ${this.lines.slice(-10).join('\n')}`));
          return true;
        }
        return false;
      };
      const done = (): void => {
        clearTimeout(timer);
        this.lineWaiters.delete(onLine);
      };
      const onLine = (): void => {
        check();
      };
      if (check()) return;
      this.lineWaiters.add(onLine);
      timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stdout tail: ${this.lines.slice(-10).join('\n')}`));
      }, timeoutMs);
    });
  }

  /** Sends a signal (default SIGKILL). No-op when the process has already exited. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Waits for the exit; rejects after `timeoutMs`. */
  async waitExit(timeoutMs = 30_000): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`pid ${this.child.pid} did not exit within ${timeoutMs} ms; stdout tail: ${this.lines.slice(-10).join('\n')}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills (SIGKILL) if still running and waits for the exit. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.kill('SIGKILL');
    await this.waitExit(15_000);
  }

  /** The last lines of output, for failure reports. */
  tail(n = 40): string {
    return `--- pid ${this.child.pid} port ${this.opts.port} exit ${JSON.stringify(this.exitInfo)}\n${this.lines.slice(-n).join('\n')}\n--- stderr\n${this.stderr.slice(-2000)}`;
  }
}

/** Every server started and not yet exited. */
export function liveServers(): XcronServer[] {
  return [...live];
}

/** Every server started since the last call (for failure reports), and forgets them. */
export function takeStarted(): XcronServer[] {
  const out = started;
  started = [];
  return out;
}

/** Kills every server this worker started that is still running. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs ./xcron_server expecting it to exit by itself (e.g. a configuration error). If it is still
 * running after `timeoutMs` it is killed and the result says so (code null, signal SIGKILL).
 */
export async function runToExit(args: string[], env: Record<string, string>, cwd: string, timeoutMs = 20_000): Promise<RunResult> {
  ensureBuilt();
  const child = spawn(LAUNCHER, args, { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('close', (c, s) => res([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}
