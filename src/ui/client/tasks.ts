/**
 * The task list: search (any part of the name, the id or the URL, ignoring case), state / tag /
 * failing-only filters, sort (id, last fire, failures), page size, paging, per-task figures, row
 * actions and the bulk panel. Without a search the server pages by cursor; with one the dashboard
 * reads up to SEARCH_MAX tasks of the filter and pages through the matches itself.
 */
import { api, errText, qs } from './api.js';
import { bulkPanel } from './bulk.js';
import { h, replace } from './dom.js';
import { cachedFigures, figuresCell, figuresOfAll } from './figures.js';
import { errorBox } from './flash.js';
import { fmtNum, schedText } from './format.js';
import { refreshInto } from './keep.js';
import { S } from './state.js';
import type { TaskPage, TaskView } from './types.js';
import { current, every, setView } from './view.js';
import { actionButtons, badge, pauseText, tagChips, timeCell } from './widgets.js';

interface ListParams {
  state: string;
  name: string;
  tag: string;
  failing: string;
  sort: string;
  limit: string;
  cursor: string;
}

/** How many tasks a search reads at most (pages of 1000). */
export const SEARCH_MAX = 5000;

const tasksHash = (p: ListParams): string => `#/tasks${qs({ state: p.state, name: p.name, tag: p.tag, failing: p.failing, sort: p.sort === 'id' ? '' : p.sort, limit: p.limit, cursor: p.cursor })}`;

const COLUMNS = ['Name / id', 'Schedule', 'State', 'Next fire', 'Last fire', 'Last status', 'Runs', 'Figures', ''];

/** True when the search text is part of the task's name, id or a callback URL (any case). */
export function matches(t: TaskView, q: string): boolean {
  const needle = q.toLowerCase();
  const hay = [t.name ?? '', t.task_id, t.callback.url ?? t.callback.executor ?? '', ...(t.callback.urls ?? [])];
  return hay.some((s) => s.toLowerCase().includes(needle));
}

/** A paused task's reason under its state: the note (or auto-pause reason), cut short, in full on hover. */
function pauseLine(t: TaskView): HTMLElement | null {
  const text = pauseText(t);
  return text ? h('div', { class: 'sub pause-note ellipsis', title: text, text }) : null;
}

function taskRow(t: TaskView, refresh: () => void): HTMLTableRowElement {
  const cell = (i: number, props: Record<string, string>, ...c: (Node | string | null | Node[])[]): HTMLTableCellElement => h('td', { ...props, 'data-label': COLUMNS[i] || null }, ...c);
  return h(
    'tr',
    { 'data-task-id': t.task_id },
    cell(0, {}, h('a', { href: `#/task/${encodeURIComponent(t.task_id)}`, class: 'task-link', text: t.name || t.task_id }), h('div', { class: 'sub mono', text: t.name ? t.task_id : '' }), t.tags?.length ? h('div', {}, tagChips(t.tags)) : null),
    cell(
      1,
      {},
      h('div', { class: 'mono ellipsis', title: t.format, text: schedText(t) }),
      t.description ? h('div', { class: 'sub description', text: t.description }) : null,
      h('div', { class: 'sub', text: (t.type === 1 ? 'cron · ' : 'one-shot · ') + t.timezone }),
    ),
    cell(2, { class: 'state' }, badge(t.state), t.pause?.kind === 'auto' ? h('span', { class: 'badge auto', text: 'auto' }) : null, pauseLine(t)),
    cell(3, {}, t.state === 'active' ? timeCell(t.next_fire_time, t.timezone) : h('span', { class: 'muted', text: t.state === 'paused' ? 'paused' : '—' })),
    cell(4, {}, timeCell(t.last_fire_time, t.timezone)),
    cell(5, {}, t.last_status ? badge(t.last_status) : h('span', { class: 'muted', text: '—' })),
    cell(6, { class: 'num run-count' }, fmtNum(t.run_count)),
    cell(7, { class: 'figs wide' }, figuresCell(cachedFigures(t.task_id))),
    h('td', { class: 'actions' }, actionButtons(t, refresh, true)),
  );
}

