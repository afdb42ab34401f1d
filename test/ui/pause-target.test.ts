/**
 * In real headless Chromium (1440x900) against the real built server: a pause note typed
 * on the task page is stored and shown there and in the list until the task is resumed; an
 * auto-paused task shows its reason with an "auto-paused" badge; and the edit form of a task with a
 * queue target (callback.target + key, on a real redis-server stream target) keeps the target when
 * another field is saved, and saves a changed key.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { browserSuite } from '../helpers/browser-suite.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { XcronServer } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';
import { startWithConfig } from '../targets/common.js';

const WAIT = 30_000;
const suite = browserSuite();
afterAll(() => stopAllRedis());
const open = () => suite.open();

describe('pause notes and reasons in the dashboard', () => {
  it('a note typed with Pause is shown on the task page and in the list, and goes on resume; an auto-pause shows its reason', async () => {
    const srv = await XcronServer.start();
    const { task_id: id } = await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'noted-task', callback: { url: suite.receiver.url('/ok') } });
    const { page } = await open();
    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.waitForSelector('#task-actions #pause-note');
    await page.fill('#pause-note', 'vendor outage, OPS-7');
    await page.click('#task-actions button[data-action="pause"]');
    await page.waitForSelector('#task-state .badge.paused');
    await page.waitForSelector('#pause-reason:has-text("vendor outage, OPS-7")');
    expect(await srv.client.mustQuery(id)).toMatchObject({ state: 'paused', pause: { kind: 'manual', note: 'vendor outage, OPS-7', by: null } });

    await page.goto(`${srv.baseUrl}/ui#/tasks`);
    await page.waitForSelector(`#tasks-table tr[data-task-id="${id}"] .pause-note`);
    expect(await page.textContent(`#tasks-table tr[data-task-id="${id}"] .pause-note`)).toBe('paused: vendor outage, OPS-7');

    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.click('#task-actions button[data-action="resume"]');
    await page.waitForSelector('#task-state .badge.active');
    await expect.poll(() => page.locator('#pause-reason').count(), { timeout: WAIT }).toBe(0);
    expect((await srv.client.mustQuery(id)).pause).toBeUndefined();

    // The auto-pause: its reason, with the badge.
    suite.receiver.on('/down', { status: 500 });
    const { task_id: flaky } = await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'flaky-task', max_consecutive_failures: 1, retry: { max_attempts: 1 }, callback: { url: suite.receiver.url('/down') } });
    expect((await srv.client.call('POST', '/xcron/triggerTask', { json: { task_id: flaky } })).body.code).toBe(0);
    await waitUntil(() => srv.client.mustQuery(flaky), (t) => t.state === 'paused', WAIT, 'the auto-pause');
    await page.goto(`${srv.baseUrl}/ui#/task/${flaky}`);
    await page.waitForSelector('#pause-reason .badge.auto');
    expect(await page.textContent('#pause-text')).toMatch(/^auto-paused after 1 consecutive failure: .*500/);
    await page.goto(`${srv.baseUrl}/ui#/tasks`);
    await page.waitForSelector(`#tasks-table tr[data-task-id="${flaky}"] .badge.auto`);
  }, 120_000);
});

describe('the edit form and queue targets', () => {
  it('saving another field keeps callback.target and key; a changed key is saved', async () => {
    const redis = await RedisServer.start();
    const srv = await startWithConfig(`[targets.orders]\nkind = "redis_stream"\nurl = "${redis.url}"\nstream = "orders"\n`);
    const { task_id: id } = await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'queued', callback: { target: 'orders', key: 'orders-eu', body: { n: 1 } } });
    const { page } = await open();
    await page.goto(`${srv.baseUrl}/ui#/edit/${id}`);
    await page.waitForSelector('#task-form');
    expect(await page.inputValue('#f-target')).toBe('orders');
    expect(await page.inputValue('#f-key')).toBe('orders-eu');
    expect(await page.inputValue('#f-url')).toBe('');
    await page.fill('#f-name', 'queued-renamed');
    await page.click('#f-submit');
    await page.waitForURL(new RegExp(`#/task/${id}$`));
    await page.waitForSelector('#task-callback:has-text("queue target orders (key orders-eu)")');
    expect(await srv.client.mustQuery(id)).toMatchObject({ name: 'queued-renamed', callback: { target: 'orders', key: 'orders-eu', body: { n: 1 } } });

    await page.goto(`${srv.baseUrl}/ui#/edit/${id}`);
    await page.waitForSelector('#task-form');
    await page.fill('#f-key', 'orders-us');
    await page.click('#f-submit');
    await page.waitForURL(new RegExp(`#/task/${id}$`));
    await expect.poll(async () => (await srv.client.mustQuery(id)).callback, { timeout: WAIT }).toEqual({ target: 'orders', key: 'orders-us', body: { n: 1 } });
  }, 120_000);
});
