import { describe, expect, it } from 'vitest';
import { OWN_URL, RoundRobin, Router, consistentHash, randomPick, type RouteStrategy } from '../../src/delivery/routing.js';
import type { Task } from '../../src/task/index.js';

const task = (id: string, urls: string[] | null, route: Task['callback']['route']): Pick<Task, 'id' | 'callback'> =>
  ({ id, callback: { url: urls?.[0] ?? 'http://a.test/', urls, route } as Task['callback'] });
const A = ['http://a.test/', 'http://b.test/', 'http://c.test/'];

describe('Router', () => {
  it('sends a task with one URL (or none listed) to its own URL, whatever its route', () => {
    const r = new Router();
    expect(r.route(task('t', null, 'broadcast'))).toBe(OWN_URL);
    expect(r.route(task('t', ['http://a.test/'], 'round_robin'))).toBe(OWN_URL);
  });

  it('defaults to failover over every URL in order', () => {
    expect(new Router().route(task('t', A, null))).toEqual({ mode: 'failover', urls: A });
    expect(new Router().route(task('t', A, 'failover'))).toEqual({ mode: 'failover', urls: A });
  });

  it('broadcasts to every URL', () => {
    expect(new Router().route(task('t', A, 'broadcast'))).toEqual({ mode: 'broadcast', urls: A });
  });

  it('round-robin cycles through the URLs, per task', () => {
    const r = new Router();
    const picks = (id: string, n: number): string[] => Array.from({ length: n }, () => r.route(task(id, A, 'round_robin')).urls[0]!);
    expect(picks('x', 4)).toEqual([A[0], A[1], A[2], A[0]]);
    expect(picks('y', 2)).toEqual([A[0], A[1]]); // its own counter
    expect(picks('x', 1)).toEqual([A[1]]);
  });

  it('consistent hashing picks the same URL for a task every time, and spreads tasks over the URLs', () => {
    const r = new Router();
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const first = r.route(task(`task-${i}`, A, 'consistent_hash'));
      expect(first.mode).toBe('single');
      expect(r.route(task(`task-${i}`, A, 'consistent_hash'))).toEqual(first);
      seen.add(first.urls[0]!);
    }
    expect(seen.size).toBe(3);
    // Removing a URL moves only the tasks that were on it.
    for (let i = 0; i < 60; i++) {
      const before = consistentHash.pick({ id: `task-${i}`, urls: A }).urls[0]!;
      const after = consistentHash.pick({ id: `task-${i}`, urls: A.filter((u) => u !== A[2]) }).urls[0]!;
      if (before !== A[2]) expect(after).toBe(before);
    }
  });

  it('random picks with the given source of randomness', () => {
    const seq = [0, 0.5, 0.99];
    const s = randomPick(() => seq.shift()!);
    expect([0, 1, 2].map(() => s.pick({ id: 't', urls: A }).urls[0])).toEqual(A);
    expect(new Router().route(task('t', A, 'random')).mode).toBe('single');
  });

  it('takes other strategies by route name (a small interface)', () => {
    const last: RouteStrategy = { pick: (t) => ({ mode: 'single', urls: [t.urls[t.urls.length - 1]!] }) };
    expect(new Router({ random: last }).route(task('t', A, 'random')).urls).toEqual([A[2]]);
    const rr = new RoundRobin();
    expect(new Router({ round_robin: rr }).route(task('t', A, 'round_robin')).urls).toEqual([A[0]]);
  });
});
