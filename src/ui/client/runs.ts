/**
 * The runs table of the task page: newest first, cursor paging, shards and response bodies; for an
 * async run its report deadline and elapsed time while RUNNING and the worker's message and output;
 * "Retry" on a failed run (delivered again as a new run) and "Log" for its execution log.
 */
import { api, errText, qs, statusOf } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, flash } from './flash.js';
import { fmtElapsed, fmtMs, fmtTime, json } from './format.js';
import { refreshInto } from './keep.js';
import { S } from './state.js';
import type { RunPage, RunView, ShardView } from './types.js';
import { current } from './view.js';
import { badge, timeCell } from './widgets.js';

const COLUMNS = ['Scheduled', 'Status', 'Attempts', 'HTTP', 'Duration', 'Started', 'Finished', 'Node', 'Error / details', ''];

/** What the runs table can do besides showing runs. */
export interface RunActions {
  /** Opens the run's execution log. */
  showLog(runId: string): void;
  /** After a retry was accepted. */
  refresh(): void;
  /** The task's zone (times show in it too). */
  timezone?: string;
  /** The task completes asynchronously (every run may have a log). */
  async?: boolean;
}

/** Delivers a failed run again (POST /xcron/retryRun). */
export async function retryRun(runId: string, after: () => void): Promise<void> {
  try {
    const r = await api<{ run_id?: string }>('POST', '/xcron/retryRun', { run_id: runId });
    flash('ok', `Retrying run ${runId}${r.run_id ? ` as ${r.run_id}` : ''}`);
    after();
  } catch (e) {
    flash('error', (statusOf(e) === 403 ? 'Not allowed with this token: ' : `Could not retry run ${runId}: `) + errText(e));
  }
}

const orDash = (v: number | string | null | undefined): string | number => (v === null || v === undefined ? '—' : v);

const shardRow = (s: ShardView): HTMLTableRowElement =>
  h(
    'tr',
    {},
    h('td', { text: `#${s.index}` }),
    h('td', { class: 'mono', text: s.url }),
    h('td', {}, badge(s.ok ? 'SUCCESS' : 'FAIL')),
    h('td', { class: 'num', text: `x${s.attempts}` }),
    h('td', { class: 'num', text: orDash(s.http_status) }),
    h('td', { class: 'err', text: s.error || '' }),
  );

function asyncFacts(r: RunView): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (r.status === 'RUNNING' && r.start_time !== null) out.push(h('div', { class: 'elapsed', text: `running for ${fmtElapsed(Date.now() - r.start_time)}` }));
  if (r.deadline !== undefined && (r.status === 'RUNNING' || r.status === 'PENDING')) {
    const left = r.deadline - Date.now();
    out.push(h('div', { class: 'deadline', title: new Date(r.deadline).toISOString(), text: `report due by ${fmtTime(r.deadline)} (${left > 0 ? `${fmtElapsed(left)} left` : 'overdue'})` }));
  }
  if (r.message !== undefined) out.push(h('div', { class: 'run-message' }, h('span', { class: 'muted', text: 'message: ' }), r.message));
  if (r.output !== undefined) out.push(h('details', { 'data-key': `${r.run_id}:output` }, h('summary', { text: 'output' }), h('pre', { class: 'run-output', text: json(r.output) })));
  if (r.retry_of) out.push(h('div', { class: 'small' }, h('span', { class: 'muted', text: 'retry of ' }), h('code', { text: r.retry_of })));
  if (r.retried_by) out.push(h('div', { class: 'small' }, h('span', { class: 'muted', text: 'retried as ' }), h('code', { text: r.retried_by })));
  return out;
}

function details(r: RunView): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (r.error) out.push(h('div', { class: 'run-error', text: r.error }));
  out.push(...asyncFacts(r));
  if (r.shards && r.shards.length) {
    const ok = r.shards.filter((s) => s.ok).length;
    out.push(
      h('details', { 'data-key': `${r.run_id}:shards` }, h('summary', { text: `${r.shards.length} shards (${ok} ok)` }), h('table', { class: 'shards' }, h('tbody', {}, r.shards.map(shardRow)))),
    );
  }
  if (r.response_body) out.push(h('details', { 'data-key': `${r.run_id}:response` }, h('summary', { text: 'response body' }), h('pre', { text: r.response_body })));
  return out;
}

const hasLog = (r: RunView, a: RunActions): boolean => a.async === true || r.status === 'RUNNING' || r.deadline !== undefined || r.message !== undefined || r.output !== undefined;

