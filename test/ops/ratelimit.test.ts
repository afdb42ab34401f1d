/**
 * Rate limit: the token bucket (manual clock), 429 + code 1014 + Retry-After through the app, per
 * token separation, and per client address over real HTTP (two loopback source addresses).
 */
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenBuckets } from '../../src/api/ratelimit.js';
import { send } from '../helpers/app.js';
import { ADMIN, READER, bearer, createOpsApp, type OpsApp } from './helpers.js';

describe('TokenBuckets', () => {
  it('allows a burst, then one request per 1/rate seconds', () => {
    const b = new TokenBuckets(2, 4);
    for (let i = 0; i < 4; i++) expect(b.take('k', 1000)).toBe(0);
    expect(b.take('k', 1000)).toBe(500); // 1 token needs 500 ms at 2/s
    expect(b.take('k', 1250)).toBe(250);
    expect(b.take('k', 1500)).toBe(0);
    expect(b.take('k', 1500)).toBe(500);
    // a long idle period refills only up to the burst
    for (let i = 0; i < 4; i++) expect(b.take('k', 100_000)).toBe(0);
    expect(b.take('k', 100_000)).toBeGreaterThan(0);
  });

  it('keys are independent; burst defaults to the rate (at least 1)', () => {
    const b = new TokenBuckets(0.5, 0);
    expect(b.burst).toBe(1);
    expect(b.take('a', 0)).toBe(0);
    expect(b.take('a', 0)).toBe(2000);
    expect(b.take('b', 0)).toBe(0);
  });

  it('keeps at most maxKeys buckets, dropping idle (full) ones first', () => {
    const b = new TokenBuckets(1, 1, 10);
    for (let i = 0; i < 10; i++) b.take(`k${i}`, 0);
    expect(b.size()).toBe(10);
    b.take('new', 60_000); // every old bucket has refilled: all swept
    expect(b.size()).toBe(1);
    for (let i = 0; i < 20; i++) b.take(`busy${i}`, 60_000);
    expect(b.size()).toBeLessThanOrEqual(10);
  });
});

describe('through the app', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });

  it('429 with code 1014 and Retry-After once the burst is spent; refills with time', async () => {
    api = await createOpsApp({ rateLimit: { perSec: 1, burst: 3 } });
    for (let i = 0; i < 3; i++) expect((await send(api.app, '/xcron/stats')).status).toBe(200);
    const limited = await send(api.app, '/xcron/stats');
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe(1014);
    expect(limited.body.message).toMatch(/rate limit exceeded: at most 1 requests per second \(burst 3\); retry after 1 s/);
    expect(limited.headers.get('retry-after')).toBe('1');
    // health and metrics are not limited
    expect((await api.app.request('/healthz')).status).toBe(200);
    expect((await api.app.request('/metrics')).status).toBe(200);
    api.clock.advance(1000);
    expect((await send(api.app, '/xcron/stats')).status).toBe(200);
    expect((await send(api.app, '/xcron/stats')).status).toBe(429);
  });

  it('Retry-After rounds the wait up to whole seconds', async () => {
    api = await createOpsApp({ rateLimit: { perSec: 0.2, burst: 1 } });
    expect((await send(api.app, '/xcron/stats')).status).toBe(200);
    const r = await send(api.app, '/xcron/stats');
    expect(r.headers.get('retry-after')).toBe('5');
    api.clock.advance(2500);
    expect((await send(api.app, '/xcron/stats')).headers.get('retry-after')).toBe('3');
  });

  it('with auth on, each token has its own bucket; unauthenticated guesses share the address bucket', async () => {
    api = await createOpsApp({ tokens: [ADMIN, READER], rateLimit: { perSec: 1, burst: 2 } });
    for (let i = 0; i < 2; i++) expect((await send(api.app, '/xcron/stats', { headers: bearer(ADMIN) })).status).toBe(200);
    expect((await send(api.app, '/xcron/stats', { headers: bearer(ADMIN) })).status).toBe(429);
    // the read token is unaffected by the admin token's spending
    for (let i = 0; i < 2; i++) expect((await send(api.app, '/xcron/stats', { headers: bearer(READER) })).status).toBe(200);
    expect((await send(api.app, '/xcron/stats', { headers: bearer(READER) })).status).toBe(429);
    // wrong tokens: 401 twice, then 429 (token guessing is limited per address)
    expect((await send(api.app, '/xcron/stats', { headers: { authorization: 'Bearer guess-00000000000000' } })).status).toBe(401);
    expect((await send(api.app, '/xcron/stats', { headers: { authorization: 'Bearer guess-00000000000001' } })).status).toBe(401);
    expect((await send(api.app, '/xcron/stats', { headers: { authorization: 'Bearer guess-00000000000002' } })).status).toBe(429);
  });

  it('off when rate_limit_per_sec is 0', async () => {
    api = await createOpsApp({ rateLimit: { perSec: 0, burst: 0 } });
    for (let i = 0; i < 50; i++) expect((await send(api.app, '/xcron/stats')).status).toBe(200);
  });

  it('per client address over real HTTP when auth is off', async () => {
    api = await createOpsApp({ rateLimit: { perSec: 1, burst: 2 } });
    // The node serves its own app (its stop, in afterEach, closes the port).
    const { port } = await api.node.listen({ port: 0, host: '127.0.0.1' });
    const from = (localAddress: string) => new Agent({ localAddress });
    const a = from('127.0.0.1');
    const b = from('127.0.0.2');
    const get = async (agent: Agent): Promise<number> => {
      const r = await request(`http://127.0.0.1:${port}/xcron/stats`, { dispatcher: agent });
      await r.body.text();
      return r.statusCode;
    };
    try {
      expect([await get(a), await get(a), await get(a)]).toEqual([200, 200, 429]);
      expect([await get(b), await get(b), await get(b)]).toEqual([200, 200, 429]);
      const ips = api.logs.parsed().filter((l) => l.msg === 'request').map((l) => l.ip);
      expect(new Set(ips)).toEqual(new Set(['127.0.0.1', '127.0.0.2']));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
