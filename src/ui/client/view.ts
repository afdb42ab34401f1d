/**
 * The current view's plumbing: its sequence number (a view drawn by a stale request checks
 * `current(seq)` and stops), its timers, its stats listener, and how it fills the page.
 */
import { byId, replace, type Child } from './dom.js';

let seqNow = 0;
let timers: number[] = [];
let statsListener: (() => void) | null = null;
let router: () => void = () => undefined;

/** Stops the previous view's timers and listener; returns the new view's sequence number. */
export function resetView(): number {
  for (const t of timers) clearInterval(t);
  timers = [];
  statsListener = null;
  seqNow++;
  return seqNow;
}

/** True while the view numbered `seq` is still the one on screen. */
export const current = (seq: number): boolean => seq === seqNow;

/** Runs `fn` every `ms` until the view changes. */
export function every(ms: number, fn: () => void): void {
  timers.push(window.setInterval(fn, ms));
}

/** The view's handler for each stats poll (cleared when the view changes). */
export function onStats(fn: () => void): void {
  statsListener = fn;
}

export function statsPolled(): void {
  statsListener?.();
}

export function setView(...children: Child[]): void {
  replace(byId('view'), children);
}

/** Highlights the header link of a section ('' for none). */
export function markNav(name: string): void {
  document.querySelectorAll('header.top nav a').forEach((a) => {
    a.classList.toggle('active', a.getAttribute('data-nav') === name);
  });
}

/** Registers the router, so a view can draw the page for the current hash again. */
export function setRouter(fn: () => void): void {
  router = fn;
}

export function rerender(): void {
  router();
}
