/**
 * The task page: facts, figures, actions, the next fire times, the runs and a run's log (refreshed
 * every 3 s without losing focus, selection or scroll).
 */
import { api, errText, qs, statusOf } from './api.js';
import { byId, h, replace, type Child } from './dom.js';
import { figureCards } from './figures.js';
import { errorBox } from './flash.js';
import { fmtTime, inZone, json, oneShotMs, rel } from './format.js';
import { refreshInto } from './keep.js';
import { showRunLog } from './runlog.js';
import { runsPanel } from './runs.js';
import { toggleTriggerForm } from './trigger.js';
import type { Fires, RunView, TaskView } from './types.js';
import { current, every, setTitle, setView } from './view.js';
import { act, actionButtons, badge, confirmButton, tagChips, timeCell } from './widgets.js';

type Fact = [string, Child];

/** Short facts, shown two to a line. */
function shortFacts(t: TaskView): Fact[] {
  const rows: Fact[] = [
    ['Task id', h('code', { text: t.task_id })],
    ['Type', t.type === 1 ? 'periodic (cron)' : 'one-shot'],
    ['Schedule', h('span', {}, h('code', { text: t.format }), t.description ? h('div', { class: 'small', id: 'task-description', text: t.description }) : null)],
    ['Timezone', t.timezone],
    ['Runs', h('span', { id: 'task-run-count', text: String(t.run_count) })],
    ['Last status', t.last_status ? badge(t.last_status) : '—'],
    ['Last fire', timeCell(t.last_fire_time, t.timezone)],
    ['Created', timeCell(Number(t.create_time) * 1000, t.timezone)],
    ['Completion', t.completion === 'async' ? `async (report within ${t.async_timeout_ms ? `${t.async_timeout_ms} ms` : 'the server default'})` : 'sync'],
    ['Timeout', t.timeout_ms ? `${t.timeout_ms} ms` : 'server default'],
    ['Misfire / overlap', `${t.misfire} / ${t.overlap}`],
    ['Retry', t.retry ? `${t.retry.max_attempts} attempts, backoff ${t.retry.backoff_ms}–${t.retry.max_backoff_ms} ms` : 'server default'],
  ];
  if (t.type === 2) rows.push(['Fires at', timeCell(oneShotMs(t.format), t.timezone)]);
  if (t.tags && t.tags.length) rows.push(['Tags', h('span', { id: 'task-tags' }, tagChips(t.tags))]);
  if (t.jitter_ms) rows.push(['Jitter', `up to ${t.jitter_ms} ms after each tick`]);
  if (t.flow_key) rows.push(['Flow limit', h('code', { text: t.flow_key })]);
  if (t.flow) rows.push(['Flow limit', [t.flow.rate ? `${t.flow.rate} per ${t.flow.period_ms} ms` : '', t.flow.parallelism ? `${t.flow.parallelism} in flight` : ''].filter(Boolean).join(', ')]);
  if (t.max_consecutive_failures !== undefined) rows.push(['Auto-pause after', `${t.max_consecutive_failures} failures`]);
  return rows;
}

/** The wide ones (callback, bodies, lists), across the panel. */
function wideFacts(t: TaskView): Fact[] {
  const cb = t.callback;
  const to = cb.target ? `queue target ${cb.target}${cb.key ? ` (key ${cb.key})` : ''}` : cb.executor !== undefined ? `${cb.method || 'POST'} executor group ${cb.executor} (route: ${cb.route || 'round_robin'})` : `${cb.method || 'POST'} ${cb.url ?? ''}`;
  const wide: Fact[] = [['Callback', h('code', { id: 'task-callback', text: to })]];
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
      h(
        'ol',
        { class: 'fires', id: 'next-fire-list' },
        data.times.map((ms) => {
          const z = inZone(ms, t.timezone);
          return h('li', { title: new Date(ms).toISOString() }, fmtTime(ms), z ? ' local' : '', ' ', h('span', { class: 'muted small', text: rel(ms) }), z ? h('div', { class: 'zone', text: z }) : null);
        }),
      ),
      h('p', { class: 'muted small', text: `Local time of this browser; the task evaluates its schedule in ${t.timezone}.` }),
    ];
  } catch {
    return [note, h('div', {}, 'Next fire: ', fmtTime(t.next_fire_time), ' ', h('span', { class: 'muted small', text: rel(t.next_fire_time) }))];
  }
}

/**
 * Why a paused task is paused: the reason stored with the pause (an operator's note and who, or the
 * auto-pause reason); for a task paused before reasons were stored, what its runs show (its newest
 * finished runs all failed, as many as its max_consecutive_failures).
 */
