/** The task page: facts, actions, the next fire times, and the runs (refreshed every 3 s). */
import { api, errText, qs, statusOf } from './api.js';
import { byId, h, replace, type Child } from './dom.js';
import { errorBox } from './flash.js';
import { fmtTime, json, oneShotMs, rel } from './format.js';
import { runsPanel } from './runs.js';
import type { Fires, TaskView } from './types.js';
import { current, every, setView } from './view.js';
import { act, actionButtons, badge, confirmButton, timeCell } from './widgets.js';

type Fact = [string, Child];

/** Short facts, shown two to a line. */
function shortFacts(t: TaskView): Fact[] {
  const rows: Fact[] = [
    ['Task id', h('code', { text: t.task_id })],
    ['Type', t.type === 1 ? 'periodic (cron)' : 'one-shot'],
    ['Schedule', h('code', { text: t.format })],
    ['Timezone', t.timezone],
    ['Runs', h('span', { id: 'task-run-count', text: String(t.run_count) })],
    ['Last status', t.last_status ? badge(t.last_status) : '—'],
    ['Last fire', timeCell(t.last_fire_time)],
    ['Created', fmtTime(Number(t.create_time) * 1000)],
    ['Timeout', t.timeout_ms ? `${t.timeout_ms} ms` : 'server default'],
    ['Misfire / overlap', `${t.misfire} / ${t.overlap}`],
    ['Retry', t.retry ? `${t.retry.max_attempts} attempts, backoff ${t.retry.backoff_ms}–${t.retry.max_backoff_ms} ms` : 'server default'],
  ];
  if (t.type === 2) rows.push(['Fires at', fmtTime(oneShotMs(t.format))]);
  if (t.max_consecutive_failures !== undefined) rows.push(['Auto-pause after', `${t.max_consecutive_failures} failures`]);
  return rows;
}

/** The wide ones (callback, bodies, lists), across the panel. */
function wideFacts(t: TaskView): Fact[] {
  const cb = t.callback;
  const wide: Fact[] = [['Callback', h('code', { text: `${cb.method || 'POST'} ${cb.url}` })]];
  if (t.start_time || t.end_time) wide.push(['Window', `${t.start_time ? fmtTime(t.start_time) : 'open'} → ${t.end_time ? fmtTime(t.end_time) : 'open'}`]);
  if (cb.urls) wide.push(['Targets', h('div', {}, h('div', { class: 'muted small', text: `route: ${cb.route || 'failover'}` }), cb.urls.map((u) => h('div', { class: 'mono', text: u })))]);
  if (cb.headers) wide.push(['Headers', h('pre', { text: json(cb.headers) })]);
  wide.push(['Body', h('pre', { class: 'body', text: json(cb.body || {}) })]);
  if (t.on_success) wide.push(['On success', t.on_success.map((c) => h('div', {}, h('a', { href: `#/task/${encodeURIComponent(c)}`, class: 'mono', text: c })))]);
  if (t.alert_url) wide.push(['Alert URL', h('code', { text: t.alert_url })]);
  if (t.idempotency_key) wide.push(['Idempotency key', h('code', { text: t.idempotency_key })]);
  return wide;
}

const factList = (t: TaskView): HTMLElement =>
  h(
    'dl',
    { class: 'kv' },
    shortFacts(t).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]),
    wideFacts(t).map(([k, v]) => [h('dt', { class: 'wide', text: k }), h('dd', { class: 'wide' }, v)]),
  );

