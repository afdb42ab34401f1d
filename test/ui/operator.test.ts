/**
 * The dashboard for operators, in real headless Chromium at 1440x900 and 390x844, against the real
 * built server and a real HTTP receiver:
 * - an operator finds a failing task (recent failures on the overview, "failing only" in the list),
 *   reads why in its runs, retries the run once the receiver is fixed, and sees the retry succeed;
 * - an async run shows its deadline and elapsed time while RUNNING, its log tails live as the worker
 *   appends lines, and the worker's message and output show once it reports;
 * - every page: axe-core finds no serious or critical violation, nothing scrolls sideways, the page
 *   has its own title, and a screenshot is kept (test-results/ui/).
 * Every wait is on the DOM or on a request reaching the receiver, with generous timeouts.
 */
import { describe, expect, it } from 'vitest';
import { DESKTOP, PHONE, axeSerious, shot, sidewaysOverflow, type Size, type Tab } from '../helpers/browser.js';
import { header, type ReceivedRequest } from '../helpers/receiver.js';
import { XcronServer } from '../helpers/server.js';
import { browserSuite } from '../helpers/browser-suite.js';
import { waitUntil } from '../helpers/wait.js';

const WAIT = 30_000;
const ui = browserSuite();
const open = (size?: Size, tz?: string): Promise<Tab> => ui.open(size, tz);

/** The page's checks: no serious axe violation, no sideways scroll, a title, a screenshot. */
async function checkPage(tab: Tab, size: Size, name: string, title: RegExp): Promise<void> {
  const { page } = tab;
  await expect.poll(() => page.title(), { timeout: WAIT }).toMatch(title);
  expect(await axeSerious(page), `axe on ${name} at ${size.name}`).toEqual([]);
  expect(await sidewaysOverflow(page), `sideways overflow of ${name} at ${size.name}`).toBeLessThanOrEqual(0);
  await shot(page, `${name}-${size.name}`);
}

const api = async <T>(srv: XcronServer, method: 'GET' | 'POST', path: string, json?: unknown): Promise<T> => {
  const r = await srv.client.call<T>(method, path, json === undefined ? {} : { json });
  if (r.body.code !== 0) throw new Error(`${method} ${path}: HTTP ${r.status} code ${r.body.code}: ${r.body.message}`);
  return r.body.data;
};

