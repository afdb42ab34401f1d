/**
 * The results queue on NATS JetStream: a durable pull consumer (every node of a cluster pulls from
 * the same one, so each report goes to one node at a time) with explicit acknowledgements. A
 * message is acknowledged only after its report was recorded; one whose report could not be
 * recorded (store unavailable) is negatively acknowledged and comes back a second later. A message
 * read and never acknowledged (a crash) is delivered again once the consumer's ack wait passed.
 *
 * The stream (capturing `subject`) and the consumer are created when missing. The connection
 * reconnects by itself; the consumer is set up again when it ends.
 */
import { AckPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { connectNats, redactUrl, scrub } from '../delivery/targets/index.js';
import type { ReportHandler, ResultsConsumer } from './report-handler.js';

const RETRY_PAUSE_MS = 1000;
/** How long a read message may stay unacknowledged before JetStream delivers it again. */
const ACK_WAIT_MS = 30_000;

export class NatsResults implements ResultsConsumer {
  private nc: NatsConnection | null = null;
  private messages: ConsumerMessages | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly cfg: Config['results'],
    private readonly handler: ReportHandler,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.log.info({ url: redactUrl(this.cfg.url), stream: this.cfg.stream, subject: this.cfg.subject, consumer: this.cfg.group }, 'consuming reports from the results subject');
    this.loop = this.run();
    return Promise.resolve();
  }

  /** The stream and the durable consumer, created when missing. */
  private async ensure(jsm: JetStreamManager): Promise<void> {
    const { stream, subject, group, batch } = this.cfg;
    try {
      await jsm.streams.info(stream);
    } catch {
      await jsm.streams.add({ name: stream, subjects: [subject] });
    }
    try {
      await jsm.consumers.info(stream, group);
    } catch {
      await jsm.consumers.add(stream, { durable_name: group, ack_policy: AckPolicy.Explicit, filter_subject: subject, max_ack_pending: batch, ack_wait: ACK_WAIT_MS * 1_000_000 });
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.nc || this.nc.isClosed()) this.nc = await connectNats(this.cfg.url, 'xcron-results');
        if (this.stopped) break;
        await this.ensure(await jetstreamManager(this.nc));
        const consumer = await jetstream(this.nc).consumers.get(this.cfg.stream, this.cfg.group);
        this.messages = await consumer.consume({ max_messages: this.cfg.batch });
        for await (const m of this.messages) {
          if (this.stopped) break;
          if ((await this.handler.handle(m.string(), `${this.cfg.stream}:${m.seq}`)) === 'ack') {
            this.handler.crashAt('before_ack');
            m.ack();
          } else m.nak(RETRY_PAUSE_MS);
        }
      } catch (err) {
        if (this.stopped) break;
        this.log.warn({ error: scrub((err as Error).message, this.cfg.url) }, 'reading the results subject failed; trying again');
      }
      if (!this.stopped) await this.pause(RETRY_PAUSE_MS);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.messages?.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
    await this.loop?.catch(() => undefined);
  }
}
