/**
 * Issue 23 item 12: a fully qualified spelling with a trailing dot (`localhost.`, `127.0.0.1.`,
 * `receiver.internal.`) gets the same destination-policy verdict as the name without the dot, at
 * create time (urlRefusal) and at connect time (real deliveries to a real receiver).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { Delivery, type DeliveryJob } from '../../src/delivery/index.js';
import { DestinationPolicy } from '../../src/delivery/ssrf.js';
import { checkUrl } from '../../src/task/validate.js';
import { Receiver } from '../helpers/receiver.js';

const verdict = (r: string | null): string => (r === null ? 'allowed' : 'refused');

describe('create-time verdicts do not depend on a trailing dot', () => {
  it('localhost. and 127.0.0.1. are refused like localhost and 127.0.0.1 when loopback is off (real resolver)', async () => {
    const p = new DestinationPolicy({ allowLoopback: false });
    for (const [plain, dotted] of [
      ['http://localhost/x', 'http://localhost./x'],
      ['http://LOCALHOST:8080/x', 'http://LOCALHOST.:8080/x'],
      ['http://127.0.0.1/x', 'http://127.0.0.1./x'],
    ] as const) {
      const a = await p.urlRefusal(plain);
      const b = await p.urlRefusal(dotted);
      expect(a, plain).not.toBeNull();
      expect(verdict(b), dotted).toBe(verdict(a));
    }
  });

  it('a name is resolved without its trailing dot (the resolver sees the same name)', async () => {
    const asked: string[] = [];
    const p = new DestinationPolicy({
      allowPrivate: false,
      resolve: (h) => {
        asked.push(h);
        return Promise.resolve(h === 'example.internal' ? [{ address: '10.1.2.3', family: 4 }] : []);
      },
    });
    expect(await p.urlRefusal('http://example.internal/')).toMatch(/private/);
    expect(await p.urlRefusal('http://example.internal./')).toMatch(/private/);
    expect(asked).toEqual(['example.internal', 'example.internal']);
  });

  it('allow_hosts names match the dotted spelling too', async () => {
    const p = new DestinationPolicy({ allowLoopback: false, allowHosts: ['localhost'] });
    expect(await p.urlRefusal('http://localhost./')).toBeNull();
    expect(await p.urlRefusal('http://localhost/')).toBeNull();
  });

  it('the validator refuses empty labels (two trailing dots, a leading dot) with 1003', () => {
    for (const u of ['http://localhost../x', 'http://a..b/x', 'http://.localhost/x']) {
      expect(() => checkUrl(u), u).toThrow(expect.objectContaining({ code: 1003, message: expect.stringMatching(/empty label/) }));
    }
    expect(checkUrl('http://localhost./x')).toBe('http://localhost./x');
  });
});

describe('connect-time verdicts do not depend on a trailing dot (real receiver)', () => {
  let receiver: Receiver;
  const deliveries: Delivery[] = [];
  const make = (policy: DestinationPolicy): Delivery => {
    const d = new Delivery({ clock: new SystemClock(), log: pino({ level: 'silent' }), userAgent: 'xcron/test', globalConcurrency: 4, perOriginConcurrency: 4, maxResponseBytes: 65_536, signingSecrets: [], destinations: policy });
    deliveries.push(d);
    return d;
  };
  const job = (url: string): DeliveryJob => ({
    run_id: `t1:${Date.now()}`, task_id: 't1', scheduled_time: Date.now(), url, method: 'POST', headers: null, body: '{}', timeout_ms: 5000,
    retry: { max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 }, first_attempt: 1,
  });

  beforeAll(async () => {
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await Promise.all(deliveries.map((d) => d.close()));
    await receiver.close();
  });

  it('loopback allowed: localhost. reaches the receiver, as localhost does', async () => {
    const d = make(new DestinationPolicy());
    expect((await d.deliver(job(`http://localhost:${receiver.port}/plain`))).ok).toBe(true);
    const dotted = await d.deliver(job(`http://localhost.:${receiver.port}/dotted`));
    expect(dotted.error).toBeNull();
    expect(dotted.ok).toBe(true);
    expect(receiver.to('/dotted')).toHaveLength(1);
  });

  it('loopback refused: localhost. is refused by the policy (final, one attempt), as localhost is', async () => {
    const d = make(new DestinationPolicy({ allowLoopback: false }));
    for (const host of ['localhost', 'localhost.']) {
      const r = await d.deliver(job(`http://${host}:${receiver.port}/refused`));
      expect(r.ok, host).toBe(false);
      expect(r.attempts, host).toBe(1);
      expect(r.error, host).toMatch(/refused by the callback destination policy: .*loopback/);
    }
    expect(receiver.to('/refused')).toHaveLength(0);
  });
});
