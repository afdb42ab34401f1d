/**
 * runShutdown (src/shutdown.ts): each step has its own catch and deadline, so a step that throws
 * or never settles is reported and the later steps still run.
 */
import { describe, expect, it } from 'vitest';
import { DeadlineError } from '../../src/errors.js';
import { runShutdown, type ShutdownStep } from '../../src/shutdown.js';

function recorder(): { warn: (obj: object, msg: string) => void; lines: { obj: object; msg: string }[] } {
  const lines: { obj: object; msg: string }[] = [];
  return { warn: (obj, msg) => lines.push({ obj, msg }), lines };
}

describe('runShutdown', () => {
  it('runs every step in order when all succeed', async () => {
    const ran: string[] = [];
    const steps: ShutdownStep[] = ['a', 'b', 'c'].map((name) => ({ name, timeoutMs: 5000, run: async () => void ran.push(name) }));
    const log = recorder();
    const out = await runShutdown(steps, log);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(out.map((o) => o.outcome)).toEqual(['ok', 'ok', 'ok']);
    expect(log.lines).toEqual([]);
  });

  it('a step that throws (sync or async) or never settles is reported, and the later steps still run', async () => {
    const ran: string[] = [];
    const log = recorder();
    const out = await runShutdown(
      [
        { name: 'throws', timeoutMs: 5000, run: () => { ran.push('throws'); throw new Error('boom'); } },
        { name: 'rejects', timeoutMs: 5000, run: () => { ran.push('rejects'); return Promise.reject(new Error('async boom')); } },
        { name: 'hangs', timeoutMs: 100, run: () => { ran.push('hangs'); return new Promise<never>(() => undefined); } },
        { name: 'last', timeoutMs: 5000, run: () => void ran.push('last') },
      ],
      log,
    );
    expect(ran).toEqual(['throws', 'rejects', 'hangs', 'last']);
    expect(out.map((o) => [o.name, o.outcome])).toEqual([
      ['throws', 'failed'],
      ['rejects', 'failed'],
      ['hangs', 'timed_out'],
      ['last', 'ok'],
    ]);
    expect(out[0]!.error?.message).toBe('boom');
    expect(out[2]!.error).toBeInstanceOf(DeadlineError);
    expect(log.lines.map((l) => l.msg)).toEqual([
      "shutdown step 'throws' failed; going on",
      "shutdown step 'rejects' failed; going on",
      "shutdown step 'hangs' did not finish in time; going on",
    ]);
  });

  it('a non-Error thrown value is reported as an Error', async () => {
    const out = await runShutdown([{ name: 'odd', timeoutMs: 5000, run: () => Promise.reject('just a string' as unknown as Error) }], recorder());
    expect(out[0]!.outcome).toBe('failed');
    expect(out[0]!.error).toBeInstanceOf(Error);
    expect(out[0]!.error?.message).toBe('just a string');
  });
});
