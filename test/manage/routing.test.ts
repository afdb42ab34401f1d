/**
 * Issue 4 §5: several targets (callback.urls) with a routing strategy, against real receivers.
 * Manual runs (triggerTask) drive the fires so each test waits on exactly the runs it made.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rendezvous } from '../../src/cluster/index.js';
import { freePort } from '../helpers/ports.js';
import { header, Receiver, type ReceivedRequest } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { Harness, type RunView } from './harness.js';

const fire = (r: ReceivedRequest): string => header(r, 'x-xcron-fire-id') ?? '';

let h: Harness;
let rx: Receiver;
beforeEach(async () => {
  rx = await Receiver.start();
  h = await Harness.start();
});
afterEach(async () => {
  await rx.close();
  await h.close();
});

async function finalRun(taskId: string, runId: string): Promise<RunView> {
  const runs = await waitUntil(
    () => h.runs(taskId),
    (rs) => rs.some((r) => r.run_id === runId && (r.status === 'SUCCESS' || r.status === 'FAIL')),
    20_000,
    `run ${runId} to finish`,
  );
  return runs.find((r) => r.run_id === runId)!;
}

/** Triggers a task n times, one after the other (each run finished before the next). */
async function triggerSeq(id: string, n: number): Promise<RunView[]> {
  const out: RunView[] = [];
  for (let i = 0; i < n; i++) out.push(await finalRun(id, (await h.trigger(id)).run_id));
  return out;
}

describe('routing', () => {
  it('failover: a closed port and a 500 are skipped, the next target receives; the run is SUCCESS', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/gone`;
    rx.on('/err', { status: 500 });
    const urls = [closed, rx.url('/err'), rx.url('/ok'), rx.url('/never')];
    const id = await h.create({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }, callback: { urls, route: 'failover' } });
    const t = await h.trigger(id);
    const run = await finalRun(id, t.run_id);
    expect(run).toMatchObject({ status: 'SUCCESS', http_status: 200, error: null });
    expect(rx.to('/err').map(fire)).toEqual([t.run_id]);
    expect(rx.to('/ok').map(fire)).toEqual([t.run_id]);
    expect(rx.to('/never')).toHaveLength(0);
  });

  it('failover with every target failing: FAIL naming each target', async () => {
    rx.on('/e1', { status: 500 });
    rx.on('/e2', { status: 503 });
    const id = await h.create({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }, callback: { urls: [rx.url('/e1'), rx.url('/e2')] } });
    expect((await h.query(id)).callback).toMatchObject({ route: 'failover' }); // the default route
    const run = await finalRun(id, (await h.trigger(id)).run_id);
    expect(run.status).toBe('FAIL');
    expect(run.error).toMatch(/^all 2 targets failed: .*\/e1: HTTP 500; .*\/e2: HTTP 503$/);
  });

  it('round_robin alternates the targets across runs', async () => {
    const id = await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls: [rx.url('/a'), rx.url('/b')], route: 'round_robin' } });
    await triggerSeq(id, 4);
    expect(rx.requests.map((r) => r.path)).toEqual(['/a', '/b', '/a', '/b']);
  });

  it('random only hits the listed targets, one per run', async () => {
    const id = await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls: [rx.url('/r1'), rx.url('/r2'), rx.url('/r3')], route: 'random' } });
    const runs = await triggerSeq(id, 12);
    expect(runs.every((r) => r.status === 'SUCCESS')).toBe(true);
    expect(rx.requests).toHaveLength(12);
    for (const r of rx.requests) expect(['/r1', '/r2', '/r3']).toContain(r.path);
    expect(new Set(rx.requests.map(fire)).size).toBe(12);
  });

  it('consistent_hash always picks the same target for the same task', async () => {
    const urls = [rx.url('/h1'), rx.url('/h2'), rx.url('/h3'), rx.url('/h4')];
    const ids = [
      await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls, route: 'consistent_hash' } }),
      await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls, route: 'consistent_hash' } }),
      await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls, route: 'consistent_hash' } }),
    ];
    for (const id of ids) {
      await triggerSeq(id, 4);
      const paths = new Set(rx.forTask(id).map((r) => r.path));
      expect(paths.size).toBe(1);
      expect(rx.url([...paths][0]!)).toBe(rendezvous(id, urls));
      expect(rx.forTask(id)).toHaveLength(4);
    }
  });

  it('broadcast reaches every target with X-Xcron-Shard-Index/Total and the same fire id; the record shows each shard', async () => {
    const urls = [rx.url('/s0'), rx.url('/s1'), rx.url('/s2')];
    const id = await h.create({ type: 1, format: '0 0 1 1 *', callback: { urls, route: 'broadcast', body: { job: 'reindex' } } });
    const t = await h.trigger(id);
    const run = await finalRun(id, t.run_id);
    expect(run.status).toBe('SUCCESS');
    for (let i = 0; i < 3; i++) {
      const got = rx.to(`/s${i}`);
      expect(got).toHaveLength(1);
      expect(header(got[0]!, 'x-xcron-shard-index')).toBe(String(i));
      expect(header(got[0]!, 'x-xcron-shard-total')).toBe('3');
      expect(fire(got[0]!)).toBe(t.run_id);
      expect(JSON.parse(got[0]!.body)).toEqual({ job: 'reindex' });
    }
    expect(run.shards).toEqual(urls.map((url, index) => ({ index, url, ok: true, attempts: 1, http_status: 200, error: null })));
  });

  it('broadcast with one failing shard is FAIL and its record shows which shard failed', async () => {
    rx.on('/s1', { status: 404 });
    const urls = [rx.url('/s0'), rx.url('/s1'), rx.url('/s2')];
    const id = await h.create({ type: 1, format: '0 0 1 1 *', retry: { max_attempts: 1, backoff_ms: 0, max_backoff_ms: 0 }, callback: { urls, route: 'broadcast' } });
    const run = await finalRun(id, (await h.trigger(id)).run_id);
    expect(run.status).toBe('FAIL');
    expect(run.http_status).toBe(404);
    expect(run.error).toMatch(/^1 of 3 shards failed: #1 HTTP 404$/);
    expect(run.shards!.map((s) => [s.index, s.ok, s.http_status])).toEqual([
      [0, true, 200],
      [1, false, 404],
      [2, true, 200],
    ]);
    expect(run.shards![1]!.error).toBe('HTTP 404');
    expect(rx.requests).toHaveLength(3);
    expect((await h.query(id)).last_status).toBe('FAIL');
  });

  it('broadcast on a periodic tick: every shard gets the tick', async () => {
    const urls = [rx.url('/p0'), rx.url('/p1')];
    const id = await h.create({ type: 1, format: '* * * * * *', callback: { urls, route: 'broadcast' } });
    const both = (rs: readonly ReceivedRequest[]): string | undefined => {
      const f0 = new Set(rs.filter((r) => r.path === '/p0').map(fire));
      return rs.filter((r) => r.path === '/p1').map(fire).find((f) => f0.has(f));
    };
    const all = await rx.waitFor((rs) => both(rs) !== undefined, 10_000, 'one tick seen by both shards');
    const f = both(all)!;
    expect(f).toMatch(new RegExp(`^${id}:\\d+$`));
    const shards = all.filter((r) => fire(r) === f).map((r) => [r.path, header(r, 'x-xcron-shard-index'), header(r, 'x-xcron-shard-total')]);
    expect(shards.sort()).toEqual([
      ['/p0', '0', '2'],
      ['/p1', '1', '2'],
    ]);
  });
});
