/** Messages at the top of the page (success fades after 4 s) and error boxes inside views. */
import { byId, h } from './dom.js';

export function flash(kind: 'ok' | 'error', text: string): void {
  const box = byId('flash');
  const el: HTMLDivElement = h(
    'div',
    { class: `flash ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'msg', text }),
    h('button', { type: 'button', title: 'dismiss', text: '×', onclick: (): void => el.remove() }),
  );
  box.appendChild(el);
  while (box.children.length > 4) box.firstElementChild?.remove();
  if (kind === 'ok') setTimeout(() => el.remove(), 4000);
}

export function clearFlash(): void {
  byId('flash').textContent = '';
}

/** An error message inside a view (a form, a panel). */
export const errorBox = (text: string): HTMLDivElement => h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text }));
