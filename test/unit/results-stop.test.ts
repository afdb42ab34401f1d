/**
 * The results queue consumer's stop() can be called twice and returns the first call's promise
 * (a real redis-server; no report arrives, so the report dependencies are never used).
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import type { ReportDeps } from '../../src/service/report.js';
import { createResultsConsumer } from '../../src/service/results.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';

afterAll(() => stopAllRedis());

describe('results consumer lifecycle', () => {
  it('stop() twice returns the same promise, and both resolve', async () => {
    const redis = await RedisServer.start();
    const cfg = validateConfig({ results: { kind: 'redis_stream', url: redis.url, stream: 'results-stop', group: 'g' } }).results;
    const consumer = createResultsConsumer({ cfg, nodeId: 'n1', report: {} as ReportDeps, log: pino({ level: 'silent' }) });
    expect(consumer).not.toBeNull();
    await consumer!.start();
    const first = consumer!.stop();
    const second = consumer!.stop();
    expect(second).toBe(first);
    await expect(first).resolves.toBeUndefined();
  });
});
