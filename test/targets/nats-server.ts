/**
 * A nats-server with JetStream of the test's own (`/usr/sbin/nats-server -a 127.0.0.1 -p <free>
 * -js -sd <tmpdir>`), so a test can stop it and start it again on the same port and store
 * directory (the outage test). Never the machine's shared server on 4222.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { freePort } from '../helpers/ports.js';
import { waitUntil } from '../helpers/wait.js';

export const NATS_BIN = '/usr/sbin/nats-server';
export const natsAvailable = (): boolean => existsSync(NATS_BIN);

const started = new Set<NatsServer>();

export class NatsServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  output = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<NatsServer> {
    const s = new NatsServer(mkdtempSync(join(tmpdir(), 'xcron-nats-')), await freePort());
    started.add(s);
    await s.launch();
    return s;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const child = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((r) => child.once('exit', () => r()));
    await waitUntil(
      async () => {
        if (this.child !== child || child.exitCode !== null) throw new Error(`nats-server exited: ${this.output.slice(-2000)}`);
        const nc = await connect({ servers: `127.0.0.1:${this.port}`, reconnect: false });
        await nc.close();
        return true;
      },
      (ok) => ok,
      60_000,
      `nats-server on :${this.port}`,
      200,
    );
  }

  /** Stops the server (SIGTERM, SIGKILL after 10 s) and waits for it to exit. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    this.child = null;
    c.kill('SIGTERM');
    const killer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(killer);
  }

  /** Starts it again on the same port with the same store directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async destroy(): Promise<void> {
    started.delete(this);
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Stops and removes every server started (afterAll). */
export async function stopAllNats(): Promise<void> {
  await Promise.all([...started].map((s) => s.destroy()));
}
