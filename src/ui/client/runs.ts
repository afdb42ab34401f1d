/** The runs table of the task page: newest first, cursor paging, shards and response bodies. */
import { api, errText, qs, statusOf } from './api.js';
import { h, replace } from './dom.js';
import { errorBox } from './flash.js';
import { fmtMs, fmtTime } from './format.js';
import { S } from './state.js';
import type { RunPage, RunView, ShardView } from './types.js';
import { current } from './view.js';
import { badge, timeCell } from './widgets.js';

const COLUMNS = ['Scheduled', 'Status', 'Attempts', 'HTTP', 'Duration', 'Started', 'Finished', 'Node', 'Error / details'];

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

function details(r: RunView): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (r.error) out.push(h('div', { text: r.error }));
  if (r.shards && r.shards.length) {
    const ok = r.shards.filter((s) => s.ok).length;
    out.push(
      h('details', { 'data-key': `${r.run_id}:shards` }, h('summary', { text: `${r.shards.length} shards (${ok} ok)` }), h('table', { class: 'shards' }, h('tbody', {}, r.shards.map(shardRow)))),
    );
  }
  if (r.response_body) out.push(h('details', { 'data-key': `${r.run_id}:response` }, h('summary', { text: 'response body' }), h('pre', { text: r.response_body })));
  return out;
}

function runRow(r: RunView): HTMLTableRowElement {
  const more = details(r);
  return h(
    'tr',
    { 'data-run-id': r.run_id, 'data-status': r.status },
    h('td', {}, timeCell(r.scheduled_time)),
    h('td', { class: 'status' }, badge(r.status)),
    h('td', { class: 'num', text: r.attempts }),
    h('td', { class: 'num', text: orDash(r.http_status) }),
    h('td', { class: 'num', text: r.duration_ms === null || r.duration_ms === undefined ? '—' : fmtMs(r.duration_ms) }),
    h('td', { text: fmtTime(r.start_time) }),
    h('td', { text: fmtTime(r.end_time) }),
    h('td', { class: 'mono small', text: r.node || '—' }),
    h('td', { class: r.error ? 'err' : '' }, more.length ? more : h('span', { class: 'muted', text: '—' })),
  );
}

/**
 * The runs of task `id` into `box`, with paging buttons in `pager`. `live` is the page's "live"
 * checkbox: paging back in history turns it off, returning to the newest runs turns it on.
 */
export function runsPanel(seq: number, id: string, box: HTMLElement, pager: HTMLElement, live: HTMLInputElement, startCursor: string): () => Promise<void> {
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
    const table = h(
      'table',
      { id: 'runs-table' },
      h('thead', {}, h('tr', {}, COLUMNS.map((c, i) => h('th', { class: i === 2 || i === 3 || i === 4 ? 'num' : '', text: c })))),
      h('tbody', {}, runs.length ? runs.map(runRow) : h('tr', {}, h('td', { colspan: 9, class: 'empty', text: cursor ? 'No older runs.' : 'No runs yet.' }))),
    );
    // Keep open what the user opened.
    const open = new Set<string | null>();
    box.querySelectorAll('details[open]').forEach((d) => open.add(d.getAttribute('data-key')));
    table.querySelectorAll('details').forEach((d) => {
      if (open.has(d.getAttribute('data-key'))) d.open = true;
    });
    replace(box, h('div', { class: 'table-wrap' }, table));
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
