/**
 * Upkeep of the Redis store over all its slots: the counts for /stats, the daily report counters,
 * and retention (old runs pruned, completed tasks purged with their idempotency keys).
 */
import type { RunStatus } from '../task/index.js';
import type { StoreConnection } from './redis-conn.js';
import { releaseIdempotencyKey } from './redis-idempotency.js';
import { eachSlot, type SlotMap } from './redis-slots.js';
import type { ReportDay, StoreStats } from './types.js';

export class RedisUpkeep {
  constructor(
    private readonly conn: StoreConnection,
    private readonly slots: SlotMap,
  ) {}

  reportDays(fromDay: number, toDay: number): Promise<ReportDay[]> {
    return this.conn.guard(async () => {
      const byDay = new Map<number, Record<string, number>>();
      await eachSlot(this.slots.all(), 16, async (s) => {
        const r = (await this.conn.run('reportDays', s, [fromDay, toDay])) as (string | string[])[];
        for (let i = 0; i + 1 < r.length; i += 2) {
          const day = Number(r[i]);
          let counts = byDay.get(day);
          if (!counts) byDay.set(day, (counts = {}));
          const h = r[i + 1] as string[];
          for (let j = 0; j + 1 < h.length; j += 2) counts[h[j]!] = (counts[h[j]!] ?? 0) + Number(h[j + 1]);
        }
      });
      return [...byDay].sort((a, b) => a[0] - b[0]).map(([day, counts]) => ({ day, counts }));
    });
  }

  stats(): Promise<StoreStats> {
    return this.conn.guard(async () => {
      const tasks: StoreStats['tasks'] = { active: 0, paused: 0, completed: 0 };
      const runs: Record<string, number> = {};
      const per = (await Promise.all(this.slots.all().map((s) => this.conn.run('stats', s, [])))) as [number, number, number, string[]][];
      for (const [a, p, c, rs] of per) {
        tasks.active += a;
        tasks.paused += p;
        tasks.completed += c;
        for (let i = 0; i + 1 < rs.length; i += 2) {
          const n = Number(rs[i + 1]);
          if (n !== 0) runs[rs[i]! as RunStatus] = (runs[rs[i]!] ?? 0) + n;
        }
      }
      return { tasks, runs };
    });
  }

  pruneRuns(olderThan: number, maxPerTask: number, only?: readonly number[] | null): Promise<number> {
    return this.conn.guard(async () => {
      let total = 0;
      await eachSlot(only ?? this.slots.all(), 4, async (s) => {
        let cursor = 'age';
        while (cursor !== '') {
          const [n, next] = (await this.conn.run('pruneRuns', s, [olderThan, maxPerTask, cursor, 500])) as [number, string];
          total += n;
          cursor = next;
        }
      });
      return total;
    });
  }

  purgeCompleted(olderThan: number, only?: readonly number[] | null): Promise<number> {
    return this.conn.guard(async () => {
      let total = 0;
      await eachSlot(only ?? this.slots.all(), 4, async (s) => {
        for (let more = true; more; ) {
          const r = (await this.conn.run('purgeCompleted', s, [olderThan, 200])) as unknown[];
          more = r[0] === 1;
          for (let i = 1; i + 1 < r.length; i += 2) {
            total++;
            const id = r[i] as string;
            const key = r[i + 1] as string;
            if (key !== '') await releaseIdempotencyKey(this.conn, key, id);
          }
        }
      });
      return total;
    });
  }
}
