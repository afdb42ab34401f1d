/**
 * FastCounter / FastHistogram print exactly what prom-client's Counter / Histogram print for the
 * same observations (the exposition text is the contract of the dashboards and alerts).
 */
import { describe, expect, it } from 'vitest';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../src/fast-metrics.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function values(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const r = x / 2 ** 31;
    return r < 0.1 ? BUCKETS[Math.floor(r * 100) % BUCKETS.length]! : r * r * 8; // bucket edges included
  });
}

describe('fast metrics', () => {
  it('a labelled histogram and counter print as prom-client prints them', async () => {
    const a = new Registry();
    const b = new Registry();
    const ha = new Histogram({ name: 'x_duration_seconds', help: 'Duration, by result.', labelNames: ['result'], buckets: BUCKETS, registers: [a] });
    const ca = new Counter({ name: 'x_attempts_total', help: 'Attempts, by result.', labelNames: ['result'], registers: [a] });
    const hb = new FastHistogram({ name: 'x_duration_seconds', help: 'Duration, by result.', labelNames: ['result'], buckets: BUCKETS, registers: [b] });
    const cb = new FastCounter({ name: 'x_attempts_total', help: 'Attempts, by result.', labelNames: ['result'], registers: [b] });
    const vs = values(500, 7);
    vs.forEach((v, i) => {
      const result = i % 3 === 0 ? 'success' : i % 3 === 1 ? 'http_5xx' : 'timeout';
      ha.observe({ result }, v);
      ca.inc({ result });
      hb.at(result).observe(v);
      cb.at(result).inc();
    });
    expect(await b.metrics()).toBe(await a.metrics());
  });

  it('label-less metrics print zeros before any observation, then the same as prom-client', async () => {
    const a = new Registry();
    const b = new Registry();
    const ha = new Histogram({ name: 'y_lateness_seconds', help: 'Lateness.', buckets: BUCKETS, registers: [a] });
    const ca = new Counter({ name: 'y_committed_total', help: 'Committed.', registers: [a] });
    const hb = new FastHistogram({ name: 'y_lateness_seconds', help: 'Lateness.', buckets: BUCKETS, registers: [b] }).at();
    const cb = new FastCounter({ name: 'y_committed_total', help: 'Committed.', registers: [b] }).at();
    expect(await b.metrics()).toBe(await a.metrics());
    for (const v of values(300, 11)) {
      ha.observe(v);
      hb.observe(v);
      ca.inc(2);
      cb.inc(2);
    }
    expect(await b.metrics()).toBe(await a.metrics());
  });

  it('reset zeroes in place: children already handed out keep counting', async () => {
    const r = new Registry();
    const c = new FastCounter({ name: 'z_total', help: 'z', labelNames: ['k'], registers: [r] });
    const child = c.at('v');
    child.inc(5);
    r.resetMetrics();
    child.inc();
    expect(await r.metrics()).toContain('z_total{k="v"} 1');
  });

  it('refuses a wrong number of label values', () => {
    const c = new FastCounter({ name: 'w_total', help: 'w', labelNames: ['a', 'b'], registers: [new Registry()] });
    expect(() => c.at('only-one')).toThrow(/2 label values expected, got 1/);
    c.at('x', 'y').inc();
  });
});
