/**
 * The results queue on a Redis stream: read through a consumer group (every node of a cluster in
 * the same group, as a consumer named after its node id), each entry acknowledged (XACK) only after
 * its report was recorded. At start and after a failed report, the consumer first reads its own
 * pending entries again; entries pending at another consumer for over a minute (a node that died)
 * are claimed (XAUTOCLAIM).
 *
 * An entry carries the report as JSON text in its `report` field.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { redactUrl } from '../delivery/targets/index.js';
import type { ReportHandler, ResultsConsumer } from './report-handler.js';

const BLOCK_MS = 2000;
const CLAIM_IDLE_MS = 60_000;
const CLAIM_EVERY_MS = 30_000;
const RETRY_PAUSE_MS = 1000;

type Entry = [id: string, fields: string[] | null];

export class RedisResults implements ResultsConsumer {
  private readonly redis: Redis;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastClaim = 0;

  constructor(
    private readonly cfg: Config['results'],
    private readonly consumer: string,
    private readonly handler: ReportHandler,
    private readonly log: Logger,
  ) {
    this.redis = new Redis(cfg.url, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(100 * n, 2000), connectionName: 'xcron-results', lazyConnect: true });
    this.redis.on('error', (err: Error) => this.log.debug({ error: err.message }, 'results stream connection error'));
  }

  async start(): Promise<void> {
    this.log.info({ url: redactUrl(this.cfg.url), stream: this.cfg.stream, group: this.cfg.group }, 'consuming reports from the results stream');
    this.loop = this.run();
    return Promise.resolve();
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.cfg.stream, this.cfg.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  private async run(): Promise<void> {
    let grouped = false;
    let pending = true;
    while (!this.stopped) {
      try {
        if (this.redis.status === 'wait') await this.redis.connect();
        if (!grouped) {
          await this.ensureGroup();
          grouped = true;
        }
        if (Date.now() - this.lastClaim >= CLAIM_EVERY_MS) {
          this.lastClaim = Date.now();
          const claimed = (await this.redis.call('XAUTOCLAIM', this.cfg.stream, this.cfg.group, this.consumer, CLAIM_IDLE_MS, '0-0', 'COUNT', this.cfg.batch)) as [string, Entry[]];
          if (claimed[1].length > 0 && !(await this.process(claimed[1]))) pending = true;
        }
        const res = (await this.redis.xreadgroup(
          'GROUP', this.cfg.group, this.consumer, 'COUNT', this.cfg.batch,
          ...((pending ? [] : ['BLOCK', BLOCK_MS]) as []),
          'STREAMS', this.cfg.stream, pending ? '0' : '>',
        )) as [string, Entry[]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        if (pending && entries.length === 0) {
          pending = false;
          continue;
        }
        if (!(await this.process(entries))) {
          pending = true;
          await this.pause(RETRY_PAUSE_MS);
        }
      } catch (err) {
        if (this.stopped) break;
        const msg = (err as Error).message;
        // The group or stream was deleted: create them again.
        if (msg.includes('NOGROUP')) grouped = false;
        this.log.warn({ error: msg }, 'reading the results stream failed; trying again');
        pending = true;
        await this.pause(RETRY_PAUSE_MS);
      }
    }
  }

  /** Handles entries in order; false when one must be read again (it stays pending). */
  private async process(entries: Entry[]): Promise<boolean> {
    for (const [id, fields] of entries) {
      if (this.stopped) return true;
      // A pending entry deleted from the stream comes back without fields: nothing to apply.
      if (fields !== null) {
        let raw: string | null = null;
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'report') raw = fields[i + 1]!;
        if (raw === null) {
          this.log.warn({ message_id: id }, "results stream entry has no 'report' field; dropped");
        } else if ((await this.handler.handle(raw, id)) === 'retry') {
          return false;
        }
      }
      this.handler.crashAt('before_ack');
      await this.redis.xack(this.cfg.stream, this.cfg.group, id);
    }
    return true;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
