/**
 * The overview page: stat cards, recent failures (with Retry), activity charts, the daily report
 * and run counts. The charts draw from the server's run history (so they are full on load), with
 * the live stats samples as a fallback when that history cannot be read.
 */
import { errText } from './api.js';
import { lineChart, stackedBars, type Point } from './charts.js';
import { byId, h } from './dom.js';
import { errorBox } from './flash.js';
import { fmtMs, fmtNum } from './format.js';
import { HISTORY_MINUTES, fetchActivity, fetchFailures, fetchReport, type Activity } from './history.js';
import { refreshInto } from './keep.js';
import { retryRun } from './runs.js';
import { S, type Sample } from './state.js';
import { POLL_MS } from './stats.js';
import type { Percentiles, ReportDay, RunView, Stats } from './types.js';
import { current, every, onStats, setView } from './view.js';
import { badge, card, timeCell } from './widgets.js';

const pick = (k: 'rFired' | 'rOk' | 'rFail' | 'rMiss'): Point[] => S.samples.map((s: Sample) => [s.t, s[k] ?? null]);
const latPick = (k: keyof Percentiles): Point[] => S.samples.map((s: Sample) => [s.t, s.lat[k] ?? null]);

const pair = (p: Percentiles | undefined): string => (p ? `${fmtMs(p.p50)} / ${fmtMs(p.p99)}` : '—');

const REPORT_DAYS = 14;

function statCards(st: Stats): HTMLDivElement[] {
  const live = st.live ?? {};
  const tasks = st.tasks ?? {};
  return [
    card('Active tasks', fmtNum(tasks.active || 0), '', 'stat-active'),
    card('Paused tasks', fmtNum(tasks.paused || 0), '', 'stat-paused'),
    card('Completed one-shots', fmtNum(tasks.completed || 0)),
    card('Fired (since start)', fmtNum(live.fired || 0), '', 'stat-fired'),
    card('Succeeded', fmtNum(live.succeeded || 0), 'ok'),
    card('Failed', fmtNum(live.failed || 0), live.failed ? 'bad' : '', 'stat-failed'),
    card('Skipped / missed', fmtNum(`${live.skipped || 0} / ${live.missed || 0}`)),
    card('Success rate', live.success_rate === null || live.success_rate === undefined ? '—' : `${(live.success_rate * 100).toFixed(1)} %`),
    card('Lateness p50 / p99', pair(live.lateness_ms)),
    card('Callback p50 / p99', pair(live.callback_latency_ms)),
  ];
}

function storeRuns(runs: Record<string, number>): HTMLElement[] {
  const keys = Object.keys(runs);
  return [
    h('h2', { text: 'Run history in the store' }),
    h('div', { class: 'row', id: 'store-runs' }, keys.length ? keys.map((k) => h('span', {}, badge(k), ' ', fmtNum(runs[k]))) : h('span', { class: 'muted', text: 'no runs recorded yet' })),
  ];
}

function failureItem(r: RunView, refresh: () => void): HTMLLIElement {
  const id = r.task_id ?? r.run_id.split(':')[0] ?? '';
  return h(
    'li',
    { 'data-run-id': r.run_id },
    h('a', { class: 'failure-task', href: `#/task/${encodeURIComponent(id)}`, text: r.task_name || id }),
    ' ',
    badge(r.status),
    ' ',
    h('span', { class: 'small' }, timeCell(r.scheduled_time)),
    h('div', { class: 'err small', text: r.error || '(no error message)' }),
    r.retried_by
      ? h('div', { class: 'muted small', text: `retried as ${r.retried_by}` })
      : h('button', { type: 'button', class: 'small', 'data-action': 'retry-run', text: 'Retry', onclick: () => retryRun(r.run_id, refresh) }),
  );
}

function failuresPanel(runs: RunView[] | Error, refresh: () => void): HTMLElement {
  if (runs instanceof Error) return errorBox(`Could not load recent failures: ${errText(runs)}`);
  if (!runs.length) return h('p', { class: 'muted', text: 'No failed runs in the store.' });
  return h('ul', { class: 'failures', id: 'failure-list' }, runs.map((r) => failureItem(r, refresh)));
}