function tasksTable(tasks: readonly TaskView[], p: ListParams, refresh: () => void): HTMLTableElement {
  const empty = p.state || p.name || p.tag || p.failing ? 'No task matches this filter.' : 'No tasks yet. Create one with "+ New task".';
  return h(
    'table',
    { id: 'tasks-table', class: 'cards-sm' },
    h('thead', {}, h('tr', {}, COLUMNS.map((c, i) => h('th', { class: i === 6 ? 'num' : '', text: c })))),
    h('tbody', {}, tasks.length ? tasks.map((t) => taskRow(t, refresh)) : h('tr', {}, h('td', { colspan: COLUMNS.length, class: 'empty', text: empty }))),
  );
}

const failuresOf = (t: TaskView): number => cachedFigures(t.task_id)?.stats?.failures ?? 0;

/** The page's tasks in the chosen order (the server's is by id). */
function sorted(tasks: TaskView[], sort: string): TaskView[] {
  if (sort === 'last_fire') return tasks.slice().sort((a, b) => (b.last_fire_time ?? -1) - (a.last_fire_time ?? -1));
  if (sort === 'failures') return tasks.slice().sort((a, b) => failuresOf(b) - failuresOf(a) || a.task_id.localeCompare(b.task_id));
  return tasks;
}

interface Loaded {
  tasks: TaskView[];
  next: string | null;
  /** Search: how many matched in all. */
  total?: number;
  /** Search: stopped at SEARCH_MAX. */
  capped?: boolean;
}

async function fetchPage(p: ListParams): Promise<Loaded> {
  const filter = { state: p.state, tag: p.tag, last_status: p.failing ? 'FAIL' : '' };
  if (!p.name) {
    const d = await api<TaskPage>('GET', `/xcron/listTasks${qs({ ...filter, limit: p.limit, cursor: p.cursor })}`);
    return { tasks: d.tasks ?? [], next: d.next_cursor };
  }
  const found: TaskView[] = [];
  let cursor = '';
  let read = 0;
  for (;;) {
    const d = await api<TaskPage>('GET', `/xcron/listTasks${qs({ ...filter, limit: 1000, cursor })}`);
    const got = d.tasks ?? [];
    read += got.length;
    for (const t of got) if (matches(t, p.name)) found.push(t);
    if (!d.next_cursor || read >= SEARCH_MAX) {
      const offset = Number(p.cursor) || 0;
      const size = Number(p.limit) || 50;
      return { tasks: found.slice(offset, offset + size), next: offset + size < found.length ? String(offset + size) : null, total: found.length, capped: !!d.next_cursor };
    }
    cursor = d.next_cursor;
  }
}