export function pauseReason(t: TaskView, runs: readonly RunView[]): HTMLElement | null {
  if (t.state !== 'paused') return null;
  const box = (...c: Child[]): HTMLElement => h('div', { class: 'note', id: 'pause-reason', role: 'status' }, ...c);
  const p = t.pause;
  if (p) {
    const when = h('span', { title: new Date(p.at).toISOString(), text: `${fmtTime(p.at)} (${rel(p.at)})` });
    if (p.kind === 'auto') return box(h('span', { class: 'badge auto', text: 'auto-paused' }), ' ', when, ': ', h('span', { id: 'pause-text', text: p.note ?? '' }), '. Fix the cause, retry the failed run, then resume.');
    return box(`Paused${p.by ? ` by ${p.by}` : ''} `, when, p.note ? [': ', h('span', { id: 'pause-text', text: p.note })] : ' (no note).');
  }
  const limit = t.max_consecutive_failures;
  if (!limit) return null;
  const finished = runs.filter((r) => r.status === 'SUCCESS' || r.status === 'FAIL');
  const lastN = finished.slice(0, limit);
  if (lastN.length < limit || !lastN.every((r) => r.status === 'FAIL')) return null;
  const err = lastN[0]?.error;
  return box(`Auto-paused: the last ${limit} run${limit === 1 ? '' : 's'} failed in a row (the task's limit is ${limit}).`, err ? [' Last error: ', h('code', { text: err })] : null, ' Fix the cause, retry the failed run, then resume.');
}

export function viewTask(seq: number, id: string, params: Record<string, string>): void {
  const head = h('h1', {}, h('span', { text: id }));
  const info = h('div', { class: 'panel', id: 'task-info' }, h('span', { class: 'muted', text: 'Loading…' }));
  const figures = h('div', { id: 'figures-box' });
  const reason = h('div', { id: 'reason-box' });
  const fires = h('div', { class: 'panel', id: 'next-fires' }, h('span', { class: 'muted', text: '…' }));
  const runsBox = h('div', { id: 'runs' }, h('div', { class: 'empty', text: 'Loading runs…' }));
  const runsPager = h('div', { class: 'pager' });
  const triggerBox = h('div', { id: 'trigger-box', hidden: true });
  const logBox = h('div', { id: 'run-log', hidden: true });
  const live = h('input', { type: 'checkbox', id: 'runs-live', checked: true });
  setView(
    head,
    h('div', { class: 'row', id: 'task-actions' }),
    triggerBox,
    reason,
    h('div', { class: 'grid2' }, h('div', {}, h('h2', { text: 'Task' }), info), h('div', {}, h('h2', { text: 'Figures' }), figures, h('h2', { text: 'Next fire times' }), fires)),
    h('div', { class: 'row' }, h('h2', { text: 'Runs' }), h('span', { class: 'muted small', text: 'newest first' }), h('span', { class: 'spacer' }), h('label', {}, live, ' live (refresh every 3 s)')),
    runsBox,
    runsPager,
    logBox,
  );
  let task: TaskView | null = null;
  let newestRuns: RunView[] = [];
  const drawExtras = (): void => {
    if (!task || !current(seq)) return;
    refreshInto(figures, figureCards(task.stats, newestRuns));
    refreshInto(reason, pauseReason(task, newestRuns));
  };
  const openLog = (runId: string): void => {
    showRunLog(seq, logBox, runId, () => undefined);
    logBox.scrollIntoView({ block: 'nearest' });
  };
  const actions = { showLog: openLog, refresh: () => refreshAll(), timezone: undefined as string | undefined, async: false };
  const loadRuns = runsPanel(seq, id, runsBox, runsPager, live, params.runs || '', actions, (runs, newest) => {
    if (!newest) return;
    newestRuns = runs;
    drawExtras();
  });
  if (params.log) openLog(params.log);
  let lastFiresKey = '';
  let actionsKey = '';

  const loadFires = async (t: TaskView): Promise<void> => {
    const key = [t.state, t.type, t.format, t.timezone, t.state === 'paused' ? Math.floor(Date.now() / 10_000) : t.next_fire_time, t.end_time].join('|');
    if (key === lastFiresKey) return;
    lastFiresKey = key;
    const content = await firesContent(t);
    if (current(seq)) refreshInto(fires, content);
  };

  const renderActions = (t: TaskView): void => {
    if (actionsKey === t.state) return;
    actionsKey = t.state;
    // A note for the pause (optional), kept with it and shown while the task is paused.
    const note = t.state === 'active' ? h('input', { id: 'pause-note', class: 'pause-note', 'aria-label': 'pause note (optional)', placeholder: 'pause note (optional)', maxlength: 500 }) : null;
    refreshInto(byId('task-actions'), [
      h('a', { class: 'btn', href: `#/edit/${encodeURIComponent(t.task_id)}`, id: 'edit-task', text: 'Edit' }),
      h('a', { class: 'btn', href: `#/new?clone=${encodeURIComponent(t.task_id)}`, id: 'clone-task', text: 'Clone' }),
      actionButtons(t, refreshAll, false, note ?? undefined),
      note,
      h('button', { type: 'button', 'data-action': 'trigger-body', text: 'Trigger with a body…', onclick: () => task && toggleTriggerForm(triggerBox, task, refreshAll) }),
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
    task = t;
    actions.timezone = t.timezone;
    actions.async = t.completion === 'async';
    if (!head.querySelector('#task-state') || head.textContent !== `${t.name || t.task_id}${t.state}`) {
      replace(head, [h('span', { text: t.name || t.task_id }), h('span', { id: 'task-state' }, badge(t.state))]);
      setTitle(`Task ${t.name || t.task_id}`);
    }
    renderActions(t);
    refreshInto(info, factList(t));
    drawExtras();
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