describe.each([DESKTOP, PHONE])('the dashboard for operators at $width x $height', (size) => {
  it('an operator finds a failing task, reads why, retries the run and sees it succeed', async () => {
    const srv = await XcronServer.start();
    const path = `/flaky-${size.name}`;
    let fixed = false;
    ui.receiver.on(path, () => (fixed ? { status: 200, body: '{"ok":true}' } : { status: 500, body: '{"error":"db down"}' }));
    const name = `billing-sync-${size.name}`;
    const { task_id: id } = await srv.client.mustCreate({
      type: 1,
      format: '0 0 1 1 *',
      name,
      callback: { url: ui.receiver.url(path), body: { ledger: 'main' } },
      retry: { max_attempts: 1 },
    });
    // A healthy neighbour, so "failing only" has something to leave out.
    const { task_id: okId } = await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: `healthy-${size.name}`, callback: { url: ui.receiver.url('/ok') } });
    await api(srv, 'POST', '/xcron/triggerTask', { task_id: okId });
    await api(srv, 'POST', '/xcron/triggerTask', { task_id: id });
    await ui.receiver.waitForRequest((r) => header(r, 'x-xcron-task-id') === id, WAIT, 'the failing callback');
    await waitUntil(() => srv.client.mustQuery(id), (t) => t.last_status === 'FAIL', WAIT, 'the task to record its failure');
    await waitUntil(() => srv.client.mustQuery(okId), (t) => t.last_status === 'SUCCESS', WAIT, 'the healthy task to succeed');

    const tab = await open(size);
    const { page } = tab;
    await page.goto(`${srv.baseUrl}/ui`);
    // The overview's recent failures name the task and say why.
    const item = page.locator('#failure-list li', { has: page.locator(`a.failure-task:has-text("${name}")`) });
    await item.waitFor();
    expect(await item.locator('.err').textContent()).toMatch(/500/);
    // The charts come from the server's run history, so they are drawn on load: today's bar of the
    // daily report has the failure, and the activity charts count the two runs.
    await page.waitForSelector('[data-testid="chart-report"] svg rect.fail', { state: 'attached' });
    await page.waitForSelector('#chart-source:has-text("from 2 run records")');
    await page.waitForSelector('[data-testid="chart-failures"] .legend', { state: 'attached' });
    await checkPage(tab, size, 'overview', /^Overview · xcron$/);

    // The list, failing only: this task, not the healthy one.
    await page.click('header nav a[data-nav="tasks"]');
    await page.waitForSelector('#tasks-table');
    await page.check('#filter-failing');
    await page.waitForSelector(`#tasks-table tr[data-task-id="${id}"]`);
    await expect.poll(() => page.locator(`#tasks-table tr[data-task-id="${okId}"]`).count(), { timeout: WAIT }).toBe(0);
    await page.waitForSelector(`#tasks-table tr[data-task-id="${id}"] td.figs .fig-rate:has-text("1 failed")`);
    await checkPage(tab, size, 'tasks-failing', /^Tasks · xcron$/);

    // The task: the failed run and why it failed.
    await page.click(`#tasks-table tr[data-task-id="${id}"] a.task-link`);
    await page.waitForSelector('#runs-table tr[data-status="FAIL"]');
    const failRow = page.locator('#runs-table tr[data-status="FAIL"]').first();
    const failedRunId = await failRow.getAttribute('data-run-id');
    expect(await failRow.locator('td').nth(3).textContent()).toBe('500');
    expect(await failRow.locator('.run-error').textContent()).toMatch(/500/);
    await failRow.locator('summary:has-text("response body")').click();
    expect(await failRow.locator('details pre').textContent()).toContain('db down');
    await page.waitForSelector('[data-testid="fig-success"]:has-text("0 %")');
    await checkPage(tab, size, 'task-failed', new RegExp(`^Task ${name} · xcron$`));

    // Fixed: retry the run; a new run delivers the original body and succeeds.
    fixed = true;
    const before = ui.receiver.to(path).length;
    await failRow.locator('button[data-action="retry-run"]').click();
    await page.waitForSelector(`.flash.ok:has-text("Retrying run ${failedRunId}")`);
    const ok = page.locator('#runs-table tr[data-status="SUCCESS"]').first();
    await ok.waitFor({ timeout: 45_000 });
    expect(await ok.textContent()).toContain(`retry of ${failedRunId}`);
    const again = await ui.receiver.waitFor((rs) => rs.filter((r) => r.path === path).length > before, WAIT, 'the retried delivery');
    const last = again.filter((r: ReceivedRequest) => r.path === path).at(-1)!;
    expect(JSON.parse(last.body)).toEqual({ ledger: 'main' });
    await page.waitForSelector(`#runs-table tr[data-run-id="${failedRunId}"]:has-text("retried as")`);
    await shot(page, `task-retried-${size.name}`);
    expect(tab.errors).toEqual([]);
    expect(tab.failed).toEqual([]);
  }, 240_000);

  it("an async run shows its deadline and elapsed time, and its log tails live", async () => {
    const srv = await XcronServer.start();
    const path = `/async-${size.name}`;
    ui.receiver.on(path, { status: 202, body: '' });
    const name = `nightly-report-${size.name}`;
    const { task_id: id } = await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name, callback: { url: ui.receiver.url(path) }, completion: 'async', async_timeout_ms: 600_000 });

    const tab = await open(size);
    const { page } = tab;
    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.waitForSelector('#task-info dl');
    await page.click('#task-actions button[data-action="trigger"]');
    const req = await ui.receiver.waitForRequest((r) => r.path === path, WAIT, 'the async callback');
    const runId = header(req, 'x-xcron-run-id')!;
    const token = header(req, 'x-xcron-report-token')!;
    expect(runId).toMatch(new RegExp(`^${id}:`));

    // RUNNING: the report deadline and the time it has been running.
    const row = page.locator(`#runs-table tr[data-run-id="${runId}"]`);
    await row.locator('.badge.RUNNING').waitFor();
    expect(await row.locator('.deadline').textContent()).toMatch(/^report due by .+ left\)$/);
    expect(await row.locator('.elapsed').textContent()).toMatch(/^running for \d+s$/);

    // The log: each line the worker appends shows while the run is still RUNNING.
    await row.locator('button[data-action="show-log"]').click();
    await page.waitForSelector('#run-log-status:has-text("tailing live")');
    for (let i = 1; i <= 3; i++) {
      await api(srv, 'POST', '/xcron/appendRunLog', { run_id: runId, token, lines: [`step ${i} of 3 done`] });
      await page.waitForSelector(`#run-log-lines:has-text("step ${i} of 3 done")`);
      expect(await page.textContent('[data-testid="run-log-count"]')).toBe(`${i} line${i === 1 ? '' : 's'}`);
      expect((await srv.client.call<{ runs: { status: string }[] }>('GET', `/xcron/taskRuns?task_id=${id}`)).body.data.runs[0]!.status).toBe('RUNNING');
    }
    await checkPage(tab, size, 'task-async-log', new RegExp(`^Task ${name} · xcron$`));

    // The report: the run is SUCCESS with the worker's message and output, and the tail stops.
    await api(srv, 'POST', '/xcron/reportRun', { run_id: runId, token, status: 'SUCCESS', message: '42 rows settled', output: { rows: 42 } });
    await page.waitForSelector('#run-log-status:has-text("finished")');
    expect(await page.textContent('#run-log-outcome .run-message')).toBe('message: 42 rows settled');
    expect(JSON.parse((await page.textContent('#run-log-outcome .run-output'))!)).toEqual({ rows: 42 });
    await row.locator('.badge.SUCCESS').waitFor();
    expect(await row.locator('.run-message').textContent()).toBe('message: 42 rows settled');
    expect(await row.locator('.deadline').count()).toBe(0);
    await shot(page, `task-async-done-${size.name}`);
    expect(tab.errors).toEqual([]);
    expect(tab.failed).toEqual([]);
  }, 240_000);

  it('every page passes axe, has its title, a focused heading after navigating, and no sideways scroll', async () => {
    const srv = await XcronServer.start({ env: { XCRON_CLUSTER_SLOTS: '64' } });
    const { task_id: id } = await srv.client.mustCreate({
      type: 1,
      format: '0 9 * * 1-5',
      timezone: 'Asia/Tokyo',
      name: `weekday-morning-with-a-rather-long-name-${size.name}`,
      callback: { url: ui.receiver.url('/a-long/path/that/should/wrap/on/a/phone/and/not/scroll/sideways?x=1'), body: { hello: 'world' } },
    });
    await api(srv, 'POST', '/xcron/triggerTask', { task_id: id });
    await waitUntil(() => srv.client.mustQuery(id), (t) => t.last_status === 'SUCCESS', WAIT, 'a finished run');

    const tab = await open(size, 'Europe/Berlin');
    const { page } = tab;
    // First load: nothing is focused (no phone keyboard pops up).
    await page.goto(`${srv.baseUrl}/ui#/new`);
    await page.waitForSelector('#task-form');
    expect(await page.evaluate('document.activeElement && document.activeElement.tagName')).toBe('BODY');
    await checkPage(tab, size, 'new', /^New task · xcron$/);

    const visits: [string, string, RegExp, string][] = [
      ['tasks', '#tasks-table', /^Tasks · xcron$/, 'Tasks'],
      ['cluster', '#slot-grid', /^Cluster · xcron$/, 'Cluster'],
      ['overview', '[data-testid="stat-active"]', /^Overview · xcron$/, 'Overview'],
    ];
    for (const [nav, ready, title, heading] of visits) {
      await page.click(`header nav a[data-nav="${nav}"]`);
      await page.waitForSelector(ready);
      // A route change moves the focus to the new page's heading.
      await expect.poll(() => page.evaluate("document.activeElement && document.activeElement.tagName === 'H1' ? document.activeElement.textContent : null"), { timeout: WAIT }).toMatch(new RegExp(`^${heading}`));
      await checkPage(tab, size, nav, title);
    }
    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.waitForSelector('#runs-table tr[data-status="SUCCESS"]');
    // Times in local time (Berlin) and in the task's zone (Tokyo): the next fire is 09:00 in Tokyo.
    await page.waitForSelector('#next-fire-list li .zone');
    expect(await page.locator('#next-fire-list li .zone').first().textContent()).toMatch(/ 09:00:00 Asia\/Tokyo$/);
    expect(await page.locator('#next-fire-list li').first().textContent()).toMatch(/ 0[12]:00:00 local/);
    await checkPage(tab, size, 'task', /^Task weekday-morning/);
    await page.goto(`${srv.baseUrl}/ui#/edit/${id}`);
    await page.waitForSelector('#task-form');
    await checkPage(tab, size, 'edit', /^Edit task weekday-morning/);
    await page.goto(`${srv.baseUrl}/ui#/login`);
    await page.waitForSelector('#login-form');
    await checkPage(tab, size, 'login', /^Sign in · xcron$/);
    expect(tab.errors).toEqual([]);
    expect(tab.failed).toEqual([]);
  }, 240_000);
});
