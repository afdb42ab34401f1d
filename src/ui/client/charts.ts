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

/** A chart of the series over the last minute at least (longer when the samples go back further). */
export function lineChart(title: string, unit: string, series: readonly Series[], testid: string): HTMLDivElement {
  const pts: [number, number][] = [];
  for (const s of series) for (const [t, v] of s.values) if (v !== null) pts.push([t, v]);
  const box = h('div', { class: 'chart', 'data-testid': testid }, h('div', { class: 'title' }, title, legendOf(series, unit)));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  const t1 = Date.now();
  let t0 = t1 - 60_000;
  if (pts.length) t0 = Math.min(t0, ...pts.map((p) => p[0]));
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
