/**
 * Per-task figures: queryTask's `stats` (success rate, lateness and duration p50/p99 over the newest
 * retained runs) and a sparkline of the newest runs (bar height: duration; colour: outcome). The
 * task list shows them per row, fetched for the rows on screen, a few at a time, at most every 30 s.
 */
import { api, qs } from './api.js';
import { h, svg } from './dom.js';
import { fmtMs, fmtNum, pct } from './format.js';
import type { RunPage, RunView, TaskStats, TaskView } from './types.js';
import { card } from './widgets.js';

const W = 120;
const H = 28;

/** Newest runs (newest first) as bars, oldest on the left. */
export function sparkline(runs: readonly RunView[], label: string): SVGSVGElement {
  const shown = runs.slice(0, 30).reverse();
  const root = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const title = svg('title');
  title.textContent = label;
  root.appendChild(title);
  const max = Math.max(1, ...shown.map((r) => r.duration_ms ?? 0));
  const bw = W / 30;
  shown.forEach((r, i) => {
    const hgt = r.duration_ms === null ? 3 : Math.max(3, ((H - 2) * r.duration_ms) / max);
    const cls = r.status === 'SUCCESS' ? 'bar-ok' : r.status === 'FAIL' ? 'bar-fail' : 'bar-other';
    root.appendChild(svg('rect', { class: cls, x: (i * bw + 0.5).toFixed(1), y: (H - hgt).toFixed(1), width: (bw - 1).toFixed(1), height: hgt.toFixed(1) }));
  });
  return root;
}

export const sparkLabel = (runs: readonly RunView[]): string => {
  const n = Math.min(30, runs.length);
  const fails = runs.slice(0, 30).filter((r) => r.status === 'FAIL').length;
  return n ? `last ${n} runs: ${fails} failed` : 'no runs yet';
};

/** The detail page's figure cards. */
export function figureCards(s: TaskStats | undefined, runs: readonly RunView[]): HTMLElement {
  const st = s ?? {};
  const p = (v: { p50?: number | null; p99?: number | null } | undefined): string => `${fmtMs(v?.p50)} / ${fmtMs(v?.p99)}`;
  return h(
    'div',
    { class: 'figures', id: 'task-figures' },
    card('Success rate', pct(st.success_rate), st.failures ? 'bad' : st.successes ? 'ok' : '', 'fig-success'),
    card('Failures', fmtNum(st.failures ?? 0), st.failures ? 'bad' : '', 'fig-failures'),
    card('Lateness p50 / p99', p(st.lateness_ms), '', 'fig-lateness'),
    card('Duration p50 / p99', p(st.duration_ms), '', 'fig-duration'),
    h('div', { class: 'card' }, h('div', { class: 'label', text: 'Recent runs' }), sparkline(runs, sparkLabel(runs)), h('div', { class: 'sub small muted', text: sparkLabel(runs) })),
  );
}

export interface Figures {
  stats: TaskStats | undefined;
  runs: RunView[];
  at: number;
}

const cache = new Map<string, Figures>();
const TTL_MS = 30_000;

/** The task's figures, from the cache when younger than 30 s. */
export async function figuresOf(id: string): Promise<Figures> {
  const hit = cache.get(id);
  if (hit && Date.now() - hit.at < TTL_MS) return hit;
  const [t, page] = await Promise.all([api<TaskView>('GET', `/xcron/queryTask${qs({ task_id: id })}`), api<RunPage>('GET', `/xcron/taskRuns${qs({ task_id: id, limit: 30 })}`)]);
  const f: Figures = { stats: t.stats, runs: page.runs ?? [], at: Date.now() };
  cache.set(id, f);
  if (cache.size > 2000) cache.delete(cache.keys().next().value as string);
  return f;
}

export const cachedFigures = (id: string): Figures | undefined => cache.get(id);

/** Figures for many tasks, four requests at a time; a task that fails to load is left out. */
export async function figuresOfAll(ids: readonly string[]): Promise<Map<string, Figures>> {
  const out = new Map<string, Figures>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++]!;
      try {
        out.set(id, await figuresOf(id));
      } catch {
        // Deleted meanwhile, or unreachable: no figures for this row.
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return out;
}

/** The list's cell: success rate, p50 duration, failures, sparkline. */
export function figuresCell(f: Figures | undefined): Element[] {
  if (!f) return [h('span', { class: 'muted', text: '…' })];
  const s = f.stats ?? {};
  return [
    h('div', { class: 'fig-rate', text: `${pct(s.success_rate)} ok · ${fmtNum(s.failures ?? 0)} failed` }),
    h('div', { class: 'sub', text: `p50 ${fmtMs(s.duration_ms?.p50)} · late p99 ${fmtMs(s.lateness_ms?.p99)}` }),
    sparkline(f.runs, sparkLabel(f.runs)),
  ];
}
