/**
 * Ordered shutdown: steps run one after the other, each with its own catch and its own deadline,
 * so a step that throws or never settles is logged and the later steps still run (a hung Redis
 * quit must not keep SQLite open, a failed history flush must not keep the leases).
 *
 * Deadlines are wall-clock timers (unref'd), not the injected Clock: a test's manual clock does
 * not move during a shutdown, and a stop must end whatever the clock does.
 */
import { DeadlineError } from './errors.js';

export interface ShutdownStep {
  name: string;
  /** How long (ms) the step may take before the shutdown moves on without it. */
  timeoutMs: number;
  run(): unknown;
}

export interface StepOutcome {
  name: string;
  outcome: 'ok' | 'failed' | 'timed_out';
  error?: Error;
}

/** Runs the steps in order; never throws. Each failure or overrun is logged at warn and reported. */
export async function runShutdown(steps: readonly ShutdownStep[], log: { warn(fields: object, msg: string): void }): Promise<StepOutcome[]> {
  const out: StepOutcome[] = [];
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError(`shutdown step '${step.name}'`, step.timeoutMs)), step.timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([Promise.resolve().then(() => step.run()), deadline]);
      out.push({ name: step.name, outcome: 'ok' });
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const timedOut = error instanceof DeadlineError;
      out.push({ name: step.name, outcome: timedOut ? 'timed_out' : 'failed', error });
      log.warn({ step: step.name, err: error }, timedOut ? `shutdown step '${step.name}' did not finish in time; going on` : `shutdown step '${step.name}' failed; going on`);
    } finally {
      clearTimeout(timer);
    }
  }
  return out;
}
