/**
 * The current view's plumbing: its sequence number (a view drawn by a stale request checks
 * `current(seq)` and stops), its timers, its stats listener, and how it fills the page.
 */
import { byId, replace, type Child } from './dom.js';

let seqNow = 0;
let timers: number[] = [];
let statsListener: (() => void) | null = null;
let router: () => void = () => undefined;
let headingFocus = false;

/** Stops the previous view's timers and listener; returns the new view's sequence number. */
export function resetView(): number {
  for (const t of timers) clearInterval(t);
  timers = [];
  statsListener = null;
  headingFocus = false;
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

/** The page title: "<what> · xcron". */
export function setTitle(what: string): void {
  document.title = `${what} · xcron`;
}

/**
 * After a route change (not the first load): the view's heading takes the focus, so a screen reader
 * announces the new page and Tab starts from it; no input is focused (no phone keyboard pops up).
 */
export function focusHeadingOnDraw(): void {
  headingFocus = true;
}

export function setView(...children: Child[]): void {
  const view = byId('view');
  replace(view, children);
  const h1 = view.querySelector('h1');
  if (!h1) return;
  h1.setAttribute('tabindex', '-1');
  const a = document.activeElement;
  if (headingFocus && (a === null || a === document.body || !view.contains(a))) h1.focus();
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
