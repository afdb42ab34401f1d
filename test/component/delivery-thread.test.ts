/**
 * ThreadedDelivery: callbacks sent from a worker thread (the server's default). Against a real
 * node:http receiver: results, attempt hooks and the metrics observer cross the thread boundary;
 * retries, the SSRF guard and signing run in the thread; drain cuts retry sleeps short; a dead
 * thread is replaced and its unfinished deliveries are sent again with the same fire id.
 * The worker script is the compiled one in dist/ (bash build.sh), the file the server runs.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AttemptEvent, DeliveryJob } from '../../src/delivery/index.js';
import { ThreadedDelivery } from '../../src/delivery/threaded.js';
import { silentLog as log } from './fixtures.js';

const WORKER = new URL('../../dist/src/delivery/worker.js', import.meta.url);

beforeAll(() => {
  if (!existsSync(fileURLToPath(WORKER))) throw new Error('dist/src/delivery/worker.js is missing: run bash build.sh first');
});

interface Hit {
  headers: IncomingHttpHeaders;
  body: string;
}

const servers: Server[] = [];
const deliveries: ThreadedDelivery[] = [];
afterEach(async () => {
  for (const d of deliveries.splice(0)) await d.close();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** A receiver whose answer per request is chosen by `answer(n)` (n = 1-based request count). */