/** The next five fire times, or why there are none. */
async function firesContent(t: TaskView): Promise<Child> {
  if (t.state === 'completed') return h('span', { class: 'muted', text: 'Completed: this one-shot task has fired and will not fire again.' });
  if (t.next_fire_time === null || t.next_fire_time === undefined) return h('span', { class: 'muted', text: 'No fire time left in the schedule.' });
  const pausedPeriodic = t.state === 'paused' && t.type === 1;
  const note =
    t.state === 'paused'
      ? h('p', {
          class: 'muted small',
          text: pausedPeriodic
            ? 'Paused: nothing fires until the task is resumed. Resumed now, it would fire at:'
            : 'Paused: nothing fires until the task is resumed (a one-shot keeps its time; if that has passed it fires at once).',
        })
      : null;
  try {
    // Active: the stored next fire and what follows it. Paused periodic: resuming recomputes from then.
    const query = qs({
      type: t.type,
      format: t.format,
      timezone: t.timezone,
      from: t.type === 1 && !pausedPeriodic ? t.next_fire_time : '',
      start: pausedPeriodic ? t.start_time || '' : '',
      end: t.end_time || '',
      count: 5,
    });
    const data = await api<Fires>('GET', `/ui/api/next-fires${query}`);
    return [
      note,
      h('ol', { class: 'fires', id: 'next-fire-list' }, data.times.map((ms) => h('li', { title: new Date(ms).toISOString() }, fmtTime(ms), ' ', h('span', { class: 'muted small', text: rel(ms) })))),
      h('p', { class: 'muted small', text: `Shown in this browser's time zone; the task evaluates its schedule in ${t.timezone}.` }),
    ];
  } catch {
    return [note, h('div', {}, 'Next fire: ', fmtTime(t.next_fire_time), ' ', h('span', { class: 'muted small', text: rel(t.next_fire_time) }))];
  }
}

export function viewTask(seq: number, id: string, params: Record<string, string>): void {
  const head = h('h1', {}, h('span', { text: id }));
  const info = h('div', { class: 'panel', id: 'task-info' }, h('span', { class: 'muted', text: 'Loading…' }));
  const fires = h('div', { class: 'panel', id: 'next-fires' }, h('span', { class: 'muted', text: '…' }));
  const runsBox = h('div', { id: 'runs' }, h('div', { class: 'empty', text: 'Loading runs…' }));
  const runsPager = h('div', { class: 'pager' });
  const live = h('input', { type: 'checkbox', id: 'runs-live', checked: true });
  setView(
    head,
    h('div', { class: 'row', id: 'task-actions' }),
    h('div', { class: 'grid2' }, h('div', {}, h('h2', { text: 'Task' }), info), h('div', {}, h('h2', { text: 'Next fire times' }), fires)),
    h('div', { class: 'row' }, h('h2', { text: 'Runs' }), h('span', { class: 'muted small', text: 'newest first' }), h('span', { class: 'spacer' }), h('label', {}, live, ' live (refresh every 3 s)')),
    runsBox,
    runsPager,
  );
  const loadRuns = runsPanel(seq, id, runsBox, runsPager, live, params.runs || '');
  let lastFiresKey = '';
  let actionsKey = '';

  const loadFires = async (t: TaskView): Promise<void> => {
    const key = [t.state, t.type, t.format, t.timezone, t.state === 'paused' ? Math.floor(Date.now() / 10_000) : t.next_fire_time, t.end_time].join('|');
    if (key === lastFiresKey) return;
    lastFiresKey = key;
    const content = await firesContent(t);
    if (current(seq)) replace(fires, content);
  };

  const renderActions = (t: TaskView): void => {
    if (actionsKey === t.state) return;
    actionsKey = t.state;
    replace(byId('task-actions'), [
      h('a', { class: 'btn', href: `#/edit/${encodeURIComponent(t.task_id)}`, id: 'edit-task', text: 'Edit' }),
      actionButtons(t, refreshAll, false),
      confirmButton('Delete', 'Click again to delete', () =>
        act('delete', t.task_id, () => {
          location.hash = '#/tasks';
        }), { 'data-action': 'delete' }),
      h('span', { class: 'spacer' }),
      h('a', { href: '#/tasks', text: '← all tasks' }),
    ]);
  };

  const loadTask = async (): Promise<void> => {
    let t: TaskView;
    try {
      t = await api<TaskView>('GET', `/xcron/queryTask${qs({ task_id: id })}`);
    } catch (e) {
      if (current(seq)) replace(info, errorBox(statusOf(e) === 404 ? `Task ${id} does not exist (deleted?).` : errText(e)));
      return;
    }
    if (!current(seq)) return;
    replace(head, [h('span', { text: t.name || t.task_id }), h('span', { id: 'task-state' }, badge(t.state))]);
    renderActions(t);
    replace(info, factList(t));
    void loadFires(t);
  };

  function refreshAll(): void {
    void loadTask();
    void loadRuns();
  }
  every(3000, () => {
    if (live.checked && !document.hidden) refreshAll();
  });
  refreshAll();
}
