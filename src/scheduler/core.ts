/**
 * What every part of the scheduler shares: its options, the run recorder, whether it is stopped,
 * its public events, and the internal outcome event the follow-ups listen to.
 */
import { EventEmitter } from 'node:events';
import type { DeliveryResult } from '../delivery/index.js';
import { StoreUnavailableError } from '../errors.js';
import type { Task } from '../task/index.js';
import { RunRecorder } from './recorder.js';
import type { SchedulerEvents, SchedulerOptions } from './types.js';

/** A run finished (delivered, or closed by a report or its deadline). */
export interface Outcome {
  task_id: string;
  /** The task as the run went out (null: deleted meanwhile; no follow-ups). */
  task: Task | null;
  run_id: string;
  scheduled_time: number;
  result: DeliveryResult;
  /**
   * The lease token the run went out under (its follow-ups need that lease, see FollowUps), or
   * undefined: closed by a report, which the store closed once, so this node acts on it.
   */
  token: number | undefined;
}

export class SchedulerCore {
  /** Set by start and stop; every part checks it before acting. */
  stopped = true;
  readonly recorder: RunRecorder;
  /** The outcome of each finished run, after the public 'finished' event. */
  readonly outcomes = new EventEmitter<{ outcome: [Outcome] }>();

  constructor(
    readonly o: SchedulerOptions,
    readonly events: EventEmitter<SchedulerEvents>,
  ) {
    const { delivery } = o;
    this.recorder = new RunRecorder(o.store, o.log, o.clock, undefined, o.deferRunWrites && delivery.backlog ? () => delivery.backlog!() > 0 : undefined);
  }

  /** Logs a store failure and emits 'storeError'. */
  storeError(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    if (!(err instanceof StoreUnavailableError)) this.o.log.error({ err }, 'store error in scheduler');
    else this.o.log.warn({ err: err.message }, 'store unavailable');
    this.events.emit('storeError', err);
  }

  /** A run finished: the public 'finished' event, then its outcome for the follow-ups. */
  finished(o: Outcome): void {
    this.events.emit('finished', { task_id: o.task_id, run_id: o.run_id, scheduled_time: o.scheduled_time, result: o.result });
    this.outcomes.emit('outcome', o);
  }

  /** A slot's fencing token was refused: the slot is lost (its new owner fires it). */
  fenced(slot: number): void {
    this.events.emit('fenced', slot);
    this.o.ownership.reportFenced(slot);
  }

  /** Waits `ms` on the scheduler's clock. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => this.o.clock.setTimer(r, ms));
  }
}

/**
 * Yields to the event loop (not a wait in time): I/O and the timers due run before the caller
 * goes on, so a long loop (a burst's commits, a window's pages) never holds up a fire.
 */
export const nextTurn = (): Promise<void> => new Promise<void>((r) => setImmediate(r));
