/**
 * `amqp` targets (RabbitMQ, AMQP 0-9-1): publish to an exchange with a routing key on a confirm
 * channel. The publisher confirm (basic.ack) is the confirmation; a nack, a closed channel (an
 * unknown exchange closes it with 404) or a message returned as unroutable (it is published
 * mandatory, and the broker returns it before its ack) is a refusal. The metadata travels as
 * headers (x-xcron-task-id, x-xcron-fire-id, x-xcron-scheduled-time, x-xcron-attempt,
 * x-xcron-report-token, x-xcron-signature), the message id is the fire id, the body is the callback body.
 *
 * One connection and one confirm channel per target, opened on the first send and opened again
 * after either closes.
 */
import { connect, type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import { errorText } from './redact.js';
import { LAPSED_SEND, metadata, withTimeout, type SendResult, type TargetConfig, type TargetMessage, type Transport } from './types.js';

interface Link {
  conn: ChannelModel;
  ch: ConfirmChannel;
  /** Sends returned as unroutable: `${fire_id}:${attempt}`. */
  returned: Set<string>;
  /** Why the channel closed, once it did. */
  closed: string | null;
}

export class AmqpTransport implements Transport {
  private link: Promise<Link> | null = null;
  private stopped = false;

  constructor(private readonly cfg: TargetConfig) {}

  private open(timeoutMs: number): Promise<Link> {
    if (this.link) return this.link;
    const p = (async (): Promise<Link> => {
      const conn = await connect(this.cfg.url, { timeout: timeoutMs });
      const link: Link = { conn, ch: null as unknown as ConfirmChannel, returned: new Set(), closed: null };
      const drop = (why: string): void => {
        link.closed ??= why;
        if (this.link === p) this.link = null;
      };
      conn.on('error', (err: Error) => drop(errorText(err, this.cfg.url)));
      conn.on('close', () => drop('connection closed'));
      try {
        link.ch = await conn.createConfirmChannel();
      } catch (err) {
        await conn.close().catch(() => undefined);
        throw err;
      }
      link.ch.on('error', (err: Error) => {
        drop(errorText(err, this.cfg.url));
        void conn.close().catch(() => undefined);
      });
      link.ch.on('close', () => {
        drop('channel closed');
        void conn.close().catch(() => undefined);
      });
      link.ch.on('return', (msg: Message) => {
        const h = msg.properties.headers ?? {};
        link.returned.add(`${String(h['x-xcron-fire-id'])}:${String(h['x-xcron-attempt'])}`);
      });
      return link;
    })();
    this.link = p;
    p.catch(() => {
      if (this.link === p) this.link = null;
    });
    return p;
  }

  async send(m: TargetMessage, gate: () => boolean): Promise<SendResult> {
    if (this.stopped) return { ok: false, id: null, error: 'target closed' };
    const routingKey = m.key ?? this.cfg.routing_key;
    const where = `exchange ${JSON.stringify(this.cfg.exchange)} routing key ${JSON.stringify(routingKey)}`;
    const t0 = Date.now();
    const opened = await withTimeout(
      this.open(m.timeout_ms).then((l) => l, (err: unknown) => errorText(err, this.cfg.url)),
      m.timeout_ms,
      () => `timeout after ${m.timeout_ms} ms connecting`,
    );
    if (typeof opened === 'string') return { ok: false, id: null, error: `amqp: ${opened}`, timed_out: opened.startsWith('timeout') };
    const link = opened;
    const headers: Record<string, string> = {};
    for (const [k, v] of metadata(m)) headers[`x-xcron-${k.replace(/_/g, '-')}`] = v;
    const tag = `${m.fire_id}:${m.attempt}`;
    link.returned.delete(tag);
    if (!gate()) return LAPSED_SEND;
    const confirmed = new Promise<SendResult>((resolve) => {
      try {
        link.ch.publish(
          this.cfg.exchange,
          routingKey,
          Buffer.from(m.body),
          { headers, messageId: m.fire_id, contentType: 'application/json', persistent: true, mandatory: true, timestamp: Math.floor(Date.now() / 1000) },
          (err: unknown) => {
            if (link.returned.delete(tag)) resolve({ ok: false, id: null, error: `amqp: message returned as unroutable (no queue bound for ${where})` });
            else if (err) resolve({ ok: false, id: null, error: `amqp: not confirmed for ${where}: ${link.closed ?? errorText(err, this.cfg.url)}` });
            else resolve({ ok: true, id: 'confirmed', error: null });
          },
        );
      } catch (err) {
        resolve({ ok: false, id: null, error: `amqp: ${errorText(err, this.cfg.url)}` });
      }
    });
    const left = Math.max(1, m.timeout_ms - (Date.now() - t0));
    return withTimeout(confirmed, left, () => ({ ok: false, id: null, error: `timeout after ${m.timeout_ms} ms waiting for the publisher confirm (${where})`, timed_out: true }));
  }

  async close(): Promise<void> {
    this.stopped = true;
    const l = this.link;
    this.link = null;
    if (l) await l.then((x) => x.conn.close(), () => undefined).catch(() => undefined);
  }
}
