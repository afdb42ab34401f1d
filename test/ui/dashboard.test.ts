/**
 * The web dashboard end to end: the real built server (./xcron_server), a real HTTP receiver, and
 * real headless Chromium (Debian's `chromium` package) driven by playwright-core. Through the
 * browser only, it creates a task, sees it fire (SUCCESS rows, run count), pauses, triggers,
 * resumes, edits and deletes it, and checks the list filters, the cluster view and the charts; with
 * auth on it signs in with a token. Every wait is on the DOM or on a request reaching the
 * receiver, with generous timeouts. Screenshots go to test-results/ui/ (kept as CI artifacts).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { Receiver, header } from '../helpers/receiver.js';
import { REPO_ROOT, XcronServer, cleanupTempDirs, ensureBuilt, stopAllServers, takeStarted, tempDir } from '../helpers/server.js';
import { waitUntil } from '../helpers/wait.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SHOTS = join(REPO_ROOT, 'test-results', 'ui');
const WAIT = 30_000;

/**
 * Auth comes with the `[auth]` config section (XCRON_AUTH_TOKENS) and the middleware in
 * src/api/auth.ts; a build without them cannot run the signed-in test (it is skipped, not faked).
 */
const authAvailable = 'auth' in (configSchema.parse({}) as Record<string, unknown>) && existsSync(join(REPO_ROOT, 'src/api/auth.ts'));

let receiver: Receiver;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  // No silent skip: the dashboard test needs the browser (.ci/run installs it).
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  ensureBuilt();
  mkdirSync(SHOTS, { recursive: true });
  receiver = await Receiver.start();
}, 600_000);

afterEach(async (ctx) => {
  const servers = takeStarted();
  if (ctx.task.result?.state === 'fail') {
    for (const c of contexts) {
      for (const [i, p] of c.pages().entries()) await p.screenshot({ path: join(SHOTS, `failure-${ctx.task.name.replace(/\W+/g, '-')}-${i}.png`), fullPage: true }).catch(() => undefined);
    }
    for (const s of servers) console.log(s.tail());
  }
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  await stopAllServers();
});

afterAll(async () => {
  await receiver?.close();
  cleanupTempDirs();
});

interface Browser {
  page: Page;
  /** Uncaught errors in the page. */
  errors: string[];
  /** Every request the page made to the JSON API. */
  apiRequests: Request[];
}

/** A fresh headless Chromium (new profile dir) with one 1280x800 page. */
async function openBrowser(): Promise<Browser> {
  const ctx = await chromium.launchPersistentContext(tempDir('xcron-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    timeout: 60_000,
  });
  contexts.push(ctx);
  ctx.setDefaultTimeout(WAIT);
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const errors: string[] = [];
  const apiRequests: Request[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/xcron/')) apiRequests.push(r);
  });
  return { page, errors, apiRequests };
}

