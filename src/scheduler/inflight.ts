/**
 * Runs in flight on this node, per task, and the fires queued behind them (overlap 'queue'). An
 * async run stays in flight until it is reported or its deadline passes.
 */
import type { Dispatch } from './types.js';

export class InFlight {
  private readonly byTask = new Map<string, number>();
  private readonly runs = new Set<string>();
  private readonly queued = new Map<string, Dispatch[]>();
  /** What ends with a run's in-flight state (its flow permit). */
  private readonly onEnd = new Map<string, () => void>();

  /** `start`: delivers the next queued fire of a task once its run ends (unless stopped). */
  constructor(
    private readonly start: (d: Dispatch) => void,
    private readonly stopped: () => boolean,
  ) {}

  get size(): number {
    return this.runs.size;
  }
  has(runId: string): boolean {
    return this.runs.has(runId);
  }
  /** A run of the task is in flight here. */
  busy(taskId: string): boolean {
    return (this.byTask.get(taskId) ?? 0) > 0;
  }
  /** The run waits behind a run of its task (overlap queue). */
  isQueued(taskId: string, runId: string): boolean {
    return this.queued.get(taskId)?.some((q) => q.run_id === runId) === true;
  }

  enqueue(d: Dispatch): void {
    const q = this.queued.get(d.task.id) ?? [];
    q.push(d);
    this.queued.set(d.task.id, q);
  }

  /** The task was deleted: the fires queued behind its run are dropped. */
  dropQueued(taskId: string): void {
    this.queued.delete(taskId);
  }

  acquire(taskId: string, runId: string): void {
    this.byTask.set(taskId, (this.byTask.get(taskId) ?? 0) + 1);
    this.runs.add(runId);
  }

  /** Calls `fn` when the run's in-flight state ends (for an async run: at its report or deadline). */
  whenEnded(runId: string, fn: () => void): void {
    this.onEnd.set(runId, fn);
  }

  /** Ends a run's in-flight state on this node (the fires queued behind it wait on). */
  releaseOnly(taskId: string, runId: string): void {
    this.runs.delete(runId);
    const end = this.onEnd.get(runId);
    if (end) {
      this.onEnd.delete(runId);
      end();
    }
    const n = (this.byTask.get(taskId) ?? 1) - 1;
    if (n <= 0) this.byTask.delete(taskId);
    else this.byTask.set(taskId, n);
  }

  /** Ends a run's in-flight state on this node and starts the next queued fire of its task. */
  release(taskId: string, runId: string): void {
    this.releaseOnly(taskId, runId);
    const q = this.queued.get(taskId);
    if (q && q.length > 0 && !this.stopped()) {
      const next = q.shift()!;
      if (q.length === 0) this.queued.delete(taskId);
      this.start(next);
    }
  }
}
