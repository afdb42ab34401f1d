/**
 * Real redis-server processes for tests: each on a free port, in a temp dir of its own, never the
 * machine's shared Redis (6379). A single server (optionally with AOF) that can be stopped, killed,
 * frozen and restarted on the same port and data, a replica, Sentinels, and a 3-master Redis
 * Cluster on localhost.
 * Every process is killed by `stopAllRedis()` (call it in afterAll) and, as a last resort, when
 * the test worker exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** A TCP port the OS reports free on 127.0.0.1 (never 6379: the OS hands out ephemeral ports). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = addr !== null && typeof addr === 'object' ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}
const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? '/usr/bin/redis-cli';

const live = new Set<RedisServer>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const s of live) s.child?.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export interface RedisServerOptions {
  /** AOF persistence (appendonly yes). */
  appendonly?: boolean;
  /** With AOF: always (fsync before each reply) or everysec. Default always. */
  appendfsync?: 'always' | 'everysec';
  /** Cluster node (cluster-enabled yes) with this cluster-bus port. */
  clusterBusPort?: number;
  port?: number;
  dir?: string;
  /** requirepass. */
  password?: string;
  /** Start as a replica of the Redis on this port (127.0.0.1). */
  replicaOf?: number;
}

/** Sends one inline command over a fresh TCP connection; resolves with the first reply line. */
export function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis :${port} did not answer ${command} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\r\n');
      if (i >= 0) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.slice(0, i));
      }
    });
    sock.write(`${command}\r\n`);
  });
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class RedisServer {
  child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly opts: RedisServerOptions,
  ) {}

  /** Starts redis-server with exactly these arguments (a Sentinel: a config file and --sentinel). */
  static async launchWith(port: number, dir: string, args: string[]): Promise<RedisServer> {
    const s = new RedisServer(port, dir, { port, dir });
    s.fixedArgs = args;
    await s.launch();
    return s;
  }
  private fixedArgs: string[] | null = null;

  /** Starts redis-server on a free port (or opts.port) in a new temp dir (or opts.dir). */
  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const port = opts.port ?? (await freePort());
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'xcron-redis-'));
    dirs.add(dir);
    const s = new RedisServer(port, dir, opts);
    await s.launch();
    return s;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  private args(): string[] {
    if (this.fixedArgs) return this.fixedArgs;
    const a = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--logfile', join(this.dir, 'redis.log')];
    if (this.opts.password) a.push('--requirepass', this.opts.password);
    if (this.opts.appendonly) a.push('--appendonly', 'yes', '--appendfsync', this.opts.appendfsync ?? 'always');
    else a.push('--appendonly', 'no');
    if (this.opts.replicaOf !== undefined) a.push('--replicaof', '127.0.0.1', String(this.opts.replicaOf));
    if (this.opts.clusterBusPort !== undefined) {
      a.push('--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, 'nodes.conf'), '--cluster-node-timeout', '5000', '--cluster-port', String(this.opts.clusterBusPort));
    }
    return a;
  }

  private async launch(): Promise<void> {
    const child = spawn(REDIS_SERVER, this.args(), { stdio: 'ignore' });
    this.child = child;
    live.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        if (this.child === child) this.child = null;
        live.delete(this);
        resolve();
      }),
    );
    await waitFor(`redis-server on :${this.port}`, 20_000, async () => {
      if (this.child !== child) throw new Error(`redis-server on :${this.port} exited at start (see ${join(this.dir, 'redis.log')})`);
      const pong = await rawCommand(this.port, 'PING');
      return pong === '+PONG' || (this.opts.password !== undefined && pong.startsWith('-NOAUTH'));
    });
  }

  /** Stops with a signal (SIGTERM: orderly; SIGKILL: crash) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c) return;
    if (signal !== 'SIGKILL') c.kill('SIGCONT');
    c.kill(signal);
    await this.exited;
  }

  /** SIGKILL: Redis crashes (only what AOF already wrote survives). */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  /** Starts again on the same port and data dir (AOF is replayed). */
  async restart(): Promise<void> {
    if (this.child) throw new Error('restart: redis-server is still running');
    await this.launch();
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** redis-cli against this server; resolves with stdout. */
  async cli(...args: string[]): Promise<string> {
    const auth = this.opts.password ? ['--no-auth-warning', '-a', this.opts.password] : [];
    const { stdout } = await execFileP(REDIS_CLI, ['-p', String(this.port), ...auth, ...args], { timeout: 20_000 });
    return stdout;
  }

  /** Kills the process and removes the data dir. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

/**
 * A Redis Sentinel (redis-server --sentinel) monitoring the primary on `primaryPort` as `name`,
 * with short timeouts for tests: a primary is down after `downAfterMs` without an answer.
 */
export class RedisSentinel {
  private constructor(
    readonly port: number,
    readonly server: RedisServer,
  ) {}

  static async start(o: { primaryPort: number; name?: string; quorum?: number; downAfterMs?: number }): Promise<RedisSentinel> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'xcron-sentinel-'));
    dirs.add(dir);
    const name = o.name ?? 'mymaster';
    const conf = join(dir, 'sentinel.conf');
    // Sentinel rewrites its config file (what it learns about replicas, other Sentinels and failovers).
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        'daemonize no',
        `dir ${dir}`,
        `logfile ${join(dir, 'sentinel.log')}`,
        `sentinel monitor ${name} 127.0.0.1 ${o.primaryPort} ${o.quorum ?? 2}`,
        `sentinel down-after-milliseconds ${name} ${o.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const server = await RedisServer.launchWith(port, dir, [conf, '--sentinel']);
    return new RedisSentinel(port, server);
  }

  /** The address (port) Sentinel gives for the primary now. */
  async primaryPort(name = 'mymaster'): Promise<number> {
    const out = (await this.server.cli('sentinel', 'get-master-addr-by-name', name)).trim().split('\n');
    return Number(out[1]);
  }

  /** How many replicas and other Sentinels this Sentinel knows for `name`. */
  async known(name = 'mymaster'): Promise<{ replicas: number; sentinels: number }> {
    const master = (await this.server.cli('sentinel', 'master', name)).trim().split('\n');
    const field = (k: string): number => Number(master[master.indexOf(k) + 1]);
    return { replicas: field('num-slaves'), sentinels: field('num-other-sentinels') };
  }

  stop(): Promise<void> {
    return this.server.destroy();
  }
}

/** A port p that is free, with another free port for its cluster bus. */
async function portPair(): Promise<[number, number]> {
  return [await freePort(), await freePort()];
}

/** A Redis Cluster of `masters` nodes (no replicas) on localhost. */
export class RedisClusterServers {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(masters = 3): Promise<RedisClusterServers> {
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < masters; i++) {
        const [port, bus] = await portPair();
        nodes.push(await RedisServer.start({ port, clusterBusPort: bus }));
      }
      const addrs = nodes.map((n) => `127.0.0.1:${n.port}`);
      await execFileP(REDIS_CLI, ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
      await waitFor('cluster_state:ok on every node', 30_000, async () => {
        for (const n of nodes) if (!(await n.cli('cluster', 'info')).includes('cluster_state:ok')) return false;
        return true;
      });
      return new RedisClusterServers(nodes);
    } catch (e) {
      await Promise.all(nodes.map((n) => n.destroy()));
      throw e;
    }
  }

  /** The seed-node URL for `[cluster] redis_url` with `redis_cluster = true`. */
  get url(): string {
    return `redis://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}

/** Kills every redis-server this worker started and removes their dirs. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...live].map((s) => s.destroy()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
