/**
 * The configured queue targets by name: each transport is created on its first send and closed
 * with the delivery. A name that is not configured here (removed from the configuration after a
 * task named it) fails the attempt for good.
 */
import { AmqpTransport } from './amqp.js';
import { NatsTransport } from './nats.js';
import { RedisStreamTransport } from './redis-stream.js';
import type { SendResult, TargetConfig, TargetMessage, Transport } from './types.js';

export type { SendResult, TargetConfig, TargetMessage, Transport } from './types.js';
export { redactUrl, scrub } from './redact.js';
export { connectNats } from './nats.js';

export class Targets {
  private readonly transports = new Map<string, Transport>();
  private closed = false;

  constructor(private readonly configs: Readonly<Record<string, TargetConfig>>) {}

  names(): string[] {
    return Object.keys(this.configs);
  }

  private transport(name: string): Transport | null {
    let t = this.transports.get(name);
    if (t) return t;
    const cfg = Object.hasOwn(this.configs, name) ? this.configs[name] : undefined;
    if (!cfg) return null;
    t = cfg.kind === 'redis_stream' ? new RedisStreamTransport(cfg) : cfg.kind === 'amqp' ? new AmqpTransport(cfg) : new NatsTransport(cfg);
    this.transports.set(name, t);
    return t;
  }

  /** Publishes one message to target `name`. Never throws. */
  async send(name: string, m: TargetMessage, gate: () => boolean): Promise<SendResult> {
    if (this.closed) return { ok: false, id: null, error: 'shutdown' };
    const t = this.transport(name);
    if (!t) return { ok: false, id: null, error: `unknown target ${JSON.stringify(name)}: not in this node's configuration ([targets.${name}])`, permanent: true };
    try {
      return await t.send(m, gate);
    } catch (err) {
      return { ok: false, id: null, error: `internal error: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.transports.values()].map((t) => t.close().catch(() => undefined)));
    this.transports.clear();
  }
}
