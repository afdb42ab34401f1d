/** Starts bench/receiver.ts as a child process and talks to it over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, sleep, track } from './common.js';

export interface Records {
  ids: string[];
  sched: number[];
  arrival: number[];
  attempt: number[];
}

export interface ReceiverStats {
  count: number;
  first: number | null;
  last: number | null;
}

type Msg = { type: 'listening'; port: number } | ({ type: 'stats' } & ReceiverStats) | ({ type: 'records' } & Records) | { type: 'reset' };

export class Receiver {
  private waiters = new Map<string, ((m: Msg) => void)[]>();
  private exited = false;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m: Msg) => {
      const q = this.waiters.get(m.type);
      const w = q?.shift();
      if (w) w(m);
    });
    child.once('exit', () => {
      this.exited = true;
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * `parseJson`: the receiver parses every callback's JSON body before it answers, as a real
   * receiver does (BENCH_RECEIVER_PARSE=1 turns it on for every bench; 0 off everywhere).
   */
  static async start(o: { parseJson?: boolean } = {}): Promise<Receiver> {
    const script = join(ROOT, 'dist', 'bench', 'receiver.js');
    const env = process.env.BENCH_RECEIVER_PARSE;
    const parse = env === '1' || (env !== '0' && o.parseJson === true);
    const child = track(fork(script, parse ? ['--parse-json'] : [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const port = await new Promise<number>((res, rej) => {
      const t = setTimeout(() => rej(new Error('receiver did not start within 10 s')), 10_000);
      child.once('message', (m: Msg) => {
        if (m.type === 'listening') {
          clearTimeout(t);
          res(m.port);
        }
      });
      child.once('exit', (code) => rej(new Error(`receiver exited early (code ${code ?? 'null'})`)));
    });
    return new Receiver(child, port);
  }

  private ask<T extends Msg['type']>(cmd: string, reply: T): Promise<Extract<Msg, { type: T }>> {
    if (this.exited) return Promise.reject(new Error('receiver has exited'));
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`receiver did not answer ${cmd}`)), 30_000);
      const q = this.waiters.get(reply) ?? [];
      q.push((m) => {
        clearTimeout(t);
        res(m as Extract<Msg, { type: T }>);
      });
      this.waiters.set(reply, q);
      this.child.send({ cmd });
    });
  }

  stats(): Promise<ReceiverStats> {
    return this.ask('stats', 'stats');
  }
  async collect(): Promise<Records> {
    const m = await this.ask('collect', 'records');
    return { ids: m.ids, sched: m.sched, arrival: m.arrival, attempt: m.attempt };
  }
  async reset(): Promise<void> {
    await this.ask('reset', 'reset');
  }

  /**
   * Polls until `count` callbacks arrived or `deadline` (epoch ms) passed, then waits `settleMs`
   * more (late duplicates). Returns the last stats.
   */
  async waitFor(count: number, deadline: number, settleMs: number, onProgress?: (s: ReceiverStats) => void): Promise<ReceiverStats> {
    let s = await this.stats();
    let lastReport = Date.now();
    while (s.count < count && Date.now() < deadline) {
      await sleep(100);
      s = await this.stats();
      if (onProgress && Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        onProgress(s);
      }
    }
    if (settleMs > 0) {
      await sleep(settleMs);
      s = await this.stats();
    }
    return s;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.send({ cmd: 'stop' });
    } catch {
      this.child.kill('SIGKILL');
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }
}

/** Dedupes deliveries by fire id; the first arrival of each fire counts for lateness. */
export interface Analysis {
  deliveries: number;
  unique: number;
  duplicates: number;
  missing: number;
  unexpected: number;
  /** first arrival - scheduled time, per unique expected fire */
  lateness: number[];
  firstArrival: number;
  lastArrival: number;
  retriedDeliveries: number;
  missingSample: string[];
}

export function analyse(rec: Records, expectedFireIds: ReadonlySet<string>): Analysis {
  const firstSeen = new Map<string, number>();
  let duplicates = 0;
  let unexpected = 0;
  let retried = 0;
  const lateness: number[] = [];
  let firstArrival = Infinity;
  let lastArrival = -Infinity;
  for (let i = 0; i < rec.ids.length; i++) {
    const id = rec.ids[i]!;
    if ((rec.attempt[i] ?? 1) > 1) retried++;
    if (!expectedFireIds.has(id)) {
      unexpected++;
      continue;
    }
    if (firstSeen.has(id)) {
      duplicates++;
      continue;
    }
    const at = rec.arrival[i]!;
    firstSeen.set(id, at);
    lateness.push(at - rec.sched[i]!);
    if (at < firstArrival) firstArrival = at;
    if (at > lastArrival) lastArrival = at;
  }
  const missingSample: string[] = [];
  let missing = 0;
  for (const id of expectedFireIds) {
    if (!firstSeen.has(id)) {
      missing++;
      if (missingSample.length < 5) missingSample.push(id);
    }
  }
  return {
    deliveries: rec.ids.length,
    unique: firstSeen.size,
    duplicates,
    missing,
    unexpected,
    lateness,
    firstArrival,
    lastArrival,
    retriedDeliveries: retried,
    missingSample,
  };
}