export function viewTasks(seq: number, params: Record<string, string>): void {
  const p: ListParams = { state: params.state || '', name: params.name || '', tag: params.tag || '', failing: params.failing || '', sort: params.sort || 'id', limit: params.limit || '50', cursor: params.cursor || '' };
  if (!p.cursor) S.listPrev = [];
  const go = (change: Partial<ListParams>): void => {
    location.hash = tasksHash({ ...p, ...change });
  };
  /** A new filter: back to the first page. */
  const refilter = (change: Partial<ListParams>): void => {
    S.listPrev = [];
    go({ ...change, cursor: '' });
  };
  const select = (id: string, label: string, values: [string, string][], cur: string, key: keyof ListParams): HTMLSelectElement => {
    const sel: HTMLSelectElement = h('select', { id, 'aria-label': label, onchange: (): void => refilter({ [key]: sel.value }) }, values.map(([v, text]) => h('option', { value: v, selected: v === cur, text })));
    return sel;
  };
  const stateSel = select('filter-state', 'state', [['', 'all states'], ['active', 'active'], ['paused', 'paused'], ['completed', 'completed']], p.state, 'state');
  const sortSel = select('sort', 'sort by', [['id', 'sort: id'], ['last_fire', 'sort: last fire'], ['failures', 'sort: failures']], p.sort, 'sort');
  const limitSel = select('filter-limit', 'page size', ['20', '50', '100', '200'].map((n) => [n, `${n} per page`]), p.limit, 'limit');
  const nameIn = h('input', { id: 'filter-name', type: 'search', placeholder: 'search name, id or URL', value: p.name, 'aria-label': 'search name, id or URL' });
  const tagIn = h('input', { id: 'filter-tag', type: 'search', placeholder: 'tag', value: p.tag, 'aria-label': 'tag', size: 10 });
  const failing = h('input', { type: 'checkbox', id: 'filter-failing', checked: !!p.failing, onchange: (): void => refilter({ failing: failing.checked ? '1' : '' }) });
  for (const [input, key] of [[nameIn, 'name'], [tagIn, 'tag']] as const) {
    let timer: number | undefined;
    input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => refilter({ [key]: input.value.trim() }), 400);
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter') return;
      clearTimeout(timer);
      refilter({ [key]: input.value.trim() });
    });
  }
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
  const body = h('div', { id: 'task-list' }, h('div', { class: 'empty', text: 'Loading…' }));
  const pager = h('div', { class: 'pager' });
  let figuresAsked = 0;

  const load = async (force = false): Promise<void> => {
    let data: Loaded;
    try {
      data = await fetchPage(p);
    } catch (e) {
      if (current(seq)) replace(body, errorBox(`Could not load tasks: ${errText(e)}`));
      return;
    }
    if (!current(seq)) return;
    const ids = data.tasks.map((t) => t.task_id);
    const missing = ids.filter((id) => !cachedFigures(id));
    if (p.sort === 'failures' && missing.length) await figuresOfAll(ids);
    if (!current(seq)) return;
    const draw = (): boolean => refreshInto(body, h('div', { class: 'table-wrap' }, tasksTable(sorted(data.tasks, p.sort), p, () => void load(true))), force);
    draw();
    // Figures come a few at a time; redraw once they are in (at most every 30 s per task).
    const ask = ++figuresAsked;
    void figuresOfAll(ids).then(() => {
      if (current(seq) && ask === figuresAsked && missing.length) draw();
    });
    const page = S.listPrev.length + 1;
    const next = data.next;
    const count = data.total !== undefined ? `${data.total} match${data.total === 1 ? '' : 'es'}${data.capped ? ` in the first ${SEARCH_MAX} tasks` : ''}` : `${data.tasks.length} task${data.tasks.length === 1 ? '' : 's'}`;
    refreshInto(pager, [
      h('button', { type: 'button', id: 'page-first', text: '« First', disabled: !p.cursor, onclick: () => refilter({}) }),
      h('button', { type: 'button', id: 'page-prev', text: '‹ Previous', disabled: !p.cursor, onclick: () => go({ cursor: S.listPrev.pop() || '' }) }),
      h('span', { class: 'muted', text: `page ${p.cursor && !S.listPrev.length ? '?' : page} · ${count}` }),
      h('button', {
        type: 'button',
        id: 'page-next',
        text: 'Next ›',
        disabled: !next,
        onclick: () => {
          S.listPrev.push(p.cursor);
          go({ cursor: next || '' });
        },
      }),
    ]);
  };

  setView(
    h('h1', {}, 'Tasks', h('a', { class: 'btn primary small', href: '#/new', text: '+ New task' })),
    h(
      'div',
      { class: 'row filters' },
      nameIn,
      stateSel,
      tagIn,
      h('label', {}, failing, ' failing only'),
      sortSel,
      limitSel,
      h('button', { type: 'button', text: 'Refresh', onclick: () => void load(true) }),
      h('label', {}, auto, ' auto-refresh'),
    ),
    bulkPanel(() => void load(true)),
    body,
    pager,
  );
  if (p.name) nameIn.setSelectionRange(p.name.length, p.name.length);
  every(5000, () => {
    if (auto.checked && !document.hidden) void load();
  });
  void load(true);
}
