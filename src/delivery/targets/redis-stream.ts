/**
 * `redis_stream` targets: XADD to a stream, on a connection of the target's own (it may be another
 * Redis than the cluster store). The entry id Redis answers is the confirmation. The entry's
 * fields: task_id, fire_id, scheduled_time, attempt, report_token, signature, body.
 *
 * Commands are not queued while the connection is down: a send then fails at once (or after
 * waiting up to its timeout for the connection to come back) and is retried with the task's
 * backoff, so no XADD is written long after its attempt was given up.
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { errorText } from './redact.js';
import { LAPSED_SEND, metadata, withTimeout, type SendResult, type TargetConfig, type TargetMessage, type Transport } from './types.js';

export class RedisStreamTransport implements Transport {
  private readonly redis: Redis;

  constructor(private readonly cfg: TargetConfig) {
    this.redis = new Redis(cfg.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (n) => Math.min(50 * n, 1000),
      connectionName: 'xcron-target',
      lazyConnect: true,
      // The XADDs of one event-loop turn go out in one write.
      enableAutoPipelining: true,
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
    if (!gate()) return LAPSED_SEND;
    const left = Math.max(1, m.timeout_ms - (Date.now() - t0));
    return withTimeout(
      this.redis.xadd(stream, ...(args as [string])).then(
        (id): SendResult => (id ? { ok: true, id, error: null } : { ok: false, id: null, error: 'XADD returned no entry id' }),
        (err: unknown): SendResult => ({ ok: false, id: null, error: `XADD ${stream}: ${errorText(err, this.cfg.url)}` }),
      ),
      left,
      () => ({ ok: false, id: null, error: `timeout after ${m.timeout_ms} ms waiting for XADD ${stream}`, timed_out: true }),
    );
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }
}
