/**
 * The dashboard's everyday tools in real headless Chromium (1440x900) against the real built server:
 * auto-refresh that keeps focus and text selection, search by any part of the name / id / URL, the
 * form (past one-shot flagged, a stale error cleared once the input changes, unknown advanced keys
 * refused, a cleared field back to its default, completion and async_timeout_ms), clone, trigger
 * with a one-off body, tags, and bulk pause / resume / delete with a dry-run preview.
 */
import { describe, expect, it } from 'vitest';
import { shot, type Tab } from '../helpers/browser.js';
import { header } from '../helpers/receiver.js';
import { XcronServer } from '../helpers/server.js';
import { browserSuite } from '../helpers/browser-suite.js';
import { waitUntil } from '../helpers/wait.js';

const WAIT = 30_000;
const ui = browserSuite();
const open = (): Promise<Tab> => ui.open();

describe('dashboard tools', () => {
  it('refresh keeps focus and selection; search; the form flags, clears and refuses what it should', async () => {
    const srv = await XcronServer.start();
    const ids: string[] = [];
    for (const [name, path] of [
      ['Invoice-Sweeper', '/hooks/invoices'],
      ['cache-warmup', '/hooks/Warm-Cache'],
      ['report-daily', '/hooks/report'],
    ] as const) {
      ids.push((await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name, callback: { url: ui.receiver.url(path) }, retry: { max_attempts: 2, backoff_ms: 500, max_backoff_ms: 5000 } })).task_id);
    }
    const tab = await open();
    const { page } = tab;
    const listCalls: number[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/xcron/listTasks')) listCalls.push(Date.now());
    });

    // Search: any part of the name, any case; part of the id; part of the URL.
    await page.goto(`${srv.baseUrl}/ui#/tasks`);
    await page.waitForSelector('#tasks-table tr[data-task-id]');
    const shown = async (): Promise<string[]> => page.locator('#tasks-table tbody tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')!));
    await page.fill('#filter-name', 'SWEEP');
    await expect.poll(shown, { timeout: WAIT }).toEqual([ids[0]]);
    // The input keeps the focus while the list redraws for each search.
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('filter-name');
    await page.fill('#filter-name', ids[2]!.slice(3, 12));
    await expect.poll(shown, { timeout: WAIT }).toEqual([ids[2]]);
    await page.fill('#filter-name', 'warm-cache');
    await expect.poll(shown, { timeout: WAIT }).toEqual([ids[1]]);
    await page.fill('#filter-name', '');
    await expect.poll(async () => (await shown()).length, { timeout: WAIT }).toBe(3);

    // Auto-refresh (every 5 s) keeps the focused button focused and a text selection selected.
    await page.focus(`#tasks-table tr[data-task-id="${ids[1]}"] button[data-action="pause"]`);
    let n = listCalls.length;
    await waitUntil(() => listCalls.length, (c) => c >= n + 2, WAIT, 'two list refreshes');
    expect(await page.evaluate("(() => { const a = document.activeElement; const row = a && a.closest('tr'); return row ? row.getAttribute('data-task-id') + ' ' + a.getAttribute('data-action') : null; })()")).toBe(`${ids[1]} pause`);
    await page.evaluate(`(() => { const el = document.querySelector('#tasks-table tr[data-task-id="${ids[2]}"] a.task-link'); const r = document.createRange(); r.selectNodeContents(el); const s = getSelection(); s.removeAllRanges(); s.addRange(r); })()`);
    n = listCalls.length;
    await waitUntil(() => listCalls.length, (c) => c >= n + 2, WAIT, 'two more list refreshes');
    expect(await page.evaluate('String(getSelection())')).toBe('report-daily');

    // The form: a one-shot in the past is flagged in the preview; a refused create's error goes
    // once the input changes; an unknown advanced key is refused before anything is sent.
    await page.goto(`${srv.baseUrl}/ui#/new`);
    await page.waitForSelector('#task-form');
    await page.selectOption('#f-type', '2');
    await page.fill('#f-format', String(Math.floor(Date.now() / 1000) - 3600));
    await page.waitForSelector('#f-past:has-text("in the past")');
    await page.fill('#f-url', ui.receiver.url('/once'));
    await page.click('#f-submit');
    await page.waitForSelector('#form-error .flash.error:has-text("code 1002")');
    await page.fill('#f-format', String(Math.floor(Date.now() / 1000) + 3600));
    await expect.poll(() => page.locator('#form-error .flash').count(), { timeout: WAIT }).toBe(0);
    await expect.poll(() => page.locator('#f-past').count(), { timeout: WAIT }).toBe(0);
    await page.fill('#f-advanced', '{"end_tme": 1999999999}');
    await page.click('#f-submit');
    await page.waitForSelector("#form-error .flash.error:has-text(\"unknown key 'end_tme'\")");
    await shot(page, 'form-errors-desktop');

    // Edit: async completion with a deadline; cleared retry fields and timezone go back to the defaults.
    await page.goto(`${srv.baseUrl}/ui#/edit/${ids[0]}`);
    await page.waitForSelector('#task-form');
    await page.selectOption('#f-completion', 'async');
    await page.fill('#f-async-timeout', '90000');
    await page.fill('#f-backoff', '');
    await page.fill('#f-max-backoff', '');
    await page.click('#f-submit');
    await page.waitForSelector(`.flash.ok:has-text("Saved task ${ids[0]}")`);
    let t = await srv.client.mustQuery(ids[0]!);
    expect(t).toMatchObject({ completion: 'async', async_timeout_ms: 90000, retry: { max_attempts: 2, backoff_ms: 1000, max_backoff_ms: 60000 } });
    await page.goto(`${srv.baseUrl}/ui#/edit/${ids[0]}`);
    await page.waitForSelector('#task-form');
    expect(await page.inputValue('#f-async-timeout')).toBe('90000');
    await page.fill('#f-async-timeout', '');
    await page.selectOption('#f-completion', 'sync');
    await page.click('#f-submit');
    await page.waitForSelector(`.flash.ok:has-text("Saved task ${ids[0]}")`);
    t = await srv.client.mustQuery(ids[0]!);
    expect(t.completion).toBeUndefined();
    expect(t.async_timeout_ms).toBeUndefined();

    // Clone: the form comes filled from the task, and creates a new one.
    await page.goto(`${srv.baseUrl}/ui#/task/${ids[2]}`);
    await page.click('#clone-task');
    await page.waitForSelector('#task-form');
    expect(await page.inputValue('#f-name')).toBe('report-daily-copy');
    expect(await page.inputValue('#f-url')).toBe(ui.receiver.url('/hooks/report'));
    await page.click('#f-submit');
    await page.waitForURL(/#\/task\//);
    const cloneId = decodeURIComponent(/#\/task\/([^?]+)/.exec(page.url())![1]!);
    expect(cloneId).not.toBe(ids[2]);
    expect(await srv.client.mustQuery(cloneId)).toMatchObject({ name: 'report-daily-copy', format: '0 0 1 1 *', retry: { max_attempts: 2, backoff_ms: 500, max_backoff_ms: 5000 } });
    expect(tab.errors).toEqual([]);
    expect(tab.failed).toEqual(['400 POST /xcron/createTask']);
  }, 240_000);

  it('trigger with a one-off body, tags, and bulk pause / resume / delete with a dry-run preview', async () => {
    const srv = await XcronServer.start();
    const nightly: string[] = [];
    for (let i = 0; i < 3; i++) nightly.push((await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: `nightly-${i}`, tags: ['nightly'], callback: { url: ui.receiver.url('/bulk'), body: { n: i } } })).task_id);
    const other = (await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'other', tags: ['hourly'], callback: { url: ui.receiver.url('/bulk') } })).task_id;
    const tab = await open();
    const { page } = tab;

    // One run with a one-off body; the task keeps its own.
    await page.goto(`${srv.baseUrl}/ui#/task/${nightly[0]}`);
    await page.waitForSelector('#task-tags .tag:has-text("nightly")');
    await page.click('button[data-action="trigger-body"]');
    await page.fill('#trigger-body', '{"n": 0, "backfill": "2026-12-01"}');
    await page.fill('#trigger-headers', '{"X-Reason": "backfill"}');
    await page.click('#trigger-send');
    await page.waitForSelector(`.flash.ok:has-text("with a one-off body")`);
    const got = await ui.receiver.waitForRequest((r) => header(r, 'x-xcron-task-id') === nightly[0], WAIT, 'the one-off run');
    expect(JSON.parse(got.body)).toEqual({ n: 0, backfill: '2026-12-01' });
    expect(header(got, 'x-reason')).toBe('backfill');
    expect((await srv.client.mustQuery(nightly[0]!)).callback.body).toEqual({ n: 0 });

    // The list by tag.
    await page.goto(`${srv.baseUrl}/ui#/tasks?tag=nightly`);
    await expect.poll(() => page.locator('#tasks-table tbody tr[data-task-id]').count(), { timeout: WAIT }).toBe(3);

    // Bulk: the dry run lists what would change and changes nothing; then pause, resume, delete.
    await page.click('#bulk summary');
    await page.fill('#bulk-value', 'nightly');
    await page.selectOption('#bulk-action', 'pause');
    await page.click('#bulk-preview');
    await page.waitForSelector('#bulk-count:has-text("Would pause 3 tasks")');
    expect((await page.locator('#bulk-ids li').allTextContents()).sort()).toEqual(nightly.slice().sort());
    for (const id of nightly) expect((await srv.client.mustQuery(id)).state).toBe('active');
    await shot(page, 'bulk-preview-desktop');
    await page.click('#bulk-apply');
    await page.waitForSelector('.flash.ok:has-text("pause: 3 tasks changed")');
    for (const id of nightly) expect((await srv.client.mustQuery(id)).state).toBe('paused');
    expect((await srv.client.mustQuery(other)).state).toBe('active');

    // A success message goes after 4 s and the page moves up; wait for that before the next click.
    const noFlash = (): Promise<void> => expect.poll(() => page.locator('.flash.ok').count(), { timeout: WAIT }).toBe(0);
    await noFlash();
    await page.selectOption('#bulk-action', 'resume');
    await page.click('#bulk-preview');
    await page.waitForSelector('#bulk-count:has-text("Would resume 3 tasks")');
    await page.click('#bulk-apply');
    await page.waitForSelector('.flash.ok:has-text("resume: 3 tasks changed")');
    for (const id of nightly) expect((await srv.client.mustQuery(id)).state).toBe('active');

    await noFlash();
    await page.selectOption('#bulk-by', 'name_prefix');
    await page.fill('#bulk-value', 'nightly-');
    await page.selectOption('#bulk-action', 'delete');
    await page.click('#bulk-preview');
    await page.waitForSelector('#bulk-count:has-text("Would delete 3 tasks")');
    await page.click('#bulk-apply');
    await page.click('#bulk-apply'); // a second click confirms a delete
    await page.waitForSelector('.flash.ok:has-text("delete: 3 tasks changed")');
    for (const id of nightly) expect((await srv.client.queryTask(id)).status).toBe(404);
    expect((await srv.client.mustQuery(other)).state).toBe('active');
    expect(tab.errors).toEqual([]);
    expect(tab.failed).toEqual([]);
  }, 240_000);

  it('says why a task was auto-paused, and sorts the list by failures and by last fire', async () => {
    const srv = await XcronServer.start();
    ui.receiver.on('/always-500', { status: 500, body: '{"error":"upstream timeout"}' });
    const flaky = (await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'b-flaky', max_consecutive_failures: 2, retry: { max_attempts: 1 }, callback: { url: ui.receiver.url('/always-500') } })).task_id;
    const fine = (await srv.client.mustCreate({ type: 1, format: '0 0 1 1 *', name: 'a-fine', callback: { url: ui.receiver.url('/fine') } })).task_id;
    for (let i = 1; i <= 2; i++) {
      const r = await srv.client.call('POST', '/xcron/triggerTask', { json: { task_id: flaky } });
      expect(r.body.code).toBe(0);
      await waitUntil(() => srv.client.call<{ runs: { status: string }[] }>('GET', `/xcron/taskRuns?task_id=${flaky}`), (x) => x.body.data.runs.filter((run) => run.status === 'FAIL').length === i, WAIT, `failure ${i}`);
    }
    await waitUntil(() => srv.client.mustQuery(flaky), (t) => t.state === 'paused', WAIT, 'the auto-pause');
    expect((await srv.client.call('POST', '/xcron/triggerTask', { json: { task_id: fine } })).body.code).toBe(0);
    await waitUntil(() => srv.client.mustQuery(fine), (t) => t.last_status === 'SUCCESS', WAIT, 'the fine run');

    const tab = await open();
    const { page } = tab;
    await page.goto(`${srv.baseUrl}/ui#/task/${flaky}`);
    await page.waitForSelector('#pause-reason');
    // The reason stored with the auto-pause (issue 26), with the newest failure.
    expect(await page.textContent('#pause-reason')).toMatch(/^auto-paused .*: auto-paused after 2 consecutive failures: .*500.*\. Fix the cause, retry the failed run, then resume\.$/);
    await shot(page, 'task-auto-paused-desktop');

    const order = async (): Promise<string[]> => page.locator('#tasks-table tbody tr[data-task-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')!));
    await page.goto(`${srv.baseUrl}/ui#/tasks?sort=failures`);
    await expect.poll(order, { timeout: WAIT }).toEqual([flaky, fine]);
    // The fine task fired last.
    await page.selectOption('#sort', 'last_fire');
    await expect.poll(order, { timeout: WAIT }).toEqual([fine, flaky]);
    expect(tab.errors).toEqual([]);
  }, 240_000);

  it('shows every schedule in plain language: task page, list and form preview', async () => {
    const srv = await XcronServer.start();
    const id = (await srv.client.mustCreate({ type: 1, format: '0 9 * * 1-5', timezone: 'Europe/Berlin', name: 'weekdays', callback: { url: ui.receiver.url('/x') } })).task_id;
    const tab = await open();
    const { page } = tab;
    await page.goto(`${srv.baseUrl}/ui#/task/${id}`);
    await page.waitForSelector('#task-description');
    expect(await page.textContent('#task-description')).toMatch(/09:00.*Monday through Friday/);
    await page.goto(`${srv.baseUrl}/ui#/tasks`);
    expect(await page.locator(`#tasks-table tr[data-task-id="${id}"] .description`).textContent()).toMatch(/09:00.*Monday through Friday/);
    await page.goto(`${srv.baseUrl}/ui#/new`);
    await page.fill('#f-format', '*/15 * * * *');
    await page.waitForSelector('#f-description');
    expect(await page.textContent('#f-description')).toMatch(/15 minutes/);
    expect(tab.errors).toEqual([]);
  }, 240_000);
});
