/** Line charts in SVG for the overview (no library, no external assets). */
import { h, svg } from './dom.js';
import { clockTime } from './format.js';

/** [time ms, value]; a null value breaks the line. */
export type Point = readonly [number, number | null];

export interface Series {
  name: string;
  color: string;
  values: readonly Point[];
}

const W = 560;
const H = 170;
const L = 46;
const R = 10;
const T = 10;
const B = 22;

/** The axis maximum: 1, 2, 5 or 10 times a power of ten, at least `v`. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  const m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

const swatch = (color: string): HTMLElement => {
  const i = h('i');
  i.style.background = color;
  return i;
};

function legendOf(series: readonly Series[], unit: string): HTMLSpanElement {
  const legend = h('span', { class: 'legend' });
  for (const s of series) {
    let last: number | null = null;
    for (let i = s.values.length - 1; i >= 0; i--) {
      const v = s.values[i]?.[1];
      if (v !== null && v !== undefined) {
        last = v;
        break;
      }
    }
    const shown = last === null ? '—' : (Math.round(last * 100) / 100).toLocaleString() + (unit ? ` ${unit}` : '');
    legend.appendChild(h('span', {}, swatch(s.color), `${s.name}: ${shown}`));
  }
  return legend;
}

function text(attrs: Record<string, string | number>, content: string): SVGTextElement {
  const el = svg('text', attrs);
  el.textContent = content;
  return el;
}

/**
 * A chart of the series over the last minute at least (longer when the samples go back further), or
 * from `from` (ms) when given.
 */
export function lineChart(title: string, unit: string, series: readonly Series[], testid: string, from?: number): HTMLDivElement {
  const pts: [number, number][] = [];
  for (const s of series) for (const [t, v] of s.values) if (v !== null) pts.push([t, v]);
  const box = h('div', { class: 'chart', 'data-testid': testid }, h('div', { class: 'title' }, title, legendOf(series, unit)));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  const t1 = Date.now();
  let t0 = t1 - 60_000;
  if (from !== undefined) t0 = Math.min(t0, from);
  else if (pts.length) t0 = Math.min(t0, ...pts.map((p) => p[0]));
  const ymax = niceMax(pts.reduce((m, p) => Math.max(m, p[1]), 0));
  const x = (t: number): number => L + ((W - L - R) * (t - t0)) / Math.max(1, t1 - t0);
  const y = (v: number): number => T + (H - T - B) * (1 - v / ymax);
  for (const f of [0, 0.5, 1]) {
    const yy = y(ymax * f);
    root.appendChild(svg('line', { class: f === 0 ? 'axis' : 'grid', x1: L, x2: W - R, y1: yy, y2: yy }));
    root.appendChild(text({ x: L - 6, y: yy + 3.5, 'text-anchor': 'end' }, String(Math.round(ymax * f * 100) / 100)));
  }
  root.appendChild(text({ x: L, y: H - 6 }, clockTime(t0)));
  root.appendChild(text({ x: W - R, y: H - 6, 'text-anchor': 'end' }, clockTime(t1)));
  if (!pts.length) root.appendChild(text({ x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle' }, 'collecting samples…'));
  for (const s of series) {
    // Break the line where a value is missing.
    let seg: [number, number][] = [];
    const flush = (): void => {
      const first = seg[0];
      if (seg.length === 1 && first) root.appendChild(svg('circle', { cx: first[0], cy: first[1], r: 2, fill: s.color }));
      else if (seg.length > 1) root.appendChild(svg('polyline', { stroke: s.color, points: seg.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ') }));
      seg = [];
    };
    for (const [t, v] of s.values) {
      if (v === null) flush();
      else seg.push([x(t), y(v)]);
    }
    flush();
  }
  box.appendChild(root);
  return box;
}

export interface BarDay {
  date: string;
  values: Record<string, number>;
}

/** Stacked bars per day (the daily report): one bar per day, one colour class per key. */
export function stackedBars(title: string, days: readonly BarDay[], keys: readonly { key: string; label: string; color: string }[], testid: string): HTMLDivElement {
  const totals = keys.map((k) => days.reduce((s, d) => s + (d.values[k.key] ?? 0), 0));
  const legend = h(
    'span',
    { class: 'legend' },
    keys.map((k, i) => h('span', {}, swatch(k.color), `${k.label}: ${(totals[i] ?? 0).toLocaleString()}`)),
  );
  const box = h('div', { class: 'chart', 'data-testid': testid }, h('div', { class: 'title' }, title, legend));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${title}: ${keys.map((k, i) => `${k.label} ${totals[i] ?? 0}`).join(', ')}`, class: 'bars' });
  const ymax = niceMax(days.reduce((m, d) => Math.max(m, keys.reduce((s, k) => s + (d.values[k.key] ?? 0), 0)), 0));
  const y = (v: number): number => T + (H - T - B) * (1 - v / ymax);
  for (const f of [0, 0.5, 1]) {
    const yy = y(ymax * f);
    root.appendChild(svg('line', { class: f === 0 ? 'axis' : 'grid', x1: L, x2: W - R, y1: yy, y2: yy }));
    root.appendChild(text({ x: L - 6, y: yy + 3.5, 'text-anchor': 'end' }, String(Math.round(ymax * f * 100) / 100)));
  }
  const slot = (W - L - R) / Math.max(1, days.length);
  days.forEach((d, i) => {
    let base = 0;
    const x = L + i * slot + slot * 0.15;
    for (const k of keys) {
      const v = d.values[k.key] ?? 0;
      if (v > 0) {
        const rect = svg('rect', { class: k.key, x: x.toFixed(1), y: y(base + v).toFixed(1), width: (slot * 0.7).toFixed(1), height: Math.max(0.5, y(base) - y(base + v)).toFixed(1) });
        const tip = svg('title');
        tip.textContent = `${d.date}: ${v} ${k.label}`;
        rect.appendChild(tip);
        root.appendChild(rect);
      }
      base += v;
    }
  });
  const first = days[0];
  const last = days[days.length - 1];
  if (first) root.appendChild(text({ x: L, y: H - 6 }, first.date));
  if (last && last !== first) root.appendChild(text({ x: W - R, y: H - 6, 'text-anchor': 'end' }, last.date));
  if (!days.length) root.appendChild(text({ x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no report yet'));
  box.appendChild(root);
  return box;
}
