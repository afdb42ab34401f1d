/**
 * Attempt numbers continue across a crash and a handover: a redelivery carries the number after
 * every attempt that may have reached the receiver, and the run record counts them.
 *
 * How the run record knows, without a write on the path of a first attempt:
 * - the first attempt of a fire is implied by the fire itself. A committed fire goes out at its
 *   due time (a fire committed ahead waits for it on the node that holds it), so once its time has
 *   come a run that is not still held unclaimed may have been sent once, whatever its record says;
 * - an attempt numbered 2 or more (a retry, or the first attempt of a redelivery) goes out only
 *   after the record counts it (DeliveryHooks.beforeAttempt): it is written during the backoff.
 *
 * A redelivery may therefore skip a number (a fire committed ahead and due after the crash was
 * never sent, yet its redelivery says attempt 2): the count errs on the side of "may have reached".
 */
import type { HeldFire } from '../store/types.js';
import type { Run } from '../task/index.js';

/**
 * The first attempt number of a redelivery of `run` (read from the outbox) at `now`: one past
 * every attempt that may have reached the receiver. `held`: its task's fire committed ahead and
 * not claimed yet, as the store read it (HeldFireStore.heldOf), or null.
 */
export function redeliveryAttempt(run: Pick<Run, 'run_id' | 'attempts' | 'scheduled_time'>, held: HeldFire | null, now: number): number {
  const heldUnclaimed = held?.run_id === run.run_id;
  const mayHaveGone = !heldUnclaimed && run.scheduled_time <= now;
  return Math.max(run.attempts, mayHaveGone ? 1 : 0) + 1;
}
