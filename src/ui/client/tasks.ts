/** The task list: state filter, name-prefix search, page size, cursor paging and row actions. */
import { api, errText, qs } from './api.js';
import { h, replace } from './dom.js';
import { errorBox } from './flash.js';
import { fmtNum, schedText } from './format.js';
import { S } from './state.js';
import type { TaskPage, TaskView } from './types.js';
import { current, every, setView } from './view.js';
import { actionButtons, badge, timeCell } from './widgets.js';

interface ListParams {
  state: string;
  name: string;
  limit: string;
  cursor: string;
}

const tasksHash = (p: ListParams): string => `#/tasks${qs({ state: p.state, name: p.name, limit: p.limit, cursor: p.cursor })}`;

const COLUMNS = ['Name / id', 'Schedule', 'State', 'Next fire', 'Last fire', 'Last status', 'Runs', ''];

function taskRow(t: TaskView, refresh: () => void): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-task-id': t.task_id },
    h('td', {}, h('a', { href: `#/task/${encodeURIComponent(t.task_id)}`, class: 'task-link', text: t.name || t.task_id }), h('div', { class: 'sub mono', text: t.name ? t.task_id : '' })),
    h('td', {}, h('div', { class: 'mono ellipsis', title: t.format, text: schedText(t) }), h('div', { class: 'sub', text: (t.type === 1 ? 'cron · ' : 'one-shot · ') + t.timezone })),
    h('td', { class: 'state' }, badge(t.state)),
    h('td', {}, t.state === 'active' ? timeCell(t.next_fire_time) : h('span', { class: 'muted', text: t.state === 'paused' ? 'paused' : '—' })),
    h('td', {}, timeCell(t.last_fire_time)),
    h('td', {}, t.last_status ? badge(t.last_status) : h('span', { class: 'muted', text: '—' })),
    h('td', { class: 'num run-count', text: fmtNum(t.run_count) }),
    h('td', { class: 'actions' }, actionButtons(t, refresh, true)),
  );
}

function tasksTable(tasks: readonly TaskView[], p: ListParams, refresh: () => void): HTMLTableElement {
  const empty = p.state || p.name ? 'No task matches this filter.' : 'No tasks yet. Create one with "+ New task".';
  return h(
    'table',
    { id: 'tasks-table' },
    h('thead', {}, h('tr', {}, COLUMNS.map((c, i) => h('th', { class: i === 6 ? 'num' : '', text: c })))),
    h('tbody', {}, tasks.length ? tasks.map((t) => taskRow(t, refresh)) : h('tr', {}, h('td', { colspan: 8, class: 'empty', text: empty }))),
  );
}

export function viewTasks(seq: number, params: Record<string, string>): void {
  const p: ListParams = { state: params.state || '', name: params.name || '', limit: params.limit || '50', cursor: params.cursor || '' };
  if (!p.cursor) S.listPrev = [];
  const go = (change: Partial<ListParams>): void => {
    location.hash = tasksHash({ ...p, ...change });
  };
  /** A new filter: back to the first page. */
  const refilter = (change: Partial<ListParams>): void => {
    S.listPrev = [];
    go({ ...change, cursor: '' });
  };
  const stateSel: HTMLSelectElement = h(
    'select',
    { id: 'filter-state', 'aria-label': 'state', onchange: (): void => refilter({ state: stateSel.value }) },
    ['', 'active', 'paused', 'completed'].map((s) => h('option', { value: s, selected: s === p.state, text: s || 'all states' })),
  );
  const nameIn = h('input', { id: 'filter-name', type: 'search', placeholder: 'name starts with…', value: p.name, 'aria-label': 'name' });
  let nameTimer: number | undefined;
  nameIn.addEventListener('input', () => {
    clearTimeout(nameTimer);
    nameTimer = window.setTimeout(() => refilter({ name: nameIn.value.trim() }), 400);
  });
  nameIn.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    clearTimeout(nameTimer);
    refilter({ name: nameIn.value.trim() });
  });
  const limitSel: HTMLSelectElement = h(
    'select',
    { id: 'filter-limit', 'aria-label': 'page size', onchange: (): void => refilter({ limit: limitSel.value }) },
    ['20', '50', '100', '200'].map((n) => h('option', { value: n, selected: n === p.limit, text: `${n} per page` })),
  );
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
  const body = h('div', { id: 'task-list' }, h('div', { class: 'empty', text: 'Loading…' }));
  const pager = h('div', { class: 'pager' });

  const load = async (): Promise<void> => {
    let data: TaskPage;
    try {
      data = await api<TaskPage>('GET', `/xcron/listTasks${qs({ state: p.state, name: p.name, limit: p.limit, cursor: p.cursor })}`);
    } catch (e) {
      if (current(seq)) replace(body, errorBox(`Could not load tasks: ${errText(e)}`));
      return;
    }
    if (!current(seq)) return;
    const tasks = data.tasks || [];
    replace(body, h('div', { class: 'table-wrap' }, tasksTable(tasks, p, () => void load())));
    const page = S.listPrev.length + 1;
    const next = data.next_cursor;
    replace(pager, [
      h('button', { type: 'button', id: 'page-first', text: '« First', disabled: !p.cursor, onclick: () => refilter({}) }),
      h('button', { type: 'button', id: 'page-prev', text: '‹ Previous', disabled: !p.cursor, onclick: () => go({ cursor: S.listPrev.pop() || '' }) }),
      h('span', { class: 'muted', text: `page ${p.cursor && !S.listPrev.length ? '?' : page} · ${tasks.length} task${tasks.length === 1 ? '' : 's'}` }),
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
    h('div', { class: 'row' }, stateSel, nameIn, limitSel, h('button', { type: 'button', text: 'Refresh', onclick: () => void load() }), h('label', {}, auto, ' auto-refresh'), h('span', { class: 'spacer' })),
    body,
    pager,
  );
  nameIn.focus();
  if (p.name) nameIn.setSelectionRange(p.name.length, p.name.length);
  every(5000, () => {
    if (auto.checked && !document.hidden) void load();
  });
  void load();
}