const taskIdFromUrl = (url: string): string => decodeURIComponent(/#\/task\/([^?]+)/.exec(url)?.[1] ?? '');

/** The number in an element, once it satisfies `pred` (the page refreshes it by itself). */
async function waitNumber(page: Page, selector: string, pred: (n: number) => boolean, what: string): Promise<number> {
  return waitUntil(async () => Number((await page.textContent(selector))?.replace(/[^\d]/g, '')), pred, WAIT, what, 200);
}

/** Creates a periodic task through the dashboard's form; returns its id (from the detail page URL). */
async function createThroughForm(page: Page, name: string, format: string, url: string): Promise<string> {
  await page.click('header nav a[data-nav="new"]');
  await page.waitForSelector('#task-form');
  await page.fill('#f-name', name);
  await page.fill('#f-format', format);
  // The live preview evaluates the expression on the server before anything is created.
  await page.waitForSelector('#f-preview:has-text("Next fires")');
  await page.fill('#f-url', url);
  await page.fill('#f-body', '{"from": "dashboard", "name": "' + name + '"}');
  await page.click('#f-submit');
  await page.waitForURL(/#\/task\//);
  const id = taskIdFromUrl(page.url());
  expect(id).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  await page.waitForSelector('#task-info dl');
  return id;
}

/** Waits until the runs table shows a SUCCESS row, and the receiver has the callback. */
async function seeItFire(page: Page, id: string, name: string): Promise<void> {
  await page.waitForSelector('#runs-table tr[data-status="SUCCESS"]', { timeout: 45_000 });
  await waitNumber(page, '#task-run-count', (n) => n >= 1, 'the run count on the detail page to reach 1');
  const got = await receiver.waitForRequest((r) => header(r, 'x-xcron-task-id') === id, WAIT, `a callback of task ${id}`);
  expect(JSON.parse(got.body)).toEqual({ from: 'dashboard', name });
  // The row shows the HTTP status of the callback.
  const okRow = page.locator('#runs-table tr[data-status="SUCCESS"]').first();
  expect(await okRow.locator('td').nth(3).textContent()).toBe('200');
}

describe('web dashboard (/ui) in headless Chromium', () => {
  it('creates a task, sees it fire, pauses, triggers, resumes, edits and deletes it; lists, cluster and charts work', async () => {
    const srv = await XcronServer.start({ env: { XCRON_CLUSTER_SLOTS: '64' } });
    const { page, errors } = await openBrowser();
    await page.goto(`${srv.baseUrl}/ui`);
    await expect.poll(() => page.textContent('[data-testid="auth-mode"]'), { timeout: WAIT }).toBe('auth: open');

    const name = 'ui-e2e-every-second';
    const id = await createThroughForm(page, name, '*/1 * * * * *', receiver.url('/ui-hook'));
    expect((await srv.client.mustQuery(id)).format).toBe('*/1 * * * * *');
    await expect.poll(() => page.locator('#next-fire-list li').count(), { timeout: WAIT }).toBe(5);
    await seeItFire(page, id, name);

    // Pause: the badge says paused and the API agrees; from then on only a manual run adds to the count.
    await page.click('#task-actions button[data-action="pause"]');
    await page.waitForSelector('#task-state .badge.paused');
    const paused = await srv.client.mustQuery(id);
    expect(paused.state).toBe('paused');
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });

    await page.click('#task-actions button[data-action="trigger"]');
    await page.waitForSelector(`.flash.ok:has-text("Triggered a run of ${id}")`);
    await waitNumber(page, '#task-run-count', (n) => n === paused.run_count + 1, `the run count to show the manual run (${paused.run_count + 1})`);
    expect((await srv.client.mustQuery(id)).state).toBe('paused');

    // The list: state filter, name search, and the row's own pause/resume buttons.
    await page.goto(`${srv.baseUrl}/ui#/tasks?state=active`);
    await page.waitForSelector('#tasks-table');
    expect(await page.locator(`#tasks-table tr[data-task-id="${id}"]`).count()).toBe(0);
    await page.selectOption('#filter-state', 'paused');
    await page.waitForSelector(`#tasks-table tr[data-task-id="${id}"] .badge.paused`);
    await page.fill('#filter-name', 'no-such-prefix');
    await page.waitForSelector('#tasks-table td.empty');
    await page.fill('#filter-name', 'ui-e2e');
    await page.waitForSelector(`#tasks-table tr[data-task-id="${id}"]`);
    await page.screenshot({ path: join(SHOTS, 'list.png') });
    await page.click(`#tasks-table tr[data-task-id="${id}"] button[data-action="resume"]`);
    await page.waitForSelector(`.flash.ok:has-text("Resumed ${id}")`);
    await waitUntil(() => srv.client.mustQuery(id), (t) => t.state === 'active', WAIT, 'the task to be active again');

    // Edit: a new schedule through the form is what the API then reports.
    await page.goto(`${srv.baseUrl}/ui#/edit/${id}`);
    await page.waitForSelector('#task-form');
    expect(await page.inputValue('#f-format')).toBe('*/1 * * * * *');
    await page.fill('#f-format', '*/2 * * * * *');
    await page.click('#f-submit');
    await page.waitForSelector(`.flash.ok:has-text("Saved task ${id} (format)")`);
    expect((await srv.client.mustQuery(id)).format).toBe('*/2 * * * * *');

    // Pagination: with more tasks than a page, "Next" walks on by cursor and "First" comes back.
    for (let i = 0; i < 3; i++) await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: `ui-e2e-page-${i}`, callback: { url: receiver.url('/unused') } });
    await page.goto(`${srv.baseUrl}/ui#/tasks?name=ui-e2e&limit=20`);
    await page.waitForSelector('#tasks-table tbody tr[data-task-id]');
    const all = await page.locator('#tasks-table tbody tr[data-task-id]').count();
    expect(all).toBe(4);
    await page.goto(`${srv.baseUrl}/ui#/tasks?name=ui-e2e&limit=3`);
    await expect.poll(() => page.locator('#tasks-table tbody tr[data-task-id]').count(), { timeout: WAIT }).toBe(3);
    const firstPage = await page.locator('#tasks-table tbody tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
    await page.click('#page-next');
    await expect.poll(() => page.locator('#tasks-table tbody tr[data-task-id]').count(), { timeout: WAIT }).toBe(1);
    const secondPage = await page.locator('#tasks-table tbody tr[data-task-id]').getAttribute('data-task-id');
    expect(firstPage).not.toContain(secondPage);
    expect(await page.isDisabled('#page-next')).toBe(true);
    await page.click('#page-first');
    await expect.poll(() => page.locator('#tasks-table tbody tr[data-task-id]').count(), { timeout: WAIT }).toBe(3);

    // Cluster view: this node owns every one of the 64 slots.
    await page.click('header nav a[data-nav="cluster"]');
    await page.waitForSelector('#slot-grid');
    expect(await page.locator('#slot-grid .slot').count()).toBe(64);
    expect(await page.textContent('[data-testid="cluster-members"]')).toBe('1');
    expect(await page.textContent('[data-testid="cluster-unowned"]')).toBe('0');
    expect(await page.textContent(`#members-table tr[data-node="e2e-${srv.opts.port}"] td.owned`)).toBe('64');
    await page.screenshot({ path: join(SHOTS, 'cluster.png') });

    // Overview: the counters, and the charts draw lines once a few stats samples are in (a flat line has
    // no height, so wait for it to be in the DOM rather than "visible").
    await page.click('header nav a[data-nav="overview"]');
    await waitNumber(page, '[data-testid="stat-fired"]', (n) => n >= 2, 'the fired counter');
    await waitNumber(page, '[data-testid="stat-active"]', (n) => n === 4, 'the active-task counter to show the 4 active tasks');
    // (A series with one point so far is a dot.)
    await page.waitForSelector('[data-testid="chart-fires"] svg :is(polyline, circle)', { state: 'attached', timeout: 45_000 });
    await page.waitForSelector('[data-testid="chart-lateness"] svg :is(polyline, circle)', { state: 'attached', timeout: 45_000 });
    await page.screenshot({ path: join(SHOTS, 'overview.png') });

    // Delete (two clicks, no native dialog): back on the list, and the API no longer knows the task.
    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.waitForSelector('#task-actions button[data-action="delete"]');
    await page.click('#task-actions button[data-action="delete"]');
    await page.click('#task-actions button[data-action="delete"]');
    await page.waitForURL(/#\/tasks$/);
    await page.waitForSelector(`.flash.ok:has-text("Deleted ${id}")`);
    expect((await srv.client.queryTask(id)).status).toBe(404);

    expect(errors).toEqual([]);
  }, 240_000);

  it.skipIf(!authAvailable)('with auth on: the page loads without a token, signs in, and every API call carries the Bearer token', async () => {
    const admin = 'ui-e2e-admin-token-3f9c1a7e5b';
    const reader = 'ui-e2e-read-token-8d2e4b6f1c';
    const srv = await XcronServer.start({
      env: { XCRON_AUTH_TOKENS: JSON.stringify([{ token: admin, role: 'admin' }, { token: reader, role: 'read' }]) },
    });
    // Auth is really on: the API refuses a call without a token.
    const open = await srv.client.call('GET', '/xcron/listTasks');
    expect(open.status).toBe(401);
    expect(open.body.code).toBe(1010);

    const { page, errors, apiRequests } = await openBrowser();
    await page.goto(`${srv.baseUrl}/ui`);
    await page.waitForSelector('#login-form');
    await page.screenshot({ path: join(SHOTS, 'login.png') });

    await page.fill('#token', 'not-the-right-token-000000');
    await page.click('#login-submit');
    await page.waitForSelector('#login-form .flash.error:has-text("rejected")');

    // A read token can look but not change anything.
    await page.fill('#token', reader);
    await page.click('#login-submit');
    await page.waitForSelector('[data-testid="stat-active"]');
    const seeded = await srv.client.call<{ task_id: string }>('POST', '/xcron/createTask', {
      json: { type: 1, format: '0 0 1 1 *', name: 'ui-e2e-auth-seeded', callback: { url: receiver.url('/unused') } },
      headers: { authorization: `Bearer ${admin}` },
    });
    const seededId = seeded.body.data.task_id;
    await page.goto(`${srv.baseUrl}/ui#/task/${seededId}`);
    await page.click('#task-actions button[data-action="pause"]');
    await page.waitForSelector('.flash.error:has-text("Not allowed with this token")');
    await page.click('#logout');
    await page.waitForSelector('#login-form');

    await page.fill('#token', admin);
    await page.click('#login-submit');
    await page.waitForSelector('[data-testid="stat-active"]');
    expect(await page.textContent('[data-testid="auth-mode"]')).toBe(`token …${admin.slice(-4)}`);
    expect(await page.evaluate("sessionStorage.getItem('xcron.dashboard.token')")).toBe(admin);

    const name = 'ui-e2e-auth-every-second';
    const id = await createThroughForm(page, name, '*/1 * * * * *', receiver.url('/ui-auth-hook'));
    await seeItFire(page, id, name);
    await page.click('#task-actions button[data-action="pause"]');
    await page.waitForSelector('#task-state .badge.paused');
    const t = await srv.client.call<{ state: string }>('GET', `/xcron/queryTask?task_id=${id}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(t.body.data.state).toBe('paused');
    await page.screenshot({ path: join(SHOTS, 'dashboard-auth.png') });

    // From the first sign-in on, every API call carried a token (before it, bare calls found out auth is on).
    const signedIn = apiRequests.findIndex((r) => r.headers().authorization === `Bearer ${reader}`);
    expect(signedIn).toBeGreaterThan(-1);
    const after = apiRequests.slice(signedIn);
    expect(after.length).toBeGreaterThan(5);
    for (const r of after) expect([`Bearer ${reader}`, `Bearer ${admin}`], `${r.method()} ${r.url()}`).toContain(r.headers().authorization);
    expect(after.some((r) => r.method() === 'POST' && r.url().endsWith('/xcron/createTask') && r.headers().authorization === `Bearer ${admin}`)).toBe(true);
    expect(errors).toEqual([]);
  }, 240_000);
});
