/**
 * The dashboard's Executors page in headless Chromium against the real built server: two
 * registered instances of a group (one that expires) are listed with their state, last heartbeat
 * and meta; the page has no serious accessibility violation and no page error.
 */
import { describe, expect, it } from 'vitest';
import { axeSerious, shot } from '../helpers/browser.js';
import { browserSuite } from '../helpers/browser-suite.js';
import { XcronServer } from '../helpers/server.js';
import { executors, register } from '../executors/common.js';
import { waitUntil } from '../helpers/wait.js';

const suite = browserSuite();

describe('dashboard: Executors page', () => {
  it('lists groups and instances with live state, last heartbeat and meta', async () => {
    const srv = await XcronServer.start();
    await register(srv, 'billing', 'http://10.1.2.3:9001/run', 60_000, { version: '1.4' });
    await register(srv, 'billing', 'http://10.1.2.4:9001/run', 1_000);
    await waitUntil(() => executors(srv), (r) => r.body.data.groups[0]?.live === 1, 15_000, 'the short-lived instance to expire');
    const t = await suite.open();
    await t.page.goto(`${srv.baseUrl}/ui#/`);
    await t.page.click('header nav a[data-nav="executors"]');
    await t.page.waitForSelector('section.executor-group[data-group="billing"]');
    expect(await t.page.textContent('[data-testid="executors-live"]')).toBe('1');
    const live = t.page.locator('tr[data-address="http://10.1.2.3:9001/run"]');
    expect(await live.locator('td').nth(1).textContent()).toBe('live');
    expect(await live.locator('td').nth(5).textContent()).toBe('{"version":"1.4"}');
    expect(await t.page.locator('tr[data-address="http://10.1.2.4:9001/run"] td').nth(1).textContent()).toBe('expired');
    expect(await axeSerious(t.page)).toEqual([]);
    await shot(t.page, 'executors');
    expect(t.errors).toEqual([]);
  }, 120_000);
});
