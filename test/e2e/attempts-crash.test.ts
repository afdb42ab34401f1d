/**
 * Attempt numbers continue across kill -9 (standalone, the real built server on a real SQLite file):
 * a redelivery from the outbox after a restart carries the number after every attempt that may
 * have reached the receiver, and the run record counts them (issue 27 item 2, issue 23 item 9).
 *
 * The kills come while callbacks hang at the receiver and before their start could be recorded
 * (a standalone node records an attempt start only after a callback is a second old): before the
 * fix, every redelivery said attempt 1 again.
 */
import { describe, expect, it } from 'vitest';
import { runById } from '../helpers/db.js';
import { header, type ReceivedRequest } from '../helpers/receiver.js';
import { XcronServer } from '../helpers/server.js';
import { receiverPerTest } from '../helpers/suites.js';
import { waitUntil } from '../helpers/wait.js';

const WAIT = 30_000;
const fireIdOf = (r: ReceivedRequest): string => header(r, 'x-xcron-fire-id') ?? '';
const attemptOf = (r: ReceivedRequest): number => Number(header(r, 'x-xcron-attempt'));

const fx = receiverPerTest();

describe('kill -9: attempt numbers continue after the restart', () => {
  it('fires sent just before the kill go out again with attempt 2, and their runs record 2 attempts', async () => {
    fx.receiver.on('/burst', { hang: true });
    const srv = await XcronServer.start({ env: { XCRON_DELIVERY_TIMEOUT_MS: '120000' } });
    const due = Date.now() + 6000;
    const ids = (await Promise.all(Array.from({ length: 30 }, (_, i) => srv.client.mustCreate({ type: 2, format: String(due), callback: { url: fx.receiver.url('/burst'), body: { i } } })))).map((t) => t.task_id);
    // Killed as soon as every callback reached the receiver (well inside the second a start waits).
    await fx.receiver.waitFor(() => new Set(fx.receiver.to('/burst').map(fireIdOf)).size === ids.length, WAIT, 'every callback of the burst');
    srv.kill('SIGKILL');
    await srv.waitExit();
    const before = fx.receiver.to('/burst').length;
    expect(fx.receiver.to('/burst').every((r) => attemptOf(r) === 1)).toBe(true);

    fx.receiver.on('/burst', { status: 200 });
    const srv2 = await srv.restart();
    const again = (): ReceivedRequest[] => fx.receiver.to('/burst').slice(before);
    await fx.receiver.waitFor(() => new Set(again().map(fireIdOf)).size === ids.length, WAIT, 'every fire redelivered');
    for (const r of again()) expect(attemptOf(r), fireIdOf(r)).toBe(2);
    for (const id of ids) {
      const fire = `${id}:${due}`;
      await waitUntil(() => runById(srv2.dbFile, fire), (r) => r?.status === 'SUCCESS', WAIT, `run ${fire} SUCCESS`);
      expect(runById(srv2.dbFile, fire)).toMatchObject({ status: 'SUCCESS', attempts: 2 });
    }
  });

  it('a retry sent just before the kill is counted: the redelivery says attempt 3', async () => {
    // Attempt 1 is refused with Retry-After 1 s; attempt 2 hangs until the kill.
    fx.receiver.on('/retry', (_req, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : { hang: true }));
    const srv = await XcronServer.start({ env: { XCRON_DELIVERY_TIMEOUT_MS: '120000' } });
    const due = Date.now() + 3000;
    const { task_id: id } = await srv.client.mustCreate({ type: 2, format: String(due), retry: { max_attempts: 5, backoff_ms: 100, max_backoff_ms: 100 }, callback: { url: fx.receiver.url('/retry') } });
    const fire = `${id}:${due}`;
    await fx.receiver.waitFor(() => fx.receiver.to('/retry').length === 2, WAIT, 'attempt 2');
    srv.kill('SIGKILL');
    await srv.waitExit();
    expect(fx.receiver.to('/retry').map(attemptOf)).toEqual([1, 2]);

    fx.receiver.on('/retry', { status: 200 });
    const srv2 = await srv.restart();
    await fx.receiver.waitFor(() => fx.receiver.to('/retry').length >= 3, WAIT, 'the redelivery');
    const third = fx.receiver.to('/retry')[2]!;
    expect(fireIdOf(third)).toBe(fire);
    expect(attemptOf(third)).toBe(3);
    await waitUntil(() => runById(srv2.dbFile, fire), (r) => r?.status === 'SUCCESS', WAIT, 'the run SUCCESS');
    expect(runById(srv2.dbFile, fire)).toMatchObject({ status: 'SUCCESS', attempts: 3 });
  });
});
