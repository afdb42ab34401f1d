/**
 * Auto-refresh without losing the user's place: a refresh that would replace content holding a text
 * selection, or under a pressed mouse button or finger (a click in progress would be lost), waits
 * for the next tick; content that did not change is left alone; and after a replace the focused
 * control (found again by its id, or by its row and data-action), the scroll of inner boxes and the
 * page's scroll are put back.
 */
import { add, replace, type Child } from './dom.js';

let pressed: Node | null = null;
if (typeof document !== 'undefined') {
  document.addEventListener('pointerdown', (ev) => (pressed = ev.target instanceof Node ? ev.target : null), true);
  for (const t of ['pointerup', 'pointercancel', 'click']) document.addEventListener(t, () => (pressed = null), true);
}

const ROW = '[data-task-id],[data-run-id],[data-key]';
const ROW_ATTRS = ['data-task-id', 'data-run-id', 'data-key'];

const attrSel = (el: Element, names: readonly string[]): string | null => {
  for (const n of names) {
    const v = el.getAttribute(n);
    if (v !== null) return `[${n}="${CSS.escape(v)}"]`;
  }
  return null;
};

/** A selector that finds `el` again in freshly drawn content, or null. */
function selectorOf(el: Element): string | null {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const own = attrSel(el, ['data-action', 'data-key', 'name']) ?? (el.tagName === 'SUMMARY' ? 'summary' : null);
  if (own === null) return null;
  const row = el.parentElement?.closest(ROW);
  const rowSel = row ? attrSel(row, ROW_ATTRS) : null;
  return rowSel ? `${rowSel} ${own}` : own;
}

/** True when the user has text selected inside `box`. */
export function selecting(box: Node): boolean {
  const sel = document.getSelection();
  if (!sel || sel.isCollapsed || sel.rangeCount === 0) return false;
  return box.contains(sel.getRangeAt(0).commonAncestorContainer);
}

/** True when both nodes hold equal children (same elements, attributes and text). */
function sameChildren(a: Node, b: Node): boolean {
  if (a.childNodes.length !== b.childNodes.length) return false;
  for (let i = 0; i < a.childNodes.length; i++) if (!a.childNodes[i]!.isEqualNode(b.childNodes[i]!)) return false;
  return true;
}

/**
 * Replaces `box`'s content for a refresh; false (nothing changed) while the user selects text in
 * it. `force` replaces anyway (the user asked for new content).
 */
export function refreshInto(box: HTMLElement, content: Child, force = false): boolean {
  if (!force && (selecting(box) || (pressed !== null && box.contains(pressed)))) return false;
  const fresh = document.createElement('div');
  add(fresh, content);
  if (sameChildren(fresh, box)) return true;
  const active = document.activeElement;
  const focusSel = active && active !== document.body && box.contains(active) ? selectorOf(active) : null;
  const scrolled: [string, number, number][] = [];
  box.querySelectorAll('.table-wrap, pre, [data-key]').forEach((el) => {
    const sel = selectorOf(el) ?? (el.classList.contains('table-wrap') ? '.table-wrap' : null);
    if (sel && (el.scrollLeft || el.scrollTop)) scrolled.push([sel, el.scrollLeft, el.scrollTop]);
  });
  const x = window.scrollX;
  const y = window.scrollY;
  // Hold the height while swapping, so the page does not jump up when the content is briefly empty.
  box.style.minHeight = `${box.offsetHeight}px`;
  replace(box, [...fresh.childNodes]);
  box.style.minHeight = '';
  for (const [sel, left, top] of scrolled) {
    const el = box.querySelector(sel);
    if (el) {
      el.scrollLeft = left;
      el.scrollTop = top;
    }
  }
  if (focusSel) {
    const el = box.querySelector<HTMLElement>(focusSel);
    el?.focus({ preventScroll: true });
  }
  if (window.scrollX !== x || window.scrollY !== y) window.scrollTo(x, y);
  return true;
}