const reportBars = (days: ReportDay[]): HTMLDivElement =>
  stackedBars(
    `Daily runs (last ${REPORT_DAYS} days, UTC)`,
    days.map((d) => ({ date: d.date, values: { success: d.success, fail: d.fail, skipped: d.skipped, missed: d.missed } })),
    [
      { key: 'success', label: 'success', color: '#2f9a5c' },
      { key: 'fail', label: 'fail', color: '#a8302f' },
      { key: 'skipped', label: 'skipped', color: '#c98a1a' },
      { key: 'missed', label: 'missed', color: '#8a94a1' },
    ],
    'chart-report',
  );

function activityCharts(a: Activity | null): HTMLDivElement[] {
  const src = a
    ? { fired: a.fired, ok: a.ok, fail: a.fail, miss: a.miss, p50: a.p50, p99: a.p99, unit: '/min', from: a.from }
    : { fired: pick('rFired'), ok: pick('rOk'), fail: pick('rFail'), miss: pick('rMiss'), p50: latPick('p50'), p99: latPick('p99'), unit: '/min', from: undefined };
  return [
    lineChart('Fires', src.unit, [{ name: 'fired', color: '#2457c5', values: src.fired }, { name: 'succeeded', color: '#17703d', values: src.ok }], 'chart-fires', src.from),
    lineChart('Failures', src.unit, [{ name: 'failed', color: '#a8302f', values: src.fail }, { name: 'skipped+missed', color: '#875500', values: src.miss }], 'chart-failures', src.from),
    lineChart('Fire lateness', 'ms', [{ name: 'p50', color: '#2457c5', values: src.p50 }, { name: 'p99', color: '#a8302f', values: src.p99 }], 'chart-lateness', src.from),
  ];
}

export function viewOverview(seq: number): void {
  const cards = h('div', { class: 'cards', id: 'stat-cards' });
  const failures = h('div', { id: 'recent-failures' }, h('p', { class: 'muted', text: 'Loading…' }));
  const charts = h('div', { class: 'grid3', id: 'charts' });
  const chartNote = h('span', { class: 'muted small', id: 'chart-source' });
  const report = h('div', { id: 'report' });
  const runs = h('div');
  setView(
    h('h1', {}, 'Overview', h('span', { class: 'muted small', id: 'stats-node' })),
    cards,
    h('h2', { text: 'Recent failures' }),
    h('div', { class: 'panel' }, failures, h('p', { class: 'small' }, h('a', { href: '#/tasks?failing=1', text: 'All failing tasks →' }))),
    h('h2', {}, 'Activity ', chartNote),
    charts,
    h('h2', { text: 'Daily report' }),
    report,
    runs,
  );
  let activity: Activity | null = null;
  let historyOk = true;
  const drawCharts = (): void => {
    if (!current(seq)) return;
    chartNote.textContent = activity
      ? `(per minute over the last ${HISTORY_MINUTES} min, from ${activity.runs} run record${activity.runs === 1 ? '' : 's'} in the store)`
      : `(sampled every ${POLL_MS / 1000} s while this page is open; rates per minute)`;
    refreshInto(charts, activityCharts(activity));
  };
  const draw = (): void => {
    if (!current(seq)) return;
    const st = S.lastStats;
    if (!st) refreshInto(cards, h('div', { class: 'muted', text: S.up === false ? 'The server is not reachable.' : 'Loading…' }));
    else {
      byId('stats-node').textContent = `node ${st.node}`;
      refreshInto(cards, statCards(st));
    }
    if (!historyOk) drawCharts();
    refreshInto(runs, st && st.runs ? storeRuns(st.runs) : null);
  };
  const loadHistory = async (): Promise<void> => {
    const [fails, act, rep] = await Promise.allSettled([fetchFailures(8), fetchActivity(), fetchReport(REPORT_DAYS)]);
    if (!current(seq)) return;
    refreshInto(failures, failuresPanel(fails.status === 'fulfilled' ? fails.value : new Error(errText(fails.reason)), () => void loadHistory()));
    historyOk = act.status === 'fulfilled';
    activity = act.status === 'fulfilled' ? act.value : null;
    drawCharts();
    refreshInto(report, rep.status === 'fulfilled' ? reportBars(rep.value) : errorBox(`Could not load the daily report: ${errText(rep.reason)}`));
  };
  onStats(draw);
  draw();
  void loadHistory();
  every(10_000, () => {
    if (!document.hidden) void loadHistory();
  });
}
