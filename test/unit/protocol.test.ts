/**
 * The delivery thread's wire format: a job packed into a flat array and unpacked in the worker is
 * the same job, header order and all; a packed job survives the structured clone.
 */
import { describe, expect, it } from 'vitest';
import { deserialize, serialize } from 'node:v8';
import type { DeliveryJob } from '../../src/delivery/index.js';
import { packJob, unpackJob, type PackedJob } from '../../src/delivery/protocol.js';

const base: DeliveryJob = {
  run_id: 'task1:1763762400000',
  task_id: 'task1',
  scheduled_time: 1763762400000,
  url: 'http://127.0.0.1:9/cb?x=1',
  method: 'POST',
  headers: null,
  body: '{"a":1}',
  timeout_ms: 10_000,
  retry: { max_attempts: 3, backoff_ms: 1000, max_backoff_ms: 60_000 },
  first_attempt: 1,
};

describe('packJob / unpackJob', () => {
  it('round-trips a plain job (no headers, no failover)', () => {
    const [id, job, starts] = unpackJob(deserialize(serialize(packJob([7, base, true]))) as PackedJob);
    expect(id).toBe(7);
    expect(starts).toBe(true);
    expect(job).toEqual({ ...base, extra_headers: undefined, failover_urls: undefined });
  });

  it('round-trips headers, extra headers (in order), failover targets and the due time (not_before)', () => {
    const job: DeliveryJob = {
      ...base,
      method: 'PUT',
      headers: { 'X-B': '2', 'x-a': '1', authorization: 'Bearer t' },
      extra_headers: { 'x-xcron-run-id': base.run_id, 'x-xcron-report-token': 'tok', 'x-xcron-shard-index': '0' },
      failover_urls: ['http://a.test/x', 'http://b.test/y'],
      first_attempt: 4,
      retry: { max_attempts: 9, backoff_ms: 5, max_backoff_ms: 50 },
      not_before: base.scheduled_time,
    };
    const [id, back, starts] = unpackJob(deserialize(serialize(packJob([123456, job, false]))) as PackedJob);
    expect(id).toBe(123456);
    expect(starts).toBe(false);
    expect(back).toEqual(job);
    expect(Object.keys(back.headers!)).toEqual(['X-B', 'x-a', 'authorization']);
    expect(Object.keys(back.extra_headers!)).toEqual(['x-xcron-run-id', 'x-xcron-report-token', 'x-xcron-shard-index']);
  });

  it('keeps an empty header map apart from none', () => {
    const [, back] = unpackJob(packJob([1, { ...base, headers: {} }, false]));
    expect(back.headers).toEqual({});
  });
});