function runButtons(r: RunView, a: RunActions): HTMLButtonElement[] {
  const out: HTMLButtonElement[] = [];
  if (r.status === 'FAIL' && !r.retried_by) out.push(h('button', { type: 'button', class: 'small', 'data-action': 'retry-run', text: 'Retry', title: 'deliver this run again with its original body', onclick: () => retryRun(r.run_id, a.refresh) }));
  if (hasLog(r, a)) out.push(h('button', { type: 'button', class: 'small', 'data-action': 'show-log', text: 'Log', onclick: () => a.showLog(r.run_id) }));
  return out;
}

function runRow(r: RunView, a: RunActions): HTMLTableRowElement {
  const more = details(r);
  const cell = (i: number, props: Record<string, string>, ...c: (Node | string | number | null)[]): HTMLTableCellElement => h('td', { ...props, 'data-label': COLUMNS[i] || null }, ...c);
  return h(
    'tr',
    { 'data-run-id': r.run_id, 'data-status': r.status },
    cell(0, {}, timeCell(r.scheduled_time, a.timezone)),
    cell(1, { class: 'status' }, badge(r.status)),
    cell(2, { class: 'num' }, r.attempts),
    cell(3, { class: 'num' }, orDash(r.http_status)),
    cell(4, { class: 'num' }, r.duration_ms === null || r.duration_ms === undefined ? '—' : fmtMs(r.duration_ms)),
    cell(5, {}, fmtTime(r.start_time)),
    cell(6, {}, fmtTime(r.end_time)),
    cell(7, { class: 'mono small' }, r.node || '—'),
    h('td', { class: r.error ? 'err wide' : 'wide', 'data-label': 'Details' }, more.length ? more : h('span', { class: 'muted', text: '—' })),
    h('td', { class: 'actions' }, runButtons(r, a)),
  );
}

/**
 * The runs of task `id` into `box`, with paging buttons in `pager`. `live` is the page's "live"
 * checkbox: paging back in history turns it off, returning to the newest runs turns it on.
 */
export function runsPanel(seq: number, id: string, box: HTMLElement, pager: HTMLElement, live: HTMLInputElement, startCursor: string, actions: RunActions, onRuns?: (runs: RunView[], newest: boolean) => void): () => Promise<void> {
  let cursor = startCursor;
  S.runsPrev = [];
  const load = async (): Promise<void> => {
    let data: RunPage;
    try {
      data = await api<RunPage>('GET', `/xcron/taskRuns${qs({ task_id: id, limit: 25, cursor })}`);
    } catch (e) {
      if (current(seq)) replace(box, statusOf(e) === 404 ? null : errorBox(`Could not load runs: ${errText(e)}`));
      return;
    }
    if (!current(seq)) return;
    const runs = data.runs || [];
    onRuns?.(runs, !cursor);
    const table = h(
      'table',
      { id: 'runs-table', class: 'cards-sm' },
      h('thead', {}, h('tr', {}, COLUMNS.map((c, i) => h('th', { class: i === 2 || i === 3 || i === 4 ? 'num' : '', text: c })))),
      h('tbody', {}, runs.length ? runs.map((r) => runRow(r, actions)) : h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty', text: cursor ? 'No older runs.' : 'No runs yet.' }))),
    );
    // Keep open what the user opened.
    const open = new Set<string | null>();
    box.querySelectorAll('details[open]').forEach((d) => open.add(d.getAttribute('data-key')));
    table.querySelectorAll('details').forEach((d) => {
      if (open.has(d.getAttribute('data-key'))) d.open = true;
    });
    if (!refreshInto(box, h('div', { class: 'table-wrap' }, table))) return;
    const next = data.next_cursor;
    const goTo = (c: string, liveOn: boolean): void => {
      cursor = c;
      live.checked = liveOn;
      void load();
    };
    replace(pager, [
      h('button', {
        type: 'button',
        text: '« Newest',
        disabled: !cursor,
        onclick: () => {
          S.runsPrev = [];
          goTo('', true);
        },
      }),
      h('button', {
        type: 'button',
        text: '‹ Newer',
        disabled: !cursor,
        onclick: () => {
          const c = S.runsPrev.pop() || '';
          goTo(c, c ? live.checked : true);
        },
      }),
      h('button', {
        type: 'button',
        id: 'runs-older',
        text: 'Older ›',
        disabled: !next,
        onclick: () => {
          S.runsPrev.push(cursor);
          goTo(next || '', false);
        },
      }),
    ]);
  };
  return load;
}
