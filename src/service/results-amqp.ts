/**
 * The results queue on AMQP (RabbitMQ): a durable queue consumed with manual acknowledgements.
 * A message is acknowledged only after its report was recorded; one whose report could not be
 * recorded (store unavailable) is returned to the queue a second later. Unacknowledged messages of
 * a connection that closed (a crash) are delivered again by the broker. The connection is opened
 * again after it closes.
 */
import { connect, type ChannelModel, type ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { redactUrl, scrub } from '../delivery/targets/index.js';
import type { ReportHandler, ResultsConsumer } from './report-handler.js';

const RECONNECT_MS = 1000;
const RETRY_PAUSE_MS = 1000;

export class AmqpResults implements ResultsConsumer {
  private conn: ChannelModel | null = null;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: Config['results'],
    private readonly handler: ReportHandler,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.log.info({ url: redactUrl(this.cfg.url), queue: this.cfg.queue }, 'consuming reports from the results queue');
    await this.open();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    try {
      const conn = await connect(this.cfg.url);
      this.conn = conn;
      conn.on('error', (err: Error) => this.log.warn({ error: scrub(err.message, this.cfg.url) }, 'results queue connection error'));
      conn.on('close', () => {
        if (this.conn === conn) this.conn = null;
        this.later();
      });
      const ch = await conn.createChannel();
      ch.on('error', (err: Error) => this.log.warn({ error: scrub(err.message, this.cfg.url) }, 'results queue channel error'));
      ch.on('close', () => void conn.close().catch(() => undefined));
      await ch.assertQueue(this.cfg.queue, { durable: true });
      await ch.prefetch(this.cfg.batch);
      await ch.consume(
        this.cfg.queue,
        (msg: ConsumeMessage | null) => {
          if (msg === null) return; // cancelled by the broker (queue deleted): the channel closes next
          const where = msg.properties.messageId !== undefined ? String(msg.properties.messageId) : `delivery ${msg.fields.deliveryTag}`;
          void this.handler.handle(msg.content.toString('utf8'), where).then((d) => {
            if (d === 'ack') {
              this.handler.crashAt('before_ack');
              ch.ack(msg);
            } else setTimeout(() => ch.nack(msg, false, true), RETRY_PAUSE_MS);
          }).catch(() => undefined);
        },
        { noAck: false },
      );
    } catch (err) {
      this.log.warn({ error: scrub((err as Error).message, this.cfg.url) }, 'cannot consume the results queue; trying again');
      const c = this.conn;
      this.conn = null;
      await c?.close().catch(() => undefined);
      this.later();
    }
  }

  private later(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.open();
    }, RECONNECT_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.conn;
    this.conn = null;
    await c?.close().catch(() => undefined);
  }
}
