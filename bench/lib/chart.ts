/**
 * Grouped bar charts as SVG, converted to PNG with `rsvg-convert` (Debian: librsvg2-bin) — no
 * browser. Each panel: groups on the x axis (e.g. workloads), one bar per series (e.g. system),
 * the value printed over each bar; optional log scale for figures spanning decades.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

export interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

export interface Panel {
  title: string;
  unit: string;
  groups: string[];
  series: Series[];
  log?: boolean;
  /** Optional dashed reference lines (e.g. a target). */
  refs?: { value: number; label: string }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function label(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number): string {
  const left = 64;
  const right = 12;
  const top = 30;
  const bottom = 44;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const all = p.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const refs = p.refs ?? [];
  const maxV = Math.max(...all, ...refs.map((r) => r.value), 0);
  let scale: (v: number) => number;
  const ticks: number[] = [];
  if (p.log) {
    const minPos = Math.min(...all.filter((v) => v > 0), ...refs.map((r) => r.value).filter((v) => v > 0), 1);
    const lo = 10 ** Math.floor(Math.log10(minPos * 0.99));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(maxV, lo * 10)));
    scale = (v) => (v <= 0 ? 0 : Math.max(0, (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph);
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    const hi = niceMax(maxV * 1.1);
    scale = (v) => (Math.max(0, v) / hi) * ph;
    for (let i = 0; i <= 5; i++) ticks.push((hi * i) / 5);
  }
  const out: string[] = [];
  out.push(`<g transform="translate(${x0},${y0})">`);
  out.push(`<text x="${w / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of ticks) {
    const y = top + ph - scale(t);
    out.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11" fill="#555">${label(t)}</text>`);
  }
  out.push(`<text x="14" y="${top + ph / 2}" font-size="11" fill="#555" transform="rotate(-90 14 ${top + ph / 2})" text-anchor="middle">${esc(p.unit)}${p.log ? ' (log)' : ''}</text>`);
  const gw = pw / Math.max(1, p.groups.length);
  const bw = Math.min(40, (gw * 0.8) / Math.max(1, p.series.length));
  p.groups.forEach((g, gi) => {
    const gx = left + gi * gw + (gw - bw * p.series.length) / 2;
    p.series.forEach((s, si) => {
      const v = s.values[gi];
      const x = gx + si * bw;
      if (v === null || v === undefined || !Number.isFinite(v)) {
        out.push(`<text x="${x + bw / 2}" y="${top + ph - 4}" text-anchor="middle" font-size="9" fill="#999">n/a</text>`);
        return;
      }
      const bh = scale(v);
      out.push(`<rect x="${x + 1}" y="${top + ph - bh}" width="${bw - 2}" height="${bh}" fill="${s.color}"/>`);
      out.push(`<text x="${x + bw / 2}" y="${top + ph - bh - 3}" text-anchor="middle" font-size="10">${label(v)}</text>`);
    });
    out.push(`<text x="${left + gi * gw + gw / 2}" y="${top + ph + 16}" text-anchor="middle" font-size="12">${esc(g)}</text>`);
  });
  for (const r of refs) {
    const y = top + ph - scale(r.value);
    out.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#c00" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${left + pw - 2}" y="${y - 3}" text-anchor="end" font-size="10" fill="#c00">${esc(r.label)}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#333"/>`);
  out.push('</g>');
  return out.join('\n');
}

/** An SVG with the panels in a grid (`cols` per row), a title, a legend and a footer line. */
export function chartSvg(title: string, footer: string, panels: Panel[], cols = 2): string {
  const pw = 460;
  const ph = 280;
  const rows = Math.ceil(panels.length / cols);
  const W = pw * cols + 20;
  const legendY = 44;
  const H = 64 + rows * ph + 30;
  const series = panels[0]?.series ?? [];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`);
  let lx = 20;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${legendY - 10}" width="12" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${legendY}" font-size="12">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 7.2;
  }
  panels.forEach((p, i) => out.push(panelSvg(p, 10 + (i % cols) * pw, 56 + Math.floor(i / cols) * ph, pw, ph)));
  out.push(`<text x="10" y="${H - 10}" font-size="10" fill="#555">${esc(footer)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** Writes the SVG next to the PNG and converts it; returns the PNG path, or null (with the reason). */
export function writeChart(svg: string, pngFile: string): { png: string | null; svg: string; error?: string } {
  const svgFile = pngFile.replace(/\.png$/, '.svg');
  writeFileSync(svgFile, svg);
  try {
    execFileSync('rsvg-convert', ['-f', 'png', '-o', pngFile, svgFile], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    return { png: pngFile, svg: svgFile };
  } catch (e) {
    return { png: null, svg: svgFile, error: `rsvg-convert failed (apt-get install librsvg2-bin): ${(e as Error).message.split('\n')[0] ?? ''}` };
  }
}
