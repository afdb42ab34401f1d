/**
 * `redis_stream` targets: XADD to a stream, on a connection of the target's own (it may be another
 * Redis than the cluster store). The entry id Redis answers is the confirmation. The entry's
 * fields: task_id, fire_id, scheduled_time, attempt, report_token, signature, body.
 *
 * Commands are not queued while the connection is down: a send then fails at once (or after
 * waiting up to its timeout for the connection to come back) and is retried with the task's
 * backoff, so no XADD is written long after its attempt was given up.
 *
 * The sends of one event-loop turn go out as one pipeline (one write, one read of the answers);
 * each message's lease check (`gate`) runs right before its XADD is added to the pipeline, and each
 * keeps its own timeout and its own entry id.
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { errorText } from './redact.js';
import { LAPSED_SEND, metadata, withTimeout, type SendResult, type TargetConfig, type TargetMessage, type Transport } from './types.js';

/** A send waiting for the next pipeline. */
interface Queued {
  stream: string;
  args: (string | number)[];
  gate: () => boolean;
  /** ms epoch (Date.now) after which the send answers "timeout". */
  deadline: number;
  timeoutMs: number;
  resolve: (r: SendResult) => void;
  done: boolean;
}

export class RedisStreamTransport implements Transport {
  private readonly redis: Redis;
  private queue: Queued[] = [];
  private flushing = false;
  /** Sends written and not answered yet, by deadline (checked by one timer). */
  private readonly open = new Set<Queued>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  constructor(private readonly cfg: TargetConfig) {
    this.redis = new Redis(cfg.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (n) => Math.min(50 * n, 1000),
      connectionName: 'xcron-target',
      lazyConnect: true,
    });
    // Connection errors surface as failed sends (with the error text); the client reconnects by itself.
    this.redis.on('error', () => undefined);
  }

  /** Resolves when the connection is ready; one promise shared by every send waiting for it. */
  private readyWait: Promise<void> | null = null;

  private async ready(timeoutMs: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    if (this.redis.status === 'wait') void this.redis.connect().catch(() => undefined);
    this.readyWait ??= once(this.redis, 'ready').then(
      () => {
        this.readyWait = null;
      },
      () => {
        this.readyWait = null;
      },
    );
    return withTimeout(this.readyWait.then(() => this.redis.status === 'ready'), timeoutMs, () => false);
  }

  async send(m: TargetMessage, gate: () => boolean): Promise<SendResult> {
    const stream = m.key ?? this.cfg.stream;
    const t0 = Date.now();
    if (!(await this.ready(m.timeout_ms))) return { ok: false, id: null, error: `redis not connected after ${m.timeout_ms} ms (${this.redis.status})`, timed_out: true };
    const args: (string | number)[] = [];
    if (this.cfg.maxlen > 0) args.push('MAXLEN', '~', this.cfg.maxlen);
    args.push('*');
    for (const [k, v] of metadata(m)) args.push(k, v);
    args.push('body', m.body);
    return new Promise<SendResult>((resolve) => {
      this.queue.push({ stream, args, gate, deadline: t0 + m.timeout_ms, timeoutMs: m.timeout_ms, resolve, done: false });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private settle(q: Queued, r: SendResult): void {
    if (q.done) return;
    q.done = true;
    this.open.delete(q);
    q.resolve(r);
  }

  /** Writes the queued sends as one pipeline (those whose lease lapsed are answered `lapsed`). */
  private flush(): void {
    this.flushing = false;
    const batch = this.queue;
    this.queue = [];
    const p = this.redis.pipeline();
    const sent: Queued[] = [];
    for (const q of batch) {
      if (!q.gate()) {
        this.settle(q, LAPSED_SEND);
        continue;
      }
      p.xadd(q.stream, ...(q.args as [string]));
      sent.push(q);
      this.open.add(q);
      this.watch(q.deadline);
    }
    if (sent.length === 0) return;
    p.exec().then(
      (results) => {
        sent.forEach((q, i) => {
          const [err, id] = results?.[i] ?? [new Error('no answer'), null];
          if (err) this.settle(q, { ok: false, id: null, error: `XADD ${q.stream}: ${errorText(err, this.cfg.url)}` });
          else if (typeof id === 'string' && id !== '') this.settle(q, { ok: true, id, error: null });
          else this.settle(q, { ok: false, id: null, error: 'XADD returned no entry id' });
        });
      },
      (err: unknown) => {
        for (const q of sent) this.settle(q, { ok: false, id: null, error: `XADD ${q.stream}: ${errorText(err, this.cfg.url)}` });
      },
    );
  }

  /** One timer for every send in flight: at the earliest deadline, answers those past theirs "timeout". */
  private watch(at: number): void {
    if (at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(1, at - Date.now()));
  }

  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const q of this.open) {
      if (q.deadline <= now) this.settle(q, { ok: false, id: null, error: `timeout after ${q.timeoutMs} ms waiting for XADD ${q.stream}`, timed_out: true });
      else next = Math.min(next, q.deadline);
    }
    if (next !== Infinity) this.watch(next);
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const q of [...this.queue, ...this.open]) this.settle(q, { ok: false, id: null, error: 'target closed' });
    this.queue = [];
    this.redis.disconnect();
    return Promise.resolve();
  }
}
