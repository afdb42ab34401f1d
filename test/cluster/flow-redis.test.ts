/**
 * RedisFlow (src/delivery/flow.ts, flowAcquire-1.lua / flowRelease-1.lua) on a real redis-server:
 * two clients stand for two nodes sharing one limit. The rate window and the permits are counted
 * in Redis on its own clock; the answers are "admitted" (0) or how long to wait.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { LocalFlow, RedisFlow } from '../../src/delivery/flow.js';
import { RedisKeys, type RedisClient } from '../../src/redis/index.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { connect, uniquePrefix } from './harness.js';

let redis: RedisServer;
let a: RedisClient;
let b: RedisClient;

beforeAll(async () => {
  redis = await RedisServer.start({});
  a = await connect(redis.url, { name: 'flow-a' });
  b = await connect(redis.url, { name: 'flow-b' });
}, 60_000);

afterAll(async () => {
  a?.disconnect();
  b?.disconnect();
  await stopAllRedis();
});

const pair = (): [RedisFlow, RedisFlow, RedisKeys] => {
  const keys = new RedisKeys(uniquePrefix('flow'));
  return [new RedisFlow(a, keys), new RedisFlow(b, keys), keys];
};

describe('RedisFlow', () => {
  it('shares a rate window between nodes: at most `rate` admissions, then a wait within the period', async () => {
    const [n1, n2] = pair();
    // A long period, so the window cannot move on while the test runs.
    const limit = { rate: 3, period_ms: 60_000, parallelism: 0 };
    expect(await n1.tryAcquire('k', limit, 'r1', 0)).toBe(0);
    expect(await n2.tryAcquire('k', limit, 'r2', 0)).toBe(0);
    expect(await n1.tryAcquire('k', limit, 'r3', 0)).toBe(0);
    const wait = await n2.tryAcquire('k', limit, 'r4', 0);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(60_000);
    expect(await n1.tryAcquire('k', limit, 'r4', 0)).toBeGreaterThan(0);
    // another key has its own window
    expect(await n2.tryAcquire('other', limit, 'r4', 0)).toBe(0);
  });

  it('shares parallelism permits: a release on one node frees a permit for the other; an unreleased permit ends with its lease', async () => {
    const [n1, n2, keys] = pair();
    const limit = { rate: 0, period_ms: 1000, parallelism: 2 };
    expect(await n1.tryAcquire('p', limit, 'r1', 600_000)).toBe(0);
    expect(await n2.tryAcquire('p', limit, 'r2', 300)).toBe(0);
    expect(await n2.tryAcquire('p', limit, 'r3', 600_000)).toBeGreaterThan(0);
    await n1.release('p', 'r1');
    expect(await n2.tryAcquire('p', limit, 'r3', 600_000)).toBe(0);
    // r2's lease (300 ms) runs out without a release (its node died): r4 gets its permit then.
    const deadline = Date.now() + 10_000;
    let got = await n1.tryAcquire('p', limit, 'r4', 600_000);
    while (got !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, got));
      got = await n1.tryAcquire('p', limit, 'r4', 600_000);
    }
    expect(got).toBe(0);
    // The keys live under the flow key's own hash tag and expire (no key without a TTL).
    const ttl = await a.pttl(`${keys.flow('p')}:par`);
    expect(ttl).toBeGreaterThan(0);
  });

  it('counts like LocalFlow for one node (the same answers for the same sequence)', async () => {
    const [n1] = pair();
    const local = new LocalFlow(new SystemClock());
    const limit = { rate: 2, period_ms: 60_000, parallelism: 1 };
    const seq = ['x', 'y'];
    const viaRedis = [];
    const viaLocal = [];
    for (const h of seq) {
      viaRedis.push((await n1.tryAcquire('s', limit, h, 60_000)) === 0);
      viaLocal.push(local.tryAcquire('s', limit, h, 60_000) === 0);
    }
    expect(viaRedis).toEqual([true, false]);
    expect(viaLocal).toEqual(viaRedis);
    await n1.release('s', 'x');
    local.release('s', 'x');
    expect((await n1.tryAcquire('s', limit, 'y', 60_000)) === 0).toBe(true);
    expect(local.tryAcquire('s', limit, 'y', 60_000) === 0).toBe(true);
  });
});
