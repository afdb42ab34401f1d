/**
 * One publish to a queue target (`target:<name>` url), classified like an HTTP attempt: the
 * broker's confirmation is a success (its id kept as the response body), anything else a retryable
 * failure, except a refusal that cannot change (an unknown target). The Delivery takes the
 * concurrency slots and checks the lease first (src/delivery/index.ts).
 */
import type { TargetRef } from '../task/index.js';
import type { Targets } from './targets/index.js';
import { LAPSED, type AttemptOutcome, type DeliveryJob } from './types.js';

/**
 * Publishes attempt `attemptNo` of `job` to the target `ref` names. `stillHeld` is asked right
 * before the message is written (false: not sent, the outcome is LAPSED). `t0`: when the attempt
 * started (performance.now()), for its duration. `signature`: the X-Xcron-Signature value over the
 * body (null: no signing secrets).
 */
export async function publishAttempt(targets: Targets | undefined, ref: TargetRef, job: DeliveryJob, attemptNo: number, stillHeld: () => boolean, t0: number, signature: string | null = null): Promise<AttemptOutcome> {
  const msg = {
    task_id: job.task_id,
    fire_id: job.run_id,
    scheduled_time: job.scheduled_time,
    attempt: attemptNo,
    body: job.body,
    key: ref.key,
    report_token: job.extra_headers?.['x-xcron-report-token'] ?? null,
    signature,
    timeout_ms: job.timeout_ms,
  };
  const r = targets ? await targets.send(ref.name, msg, stillHeld) : { ok: false, id: null, error: `no queue targets on this node (target ${JSON.stringify(ref.name)})`, permanent: true };
  if (r.lapsed) return LAPSED;
  const duration_ms = Math.round(performance.now() - t0);
  if (r.ok) return { ok: true, retryable: false, status: null, error: null, body: r.id, retry_after_ms: null, duration_ms };
  return { ok: false, retryable: r.permanent !== true, status: null, error: r.error, body: null, retry_after_ms: null, duration_ms, ...(r.timed_out ? { timed_out: true } : {}) };
}
