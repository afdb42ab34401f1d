/**
 * The retention round (src/store/retention.ts) on a real SQLite store: it waits while the node is
 * busy (a burst going out), gives up waiting after maxWaitMs, works through a cluster node's slots
 * in chunks with a check before each, and stops on shutdown.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SystemClock } from '../../src/clock/index.js';
import { retentionRound, type RetentionOptions } from '../../src/store/retention.js';
import { SqliteTaskStore } from '../../src/store/sqlite.js';
import { tempDir } from './fixtures.js';

const log = pino({ level: 'silent' });
const DAY = 86_400_000;
let cleanup: (() => Promise<void>) | null = null;

afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

/** A real SQLite store whose prune and purge calls are logged (in order with the busy checks). */
function recordedStore(events: string[]): RetentionOptions['store'] & { calls: { op: string; olderThan: number; slots: readonly number[] | null | undefined }[] } {
  const tmp = tempDir('xcron-retention-');
  const real = new SqliteTaskStore({ file: join(tmp.dir, 'xcron.db'), synchronous: 'normal' });
  cleanup = async () => {
    await real.close();
    tmp.remove();
  };
  const calls: { op: string; olderThan: number; slots: readonly number[] | null | undefined }[] = [];
  return {
    calls,
    pruneRuns: (olderThan, max, slots) => {
      events.push('prune');
      calls.push({ op: 'prune', olderThan, slots });
      return real.pruneRuns(olderThan, max);
    },
    purgeCompleted: (olderThan, slots) => {
      events.push('purge');
      calls.push({ op: 'purge', olderThan, slots });
      return real.purgeCompleted(olderThan);
    },
  };
}

const base = { clock: new SystemClock(), log, retentionDays: 7, maxRunsPerTask: 100, completedRetentionDays: 3, pollMs: 5 };

describe('retention round', () => {
  it('waits while the node is busy, then prunes and purges with the configured ages', async () => {
    const events: string[] = [];
    const store = recordedStore(events);
    let busyFor = 3;
    const before = Date.now();
    const r = await retentionRound({
      ...base,
      store,
      slots: null,
      busy: () => {
        const b = busyFor-- > 0;
        events.push(b ? 'busy' : 'quiet');
        return b;
      },
    });
    const after = Date.now();
    expect(events).toEqual(['busy', 'busy', 'busy', 'quiet', 'prune', 'purge']);
    expect(r).toMatchObject({ pruned: 0, purged: 0 });
    expect(r.waitedMs).toBeGreaterThan(0);
    const [prune, purge] = store.calls;
    expect(prune!.slots).toBeNull();
    expect(prune!.olderThan).toBeGreaterThanOrEqual(before - 7 * DAY);
    expect(prune!.olderThan).toBeLessThanOrEqual(after - 7 * DAY);
    expect(purge!.olderThan).toBeGreaterThanOrEqual(before - 3 * DAY);
    expect(purge!.olderThan).toBeLessThanOrEqual(after - 3 * DAY);
  });

  it('a node that stays busy still prunes once maxWaitMs has passed (retention is never put off for good)', async () => {
    const events: string[] = [];
    const store = recordedStore(events);
    let checks = 0;
    await retentionRound({ ...base, store, slots: null, maxWaitMs: 40, busy: () => (checks++, true) });
    expect(events).toEqual(['prune', 'purge']);
    expect(checks).toBeGreaterThan(1);
  });

  it('retention_days 0 prunes by count only; completed_retention_days 0 purges nothing', async () => {
    const events: string[] = [];
    const store = recordedStore(events);
    await retentionRound({ ...base, store, slots: null, retentionDays: 0, completedRetentionDays: 0, busy: () => false });
    expect(events).toEqual(['prune']);
    expect(store.calls[0]!.olderThan).toBe(0);
  });

  it("a cluster node's slots go in chunks, each after a check: a burst that starts mid-round pauses the rest", async () => {
    const events: string[] = [];
    const store = recordedStore(events);
    const slots = Array.from({ length: 40 }, (_, i) => i * 3);
    let burst = 0;
    const r = await retentionRound({
      ...base,
      store,
      slots,
      chunk: 16,
      busy: () => {
        // the burst starts after the first chunk and lasts two more checks
        if (events.filter((e) => e === 'prune').length === 1 && burst < 2) {
          burst++;
          events.push('busy');
          return true;
        }
        return false;
      },
    });
    expect(events).toEqual(['prune', 'purge', 'busy', 'busy', 'prune', 'purge', 'prune', 'purge']);
    expect(store.calls.filter((c) => c.op === 'prune').map((c) => c.slots)).toEqual([slots.slice(0, 16), slots.slice(16, 32), slots.slice(32)]);
    expect(r.waitedMs).toBeGreaterThan(0);
  });

  it('shutdown (the signal) ends a round that is waiting, without pruning', async () => {
    const events: string[] = [];
    const store = recordedStore(events);
    const stop = new AbortController();
    let checks = 0;
    await retentionRound({
      ...base,
      store,
      slots: null,
      signal: stop.signal,
      busy: () => {
        if (++checks === 3) stop.abort();
        return true;
      },
    });
    expect(events).toEqual([]);
  });
});
