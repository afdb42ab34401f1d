/**
 * A RabbitMQ broker of the test's own: its own node name, ports, data and log directories, no
 * plugins, so a test can stop it and start it again (the outage test). Started from the package's
 * script directly (the /usr/sbin wrapper switches to the rabbitmq user, which cannot read the
 * test's directory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

export const RABBIT_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
export const rabbitAvailable = (): boolean => existsSync(RABBIT_SCRIPT);

export class RabbitServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly distPort: number,
    readonly nodeName: string,
  ) {}

  static async start(): Promise<RabbitServer> {
    const dir = mkdtempSync(join(tmpdir(), 'xcron-rabbit-'));
    const port = await freePort();
    let distPort = await freePort();
    while (distPort === port) distPort = await freePort();
    const s = new RabbitServer(dir, port, distPort, `xcron-test-${randomBytes(4).toString('hex')}@localhost`);
    for (const d of ['mnesia', 'log', 'conf.d']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    writeFileSync(join(dir, 'rabbitmq.conf'), `listeners.tcp.local = 127.0.0.1:${port}\n`);
    await s.launch();
    return s;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const d = this.dir;
    const env = {
      ...process.env,
      HOME: d,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'),
      RABBITMQ_LOGS: '-',
      RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(d, 'pid'),
      RABBITMQ_FEATURE_FLAGS_FILE: join(d, 'feature_flags'),
      RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq.conf'),
      RABBITMQ_CONFIG_FILES: join(d, 'conf.d'),
    };
    const child = spawn(RABBIT_SCRIPT, [], { cwd: d, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-20_000);
    });
    child.stderr!.on('data', (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-20_000);
    });
    this.exited = new Promise((r) => child.once('exit', () => r()));
    await waitUntil(
      async () => {
        if (this.child !== child || child.exitCode !== null) throw new Error(`rabbitmq-server exited: ${this.output.slice(-2000)}`);
        const c = await connect(this.url);
        await c.close();
        return true;
      },
      (ok) => ok,
      180_000,
      `rabbitmq-server ${this.nodeName} on :${this.port}`,
      500,
    );
  }

  /** Stops the broker (its whole process group) and waits for it to exit. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = null;
    try {
      process.kill(-c.pid!, 'SIGTERM');
    } catch {
      // gone already
    }
    const killer = setTimeout(() => {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, 30_000);
    await this.exited;
    clearTimeout(killer);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
