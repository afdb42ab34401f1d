/**
 * The queue target interface: one transport per configured `[targets.<name>]`, one file per kind
 * (redis-stream.ts, amqp.ts, nats.ts). A transport publishes one message and answers with the
 * broker's confirmation (the stream entry id, the publisher confirm, the JetStream ack) or why
 * there was none. The delivery (src/delivery/index.ts) wraps it with the retries, the concurrency
 * caps and the lease check that HTTP callbacks have.
 */
import type { Config } from '../../config/index.js';

export type TargetConfig = Config['targets'][string];

/** One message: the same body bytes and metadata an HTTP callback carries. */
export interface TargetMessage {
  task_id: string;
  fire_id: string;
  /** The tick (ms epoch). */
  scheduled_time: number;
  /** 1-based attempt number. */
  attempt: number;
  /** The callback body's exact JSON text. */
  body: string;
  /** The task's `key`: overrides the stream name, routing key or subject. Null: the target's. */
  key: string | null;
  /** The run's report token (for reportRun, over HTTP or the results queue). Null: none. */
  report_token: string | null;
  /** `t=<unix s>,v1=<hex>[,v1=…]` over the body, as the X-Xcron-Signature of HTTP callbacks. Null: no signing secrets. */
  signature: string | null;
  /** How long to wait for the broker's confirmation (ms). */
  timeout_ms: number;
}

export interface SendResult {
  ok: boolean;
  /** What the broker confirmed with: the stream entry id, `confirmed`, or `<stream>:<seq>`. */
  id: string | null;
  /** Why it was not confirmed (credentials removed). */
  error: string | null;
  /** No confirmation within timeout_ms (the message may still have arrived). */
  timed_out?: boolean;
  /** Not sent: the lease it would have gone out under had lapsed (nothing was written). */
  lapsed?: boolean;
  /** Retrying cannot help (e.g. the target is not configured on this node). */
  permanent?: boolean;
}

/**
 * `gate` is called right before the message is written to the broker's connection: false means
 * the lease lapsed, and nothing may be written (the result is `lapsed`).
 */
export interface Transport {
  send(m: TargetMessage, gate: () => boolean): Promise<SendResult>;
  close(): Promise<void>;
}

export const LAPSED_SEND: SendResult = { ok: false, id: null, error: 'not sent: lease lapsed', lapsed: true };

/** The metadata as name/value pairs: stream fields, AMQP headers, NATS headers. */
export function metadata(m: TargetMessage): [string, string][] {
  const out: [string, string][] = [
    ['task_id', m.task_id],
    ['fire_id', m.fire_id],
    ['scheduled_time', String(m.scheduled_time)],
    ['attempt', String(m.attempt)],
  ];
  if (m.report_token !== null) out.push(['report_token', m.report_token]);
  if (m.signature !== null) out.push(['signature', m.signature]);
  return out;
}

/** Resolves with `onTimeout()` when `p` does not settle within `ms` (the timer is cleared either way). */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
