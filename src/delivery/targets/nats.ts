/**
 * `nats` targets: a JetStream publish whose ack (stream and sequence) is the confirmation. The
 * metadata travels as headers (Xcron-Task-Id, Xcron-Fire-Id, Xcron-Scheduled-Time, Xcron-Attempt,
 * Xcron-Report-Token, Xcron-Signature); the message id (Nats-Msg-Id) is the fire id, so JetStream drops a retry of
 * a publish that did arrive (within the stream's duplicate window). No stream capturing the
 * subject is a refusal.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { errorText } from './redact.js';
import { LAPSED_SEND, metadata, withTimeout, type SendResult, type TargetConfig, type TargetMessage, type Transport } from './types.js';

const HEADER_NAMES: Record<string, string> = { task_id: 'Xcron-Task-Id', fire_id: 'Xcron-Fire-Id', scheduled_time: 'Xcron-Scheduled-Time', attempt: 'Xcron-Attempt', report_token: 'Xcron-Report-Token', signature: 'Xcron-Signature' };

/** A connection to `nats://[user:password@]host:port` (`tls://`), reconnecting for ever once made. */
export function connectNats(url: string, name: string): Promise<NatsConnection> {
  const u = new URL(url);
  return connect({
    servers: `${u.hostname}:${u.port || '4222'}`,
    ...(u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'tls:' ? { tls: {} } : {}),
    maxReconnectAttempts: -1,
    name,
  });
}

export class NatsTransport implements Transport {
  private link: Promise<{ nc: NatsConnection; js: JetStreamClient }> | null = null;

  constructor(private readonly cfg: TargetConfig) {}

  private open(): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
    if (this.link) return this.link;
    const p = (async () => {
      const nc = await connectNats(this.cfg.url, 'xcron-target');
      void nc.closed().then(() => {
        if (this.link === p) this.link = null;
      });
      return { nc, js: jetstream(nc) };
    })();
    this.link = p;
    p.catch(() => {
      if (this.link === p) this.link = null;
    });
    return p;
  }

  async send(m: TargetMessage, gate: () => boolean): Promise<SendResult> {
    const subject = m.key ?? this.cfg.subject;
    const t0 = Date.now();
    const opened = await withTimeout(
      this.open().then((l) => l, (err: unknown) => errorText(err, this.cfg.url)),
      m.timeout_ms,
      () => `timeout after ${m.timeout_ms} ms connecting`,
    );
    if (typeof opened === 'string') return { ok: false, id: null, error: `nats: ${opened}`, timed_out: opened.startsWith('timeout') };
    const h = natsHeaders();
    for (const [k, v] of metadata(m)) h.set(HEADER_NAMES[k] ?? k, v);
    if (!gate()) return LAPSED_SEND;
    const left = Math.max(1, m.timeout_ms - (Date.now() - t0));
    try {
      const ack = await opened.js.publish(subject, m.body, { headers: h, msgID: m.fire_id, timeout: left });
      return { ok: true, id: `${ack.stream}:${ack.seq}`, error: null };
    } catch (err) {
      const text = errorText(err, this.cfg.url);
      const timedOut = /timeout/i.test(text);
      return { ok: false, id: null, error: `nats: JetStream publish to ${JSON.stringify(subject)}: ${text}`, ...(timedOut ? { timed_out: true } : {}) };
    }
  }

  async close(): Promise<void> {
    const l = this.link;
    this.link = null;
    if (l) await l.then((x) => x.nc.close(), () => undefined).catch(() => undefined);
  }
}
