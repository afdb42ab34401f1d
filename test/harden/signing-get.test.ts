/**
 * Issue 23 item 2: a GET callback carries no body, so its signature must be over the empty body;
 * the documented verifier (the snippet of the docs' "Signed callbacks" section, copied verbatim
 * below) must accept every signed callback, GET included, and reject a tampered one.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { Delivery, type DeliveryJob } from '../../src/delivery/index.js';
import type { HttpMethod } from '../../src/task/index.js';

// The documented verifier (docs: callbacks / security, "Signed callbacks"), unchanged.
function verifyXcron(secret: string, header: unknown, rawBody: Buffer, toleranceSec = 300): boolean {
  const parts = String(header ?? '').split(',').map((p) => p.trim());
  const t = Number(parts.find((p) => p.startsWith('t='))?.slice(2));
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSec) return false;
  const want = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  return parts.filter((p) => p.startsWith('v1=')).some((p) => {
    const got = Buffer.from(p.slice(3), 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

const SECRET = '0123456789abcdef-current';
const servers: Server[] = [];
const deliveries: Delivery[] = [];

afterEach(async () => {
  for (const d of deliveries.splice(0)) await d.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

interface Got {
  method: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

async function receiver(): Promise<{ url: string; got: Got[] }> {
  const got: Got[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ method: req.method ?? '', headers: req.headers, raw: Buffer.concat(chunks) });
      res.end();
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

function delivery(): Delivery {
  const d = new Delivery({
    clock: new SystemClock(),
    log: pino({ level: 'silent' }),
    userAgent: 'xcron/test',
    globalConcurrency: 4,
    perOriginConcurrency: 4,
    maxResponseBytes: 65_536,
    signingSecrets: [SECRET],
    random: () => 0,
  });
  deliveries.push(d);
  return d;
}

function job(url: string, method: HttpMethod): DeliveryJob {
  return {
    run_id: 't1:1767225600000',
    task_id: 't1',
    scheduled_time: 1767225600000,
    url,
    method,
    headers: null,
    body: '{"order":12345678901234567890,"note":"a body that a GET never sends"}',
    timeout_ms: 10_000,
    retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 },
    first_attempt: 1,
  };
}

describe('signed callbacks verify with the documented verifier, whatever the method', () => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const) {
    it(`${method}`, async () => {
      const r = await receiver();
      const res = await delivery().deliver(job(r.url, method));
      expect(res.ok).toBe(true);
      const g = r.got[0]!;
      expect(g.method).toBe(method);
      if (method === 'GET') expect(g.raw.length).toBe(0);
      else expect(g.raw.toString('utf8')).toBe(job(r.url, method).body);
      expect(verifyXcron(SECRET, g.headers['x-xcron-signature'], g.raw)).toBe(true);
      // and the verifier is not a rubber stamp: other bytes or another secret fail
      expect(verifyXcron(SECRET, g.headers['x-xcron-signature'], Buffer.concat([g.raw, Buffer.from(' ')]))).toBe(false);
      expect(verifyXcron(`${SECRET}-other`, g.headers['x-xcron-signature'], g.raw)).toBe(false);
    });
  }
});
