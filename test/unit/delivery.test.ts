/**
 * Delivery (src/delivery): backoff, Retry-After, signing, and callbacks against real node:http
 * receivers on port 0. No timed assertions except the one-sided Retry-After check, which
 * compares the receiver's own timestamps.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock, SystemClock, type Clock } from '../../src/clock/index.js';
import { Delivery, backoffDelay, parseRetryAfter, rawHeader, signature, type DeliveryJob, type DeliveryOptions } from '../../src/delivery/index.js';

const log = pino({ level: 'silent' });

// ---------------------------------------------------------------- pure helpers

describe('backoffDelay (full jitter)', () => {
  const policy = { max_attempts: 10, backoff_ms: 100, max_backoff_ms: 1000 };

  it('is random() * min(max_backoff, backoff * 2^(attempt-1)), floored', () => {
    expect(backoffDelay(policy, 1, () => 0)).toBe(0);
    expect(backoffDelay(policy, 1, () => 0.5)).toBe(50);
    expect(backoffDelay(policy, 1, () => 0.999999)).toBe(99);
    expect(backoffDelay(policy, 2, () => 0.5)).toBe(100);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(200);
    expect(backoffDelay(policy, 4, () => 0.5)).toBe(400);
  });

  it('is capped at max_backoff_ms', () => {
    expect(backoffDelay(policy, 5, () => 0.5)).toBe(500); // 1600 capped to 1000
    expect(backoffDelay(policy, 5, () => 0.999999)).toBe(999);
    expect(backoffDelay(policy, 1000, () => 0.999999)).toBe(999); // no overflow for huge attempt numbers
  });

  it('always lies in [0, cap) for any random draw', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** (attempt - 1));
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(policy, attempt, Math.random);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(cap);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
  });

  it('zero backoff means immediate retries', () => {
    expect(backoffDelay({ max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 }, 3, () => 0.9)).toBe(0);
  });
});

describe('rawHeader', () => {
  it('finds the first value of a header in undici\'s raw list, whatever its case', () => {
    const raw = [Buffer.from('Content-Type'), Buffer.from('text/plain'), Buffer.from('Retry-After'), Buffer.from('7'), Buffer.from('retry-after'), Buffer.from('9')];
    expect(rawHeader(raw, 'retry-after')).toBe('7');
    expect(rawHeader(raw, 'content-type')).toBe('text/plain');
    expect(rawHeader(raw, 'x-missing')).toBeUndefined();
    expect(rawHeader(null, 'retry-after')).toBeUndefined();
    expect(rawHeader(['RETRY-AFTER', '3'], 'retry-after')).toBe('3');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delta seconds', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 7 ', now)).toBe(7000);
    expect(parseRetryAfter('0', now)).toBe(0);
  });
  it('reads an HTTP date relative to now', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
  });
  it('a date in the past means "now"', () => {
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });
  it('caps at one hour', () => {
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
    expect(parseRetryAfter('Fri, 01 Jan 2027 00:00:00 GMT', now)).toBe(3_600_000);
  });
  it('uses the first of repeated headers', () => {
    expect(parseRetryAfter(['2', '9'], now)).toBe(2000);
  });
  it('junk and absence give null', () => {
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
    expect(parseRetryAfter([], now)).toBeNull();
  });
});

describe('signature', () => {
  const hmac = (secret: string, payload: string) => createHmac('sha256', secret).update(payload).digest('hex');
  const body = '{"order":42,"note":"héllo"}';

  it('one secret: t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">', () => {
    const s = signature(['0123456789abcdef-current'], 1767225600, body);
    expect(s).toBe(`t=1767225600,v1=${hmac('0123456789abcdef-current', `1767225600.${body}`)}`);
    expect(s).toMatch(/^t=1767225600,v1=[0-9a-f]{64}$/);
  });

  it('two secrets: two v1= parts, current first', () => {
    const s = signature(['0123456789abcdef-current', '0123456789abcdef-next'], 1767225600, body);
    const parts = s.split(',');
    expect(parts).toHaveLength(3);
    expect(parts[0]).toBe('t=1767225600');
    expect(parts[1]).toBe(`v1=${hmac('0123456789abcdef-current', `1767225600.${body}`)}`);
    expect(parts[2]).toBe(`v1=${hmac('0123456789abcdef-next', `1767225600.${body}`)}`);
    expect(parts[1]).not.toBe(parts[2]);
  });

  it('changes when the body or the timestamp changes', () => {
    const a = signature(['0123456789abcdef'], 100, '{}');
    expect(signature(['0123456789abcdef'], 101, '{}')).not.toBe(a);
    expect(signature(['0123456789abcdef'], 100, '{ }').split(',')[1]).not.toBe(a.split(',')[1]);
  });
});

// ---------------------------------------------------------------- real receivers

interface Received {
  at: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Receiver {
  url: string;
  origin: string;
  received: Received[];
  /** Resolves when at least n requests have arrived. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

const servers: Server[] = [];
const deliveries: Delivery[] = [];
const floating: Promise<unknown>[] = [];

async function receiver(handler: Handler): Promise<Receiver> {
  const received: Received[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      for (const w of waiters.splice(0)) {
        if (received.length >= w.n) w.resolve();
        else waiters.push(w);
      }
      handler(req, res, received.length);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/hook`,
    origin,
    received,
    waitFor: (n) => (received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function makeDelivery(over: Partial<DeliveryOptions> = {}, clock: Clock = new SystemClock()): Delivery {
  const d = new Delivery({
    clock,
    log,
    userAgent: 'xcron/test',
    globalConcurrency: 16,
    perOriginConcurrency: 4,
    maxResponseBytes: 65_536,
    signingSecrets: [],
    random: () => 0,
    ...over,
  });
  deliveries.push(d);
  return d;
}

function job(url: string, over: Partial<DeliveryJob> = {}): DeliveryJob {
  return {
    run_id: 'task-1:1767225600000',
    task_id: 'task-1',
    scheduled_time: 1767225600000,
    url,
    method: 'POST',
    headers: null,
    body: '{"hello":"world"}',
    timeout_ms: 10_000,
    retry: { max_attempts: 3, backoff_ms: 10, max_backoff_ms: 10 },
    first_attempt: 1,
    ...over,
  };
}

afterEach(async () => {
  for (const d of deliveries.splice(0)) await d.close();
  for (const s of servers.splice(0)) await closeServer(s);
  await Promise.allSettled(floating.splice(0));
});

describe('Delivery against real receivers', () => {
  it('a 2xx is a success on the first attempt', async () => {
    const r = await receiver((_req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain' });
      res.end('created');
    });
    const attempts: number[] = [];
    const result = await makeDelivery().deliver(job(r.url), { onAttempt: (n) => attempts.push(n) });
    expect(result).toMatchObject({ ok: true, status: 201, error: null, body: 'created', attempts: 1, aborted: false });
    expect(attempts).toEqual([1]);
    expect(r.received).toHaveLength(1);
    expect(r.received[0]!.body).toBe('{"hello":"world"}');
    expect(r.received[0]!.method).toBe('POST');
    expect(r.received[0]!.url).toBe('/hook');
  });

  it('sends every header of API.md (and the task`s own headers), signed with both secrets', async () => {
    const r = await receiver((_req, res) => res.end());
    const secrets = ['0123456789abcdef-current', '0123456789abcdef-next'];
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00.700Z'));
    const d = makeDelivery({ signingSecrets: secrets }, clock);
    const result = await d.deliver(job(r.url, { headers: { Authorization: 'Bearer abc', 'X-Tenant': 't1' } }));
    expect(result.ok).toBe(true);
    const h = r.received[0]!.headers;
    expect(h['content-type']).toBe('application/json');
    expect(h['user-agent']).toBe('xcron/test');
    expect(h['x-xcron-task-id']).toBe('task-1');
    expect(h['x-xcron-fire-id']).toBe('task-1:1767225600000');
    expect(h['x-xcron-scheduled-time']).toBe('1767225600000');
    expect(h['x-xcron-attempt']).toBe('1');
    expect(h.authorization).toBe('Bearer abc');
    expect(h['x-tenant']).toBe('t1');
    // verify the signature independently over the bytes actually received
    const sig = String(h['x-xcron-signature']);
    const [t, ...v1] = sig.split(',');
    expect(t).toBe('t=1767225600');
    const payload = `1767225600.${r.received[0]!.body}`;
    expect(v1).toEqual(secrets.map((s) => `v1=${createHmac('sha256', s).update(payload).digest('hex')}`));
  });

  it('sends each header once: extra headers replace a task header of the same name, and xcron`s own replace both', async () => {
    let raw: string[] = [];
    const r = await receiver((req, res) => {
      raw = req.rawHeaders;
      res.end();
    });
    const d = makeDelivery();
    // Validation keeps tasks from setting these names; the sender must still not send them twice.
    const result = await d.deliver(
      job(r.url, {
        headers: { 'x-a': 'task', 'x-xcron-run-id': 'from-task', 'content-type': 'text/plain' },
        extra_headers: { 'x-xcron-run-id': 'extra', 'x-xcron-attempt': '99', 'x-b': 'extra' },
      }),
    );
    expect(result.ok).toBe(true);
    const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    const value = (n: string): string[] => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === n);
    for (const n of ['x-a', 'x-b', 'x-xcron-run-id', 'x-xcron-attempt', 'content-type', 'user-agent', 'x-xcron-fire-id']) expect(names.filter((x) => x === n), n).toHaveLength(1);
    expect(value('x-a')).toEqual(['task']);
    expect(value('x-xcron-run-id')).toEqual(['extra']);
    expect(value('x-xcron-attempt')).toEqual(['1']);
    expect(value('content-type')).toEqual(['application/json']);
  });

  it('no signature header without signing secrets', async () => {
    const r = await receiver((_req, res) => res.end());
    await makeDelivery().deliver(job(r.url));
    expect(r.received[0]!.headers['x-xcron-signature']).toBeUndefined();
  });

  it('uses the task`s method; GET sends no body', async () => {
    const r = await receiver((_req, res) => res.end());
    await makeDelivery().deliver(job(r.url, { method: 'PUT' }));
    await makeDelivery().deliver(job(r.url, { method: 'GET' }));
    expect(r.received.map((x) => x.method)).toEqual(['PUT', 'GET']);
    expect(r.received[0]!.body).toBe('{"hello":"world"}');
    expect(r.received[1]!.body).toBe('');
  });

  it('500 then 200: retried with the attempt header incremented and the same fire id', async () => {
    const r = await receiver((_req, res, n) => {
      res.statusCode = n === 1 ? 500 : 200;
      res.end(n === 1 ? 'boom' : 'ok');
    });
    const attempts: number[] = [];
    const result = await makeDelivery().deliver(job(r.url), { onAttempt: (n) => attempts.push(n) });
    expect(result).toMatchObject({ ok: true, status: 200, attempts: 2, aborted: false });
    expect(attempts).toEqual([1, 2]);
    expect(r.received.map((x) => x.headers['x-xcron-attempt'])).toEqual(['1', '2']);
    expect(r.received.map((x) => x.headers['x-xcron-fire-id'])).toEqual(['task-1:1767225600000', 'task-1:1767225600000']);
    expect(r.received[1]!.body).toBe(r.received[0]!.body);
  });

  it('5xx until max_attempts: a final FAIL with the last status', async () => {
    const r = await receiver((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const result = await makeDelivery().deliver(job(r.url, { retry: { max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result).toMatchObject({ ok: false, status: 503, error: 'HTTP 503', attempts: 3, aborted: false });
    expect(r.received).toHaveLength(3);
  });

  it('a recovered run continues its attempt count (first_attempt)', async () => {
    const r = await receiver((_req, res) => res.end());
    const result = await makeDelivery().deliver(job(r.url, { first_attempt: 3 }));
    expect(result.attempts).toBe(3);
    expect(r.received[0]!.headers['x-xcron-attempt']).toBe('3');
  });

  it('408 is retried', async () => {
    const r = await receiver((_req, res, n) => {
      res.statusCode = n === 1 ? 408 : 204;
      res.end();
    });
    const result = await makeDelivery().deliver(job(r.url));
    expect(result).toMatchObject({ ok: true, status: 204, attempts: 2 });
  });

  it('429 with Retry-After: the next attempt waits at least that long (receiver clock)', async () => {
    const r = await receiver((_req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
      } else {
        res.end('ok');
      }
    });
    // backoff alone would retry at once (random = 0): only Retry-After can delay it
    const result = await makeDelivery().deliver(job(r.url, { retry: { max_attempts: 3, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result).toMatchObject({ ok: true, attempts: 2 });
    expect(r.received).toHaveLength(2);
    const gap = r.received[1]!.at - r.received[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(900); // one-sided, loose: Retry-After is 1 s
  });

  it('404 is final after one attempt', async () => {
    const r = await receiver((_req, res) => {
      res.statusCode = 404;
      res.end('no such hook');
    });
    const result = await makeDelivery().deliver(job(r.url, { retry: { max_attempts: 5, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result).toMatchObject({ ok: false, status: 404, error: 'HTTP 404', body: 'no such hook', attempts: 1, aborted: false });
    expect(r.received).toHaveLength(1);
  });

  it('302 is not followed and is final', async () => {
    const r = await receiver((req, res) => {
      if (req.url === '/hook') {
        res.writeHead(302, { location: '/elsewhere' });
        res.end();
      } else {
        res.end('followed');
      }
    });
    const result = await makeDelivery().deliver(job(r.url, { retry: { max_attempts: 5, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result.ok).toBe(false);
    expect(result.status).toBe(302);
    expect(result.attempts).toBe(1);
    expect(result.error).toMatch(/redirect/);
    expect(r.received.map((x) => x.url)).toEqual(['/hook']);
  });

  it('timeout_ms produces a retryable timeout error', async () => {
    // never answers
    const r = await receiver(() => undefined);
    const d = makeDelivery();
    const outcome = await d.attempt(job(r.url, { timeout_ms: 150 }), 1);
    expect(outcome.ok).toBe(false);
    expect(outcome.retryable).toBe(true);
    expect(outcome.status).toBeNull();
    expect(outcome.error).toBe('timeout after 150 ms');
    expect(outcome.timed_out).toBe(true);

    const result = await d.deliver(job(r.url, { timeout_ms: 150, retry: { max_attempts: 2, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result).toMatchObject({ ok: false, status: null, error: 'timeout after 150 ms', attempts: 2, aborted: false });
    await r.waitFor(3);
    expect(r.received).toHaveLength(3);
  });

  it('a connection error is retryable and reported', async () => {
    const r = await receiver((_req, res) => res.end());
    const url = r.url;
    await r.close();
    const result = await makeDelivery().deliver(job(url, { retry: { max_attempts: 2, backoff_ms: 0, max_backoff_ms: 0 } }));
    expect(result.ok).toBe(false);
    expect(result.attempts).toBe(2);
    expect(result.error).toMatch(/ECONNREFUSED/);
  });

  it('a huge response is cut and the run still succeeds', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let wrote = 0;
    const r = await receiver((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // ~8 MiB, far over the 16 KiB cap; stop quietly if the client hangs up
      const pump = (): void => {
        while (wrote < 8 * 1024 * 1024) {
          wrote += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
    });
    const result = await makeDelivery({ maxResponseBytes: 16 * 1024, keepResponseBytes: 100 }).deliver(job(r.url));
    expect(result).toMatchObject({ ok: true, status: 200, attempts: 1 });
    expect(result.body).toBe('a'.repeat(100));
  });

  it('per-origin cap: a receiver that never answers does not block deliveries to another', async () => {
    const hung = await receiver(() => undefined); // holds every request until the test ends
    const fine = await receiver((_req, res) => res.end('ok'));
    const d = makeDelivery({ perOriginConcurrency: 2, globalConcurrency: 4 });
    const slowJob = (i: number) => job(hung.url, { run_id: `slow:${i}`, timeout_ms: 120_000, retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 } });
    for (let i = 0; i < 4; i++) floating.push(d.deliver(slowJob(i)));
    await hung.waitFor(2); // the hung origin's two slots are taken

    const results = await Promise.all([0, 1, 2, 3, 4].map((i) => d.deliver(job(fine.url, { run_id: `fast:${i}` }))));
    expect(results.every((x) => x.ok)).toBe(true);
    await fine.waitFor(5);
    expect(fine.received).toHaveLength(5);
    // and the cap held: the other two slow requests are still waiting for their origin's slot
    expect(hung.received).toHaveLength(2);
    expect(d.inFlight()).toBe(4);
    // backlog(): the two slow ones waiting for their origin's slot
    expect(d.backlog()).toBe(2);
  });

  it('drain cuts a retry sleep short and reports the run as aborted (left for redelivery)', async () => {
    const r = await receiver((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const d = makeDelivery({ random: () => 0.5 }); // backoff = 30 min
    const p = d.deliver(job(r.url, { retry: { max_attempts: 5, backoff_ms: 3_600_000, max_backoff_ms: 3_600_000 } }));
    floating.push(p);
    await r.waitFor(1);
    expect(d.inFlight()).toBe(1);
    const drained = await d.drain(30_000);
    const result = await p;
    expect(drained).toBe(true);
    expect(result.aborted).toBe(true);
    expect(result.ok).toBe(false);
    expect(r.received).toHaveLength(1);
  });
});