async function receiver(answer: (n: number) => number | 'hang'): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hits.push({ headers: req.headers, body });
      const a = answer(hits.length);
      if (a === 'hang') return;
      res.writeHead(a, { 'content-type': 'text/plain' }).end(`answer ${a}`);
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/cb`, hits };
}

function make(over: Partial<ConstructorParameters<typeof ThreadedDelivery>[0]> = {}): { d: ThreadedDelivery; attempts: AttemptEvent[] } {
  const attempts: AttemptEvent[] = [];
  const d = new ThreadedDelivery({
    userAgent: 'xcron-test',
    globalConcurrency: 64,
    perOriginConcurrency: 16,
    maxResponseBytes: 65_536,
    signingSecrets: [],
    logLevel: 'silent',
    nodeId: 'test',
    log,
    onAttempt: (e) => attempts.push(e),
    workerUrl: WORKER,
    ...over,
  });
  deliveries.push(d);
  return { d, attempts };
}

const job = (url: string, i: number, over: Partial<DeliveryJob> = {}): DeliveryJob => ({
  run_id: `task${i}:${1_800_000_000_000 + i}`,
  task_id: `task${i}`,
  scheduled_time: 1_800_000_000_000 + i,
  url,
  method: 'POST',
  headers: { 'x-custom': 'yes' },
  body: JSON.stringify({ i }),
  timeout_ms: 5000,
  retry: { max_attempts: 3, backoff_ms: 10, max_backoff_ms: 20 },
  first_attempt: 1,
  ...over,
});

describe('ThreadedDelivery', () => {
  it('delivers a batch from the thread: bodies, headers, results and the response body', async () => {
    const r = await receiver(() => 200);
    const { d, attempts } = make();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => d.deliver(job(r.url, i))));
    expect(results.every((x) => x.ok && x.status === 200 && x.attempts === 1 && !x.aborted)).toBe(true);
    expect(results[0]!.body).toBe('answer 200');
    expect(r.hits).toHaveLength(200);
    const ids = new Set(r.hits.map((h) => h.headers['x-xcron-fire-id']));
    expect(ids.size).toBe(200);
    const h = r.hits.find((x) => x.headers['x-xcron-fire-id'] === 'task7:1800000000007')!;
    expect(h.body).toBe('{"i":7}');
    expect(h.headers['x-custom']).toBe('yes');
    expect(h.headers['user-agent']).toBe('xcron-test');
    expect(h.headers['x-xcron-scheduled-time']).toBe('1800000000007');
    // The metrics observer saw each attempt, with the job it belongs to and without the body.
    expect(attempts).toHaveLength(200);
    expect(attempts.every((a) => a.outcome.ok && a.outcome.body === null && a.attempt === 1)).toBe(true);
    expect(new Set(attempts.map((a) => a.job.run_id)).size).toBe(200);
    expect(d.inFlight()).toBe(0);
  });

  it('retries in the thread; attempt starts reach the hook, except a last one that ended first (its result carries it)', async () => {
    const r = await receiver((n) => (n < 3 ? 503 : 200));
    // A start delay no exchange here lasts (a loaded machine may stretch one past the default 20 ms).
    const { d, attempts } = make({ startDelayMs: 60_000 });
    const starts: number[] = [];
    const res = await d.deliver(job(r.url, 1), { onAttempt: (n) => starts.push(n) });
    expect(res.ok).toBe(true);
    expect(res.attempts).toBe(3);
    // starts 1 and 2 are sent when their retry begins; the third answered before its start was due
    expect(starts).toEqual([1, 2]);
    expect(attempts.map((a) => [a.attempt, a.outcome.status])).toEqual([
      [1, 503],
      [2, 503],
      [3, 200],
    ]);
    expect(r.hits.map((h) => h.headers['x-xcron-attempt'])).toEqual(['1', '2', '3']);
  });

  it('cancelWaiting gives back the matching deliveries still waiting on the main thread; those in the worker go on', async () => {
    // The first 16 requests (the lane's window: 2 x per-origin 4, at least 16) hang until their
    // timeout; the rest are answered at once.
    const r = await receiver((n) => (n <= 16 ? 'hang' : 200));
    const { d } = make({ perOriginConcurrency: 4 });
    const jobs = Array.from({ length: 40 }, (_, i) => job(r.url, i, { timeout_ms: 400, retry: { max_attempts: 1, backoff_ms: 10, max_backoff_ms: 20 } }));
    const results = jobs.map((j) => d.deliver(j));
    // the first 16 were handed to the worker at once (the lane's window); the rest wait here
    const odd = (j: DeliveryJob): boolean => Number(j.task_id.slice(4)) % 2 === 1;
    // backlog(): the 24 waiting on this thread for room in the worker
    expect(d.backlog()).toBe(24);
    const given = d.cancelWaiting(odd);
    // jobs 16..39 were waiting: their 12 odd ones are given back
    expect(given).toBe(12);
    expect(d.backlog()).toBe(12);
    const out = await Promise.all(results);
    expect(d.backlog()).toBe(0);
    for (let i = 0; i < 40; i++) {
      const x = out[i]!;
      if (i < 16) expect(x, `job ${i}`).toMatchObject({ ok: false, aborted: false, attempts: 1 }); // timed out in the worker
      else if (i % 2 === 1) expect(x, `job ${i}`).toMatchObject({ ok: false, aborted: true, attempts: 0 });
      else expect(x, `job ${i}`).toMatchObject({ ok: true, status: 200, attempts: 1 });
    }
    const sent = new Set(r.hits.map((h) => h.headers['x-xcron-fire-id']));
    for (let i = 17; i < 40; i += 2) expect(sent.has(jobs[i]!.run_id), `job ${i} never sent`).toBe(false);
    expect(sent.size).toBe(16 + 12);
    expect(d.inFlight()).toBe(0);
  });

  it('with startDelayMs 0 (cluster nodes), every attempt start is reported, fast ones too', async () => {
    const r = await receiver((n) => (n < 2 ? 503 : 200));
    const { d } = make({ startDelayMs: 0 });
    const starts: number[] = [];
    const res = await d.deliver(job(r.url, 1), { onAttempt: (n) => starts.push(n) });
    expect(res).toMatchObject({ ok: true, attempts: 2 });
    expect(starts).toEqual([1, 2]);
  });

  it('a callback still in flight reports its attempt start through the hook', async () => {
    const r = await receiver(() => 'hang');
    const { d } = make();
    const started = new Promise<number>((resolve) => {
      void d.deliver(job(r.url, 1), { onAttempt: resolve });
    });
    expect(await started).toBe(1);
    expect(r.hits).toHaveLength(1);
  });

  it('enforces the SSRF guard in the thread (a refused destination is a final failure)', async () => {
    const r = await receiver(() => 200);
    const { d } = make({ destinations: { denyCidrs: ['127.0.0.0/8'], allowLoopback: false } });
    const res = await d.deliver(job(r.url, 1));
    expect(res.ok).toBe(false);
    expect(res.attempts).toBe(1);
    expect(res.error).toMatch(/refused|not allowed|denied/i);
    expect(r.hits).toHaveLength(0);
  });

  it('signs callbacks in the thread', async () => {
    const r = await receiver(() => 200);
    const { d } = make({ signingSecrets: ['0123456789abcdef0123456789abcdef'] });
    expect((await d.deliver(job(r.url, 1))).ok).toBe(true);
    expect(r.hits[0]!.headers['x-xcron-signature']).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  });

  it('drain cuts retry sleeps short: the delivery ends unfinished (aborted) and drain resolves', async () => {
    const r = await receiver(() => 500);
    const { d } = make();
    const p = d.deliver(job(r.url, 1, { retry: { max_attempts: 5, backoff_ms: 600_000, max_backoff_ms: 600_000 } }));
    while (r.hits.length === 0) await new Promise((res) => setTimeout(res, 10));
    const drained = await d.drain(30_000);
    const res = await p;
    expect(drained).toBe(true);
    expect(res.aborted).toBe(true);
    expect(d.inFlight()).toBe(0);
  });

  it('replaces a dead thread and sends its unfinished deliveries again, same fire id', async () => {
    let hang = true;
    const r = await receiver(() => (hang ? 'hang' : 200));
    const { d } = make();
    const p = d.deliver(job(r.url, 42));
    while (r.hits.length === 0) await new Promise((res) => setTimeout(res, 10));
    hang = false;
    await (d as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const res = await p;
    expect(res.ok).toBe(true);
    expect(d.restartCount()).toBe(1);
    expect(r.hits.length).toBe(2);
    expect(r.hits.map((h) => h.headers['x-xcron-fire-id'])).toEqual(['task42:1800000000042', 'task42:1800000000042']);
  });

  it('close resolves unfinished deliveries as aborted (left for redelivery)', async () => {
    const r = await receiver(() => 'hang');
    const { d } = make();
    const p = d.deliver(job(r.url, 1));
    while (r.hits.length === 0) await new Promise((res) => setTimeout(res, 10));
    deliveries.splice(deliveries.indexOf(d), 1);
    await d.close();
    const res = await p;
    expect(res.aborted).toBe(true);
    expect(res.ok).toBe(false);
  });
});
