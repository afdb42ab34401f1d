/**
 * A redis-server the bench starts itself: a free port on 127.0.0.1, its own temp dir, no RDB
 * snapshots (AOF only when asked), killed with the bench's other children. Never the machine's
 * shared Redis. `redis-server` comes from PATH or REDIS_SERVER_BIN.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, makeTempDir, removeTempDir, sleep, track } from './common.js';

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? 'redis-server';

export interface BenchRedisOptions {
  appendonly?: boolean;
  name?: string;
}

export class BenchRedis {
  private exited = false;
  private constructor(
    readonly port: number,
    readonly pid: number,
    readonly dir: string,
    private readonly child: ReturnType<typeof spawn>,
    /** A client for the bench's own commands (FLUSHALL, INFO, seeding). */
    readonly client: Redis,
  ) {
    child.once('exit', () => {
      this.exited = true;
    });
  }

  static async start(o: BenchRedisOptions = {}): Promise<BenchRedis> {
    const port = await freePort();
    const dir = makeTempDir(`redis-${o.name ?? 'main'}`);
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'no', '--logfile', join(dir, 'redis.log')];
    args.push('--appendonly', o.appendonly ? 'yes' : 'no');
    if (o.appendonly) args.push('--appendfsync', 'everysec');
    const child = track(spawn(REDIS_SERVER, args, { stdio: 'ignore' }));
    if (child.pid === undefined) throw new Error(`could not spawn ${REDIS_SERVER}`);
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 3, enableAutoPipelining: true });
    client.on('error', () => undefined);
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await client.connect();
        if ((await client.ping()) === 'PONG') break;
      } catch (e) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server on :${port} did not start: ${(e as Error).message}`);
        client.disconnect();
        await sleep(50);
      }
    }
    return new BenchRedis(port, child.pid, dir, child, client);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async flushAll(): Promise<void> {
    await this.client.flushall();
  }

  /** INFO <section> as a key -> value map. */
  async info(section: string): Promise<Record<string, string>> {
    const text = await this.client.info(section);
    const out: Record<string, string> = {};
    for (const l of text.split('\r\n')) {
      const i = l.indexOf(':');
      if (i > 0) out[l.slice(0, i)] = l.slice(i + 1);
    }
    return out;
  }

  /** used_memory in bytes. */
  async usedMemory(): Promise<number> {
    return Number((await this.info('memory')).used_memory ?? NaN);
  }

  async stop(): Promise<void> {
    this.client.disconnect();
    if (!this.exited) {
      const done = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGKILL');
      await done;
    }
    removeTempDir(this.dir);
  }
}
