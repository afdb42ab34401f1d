/** The overview page: stat cards, activity charts from the stats samples, and run counts. */
import { lineChart, type Point } from './charts.js';
import { byId, h, replace } from './dom.js';
import { fmtMs, fmtNum } from './format.js';
import { S, type Sample } from './state.js';
import { POLL_MS } from './stats.js';
import type { Percentiles, Stats } from './types.js';
import { current, onStats, setView } from './view.js';
import { badge, card } from './widgets.js';

const pick = (k: 'rFired' | 'rOk' | 'rFail' | 'rMiss'): Point[] => S.samples.map((s: Sample) => [s.t, s[k] ?? null]);
const latPick = (k: keyof Percentiles): Point[] => S.samples.map((s: Sample) => [s.t, s.lat[k] ?? null]);

const pair = (p: Percentiles | undefined): string => (p ? `${fmtMs(p.p50)} / ${fmtMs(p.p99)}` : '—');

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

export function viewOverview(seq: number): void {
  const cards = h('div', { class: 'cards', id: 'stat-cards' });
  const charts = h('div', { class: 'grid3', id: 'charts' });
  const runs = h('div');
  setView(
    h('h1', {}, 'Overview', h('span', { class: 'muted small', id: 'stats-node' })),
    cards,
    h('h2', {}, 'Activity ', h('span', { class: 'muted small', text: `(sampled every ${POLL_MS / 1000} s while this page is open; rates per minute)` })),
    charts,
    runs,
  );
  const draw = (): void => {
    if (!current(seq)) return;
    const st = S.lastStats;
    if (!st) replace(cards, h('div', { class: 'muted', text: S.up === false ? 'The server is not reachable.' : 'Loading…' }));
    else {
      byId('stats-node').textContent = `node ${st.node}`;
      replace(cards, statCards(st));
    }
    replace(charts, [
      lineChart('Fires', '/min', [{ name: 'fired', color: '#2457c5', values: pick('rFired') }, { name: 'succeeded', color: '#1f8a4c', values: pick('rOk') }], 'chart-fires'),
      lineChart('Failures', '/min', [{ name: 'failed', color: '#c43d3d', values: pick('rFail') }, { name: 'skipped+missed', color: '#a86a00', values: pick('rMiss') }], 'chart-failures'),
      lineChart('Fire lateness', 'ms', [{ name: 'p50', color: '#2457c5', values: latPick('p50') }, { name: 'p99', color: '#c43d3d', values: latPick('p99') }], 'chart-lateness'),
    ]);
    replace(runs, st && st.runs ? storeRuns(st.runs) : null);
  };
  onStats(draw);
  draw();
}
