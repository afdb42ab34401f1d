/** A page that shows one API answer and refreshes it every 5 s while the page is visible (cluster, executors). */
import { api, errText } from './api.js';
import { h, replace } from './dom.js';
import { errorBox } from './flash.js';
import { refreshInto } from './keep.js';
import { current, every, setView } from './view.js';

/** Draws `title` and the content of `GET path` into a box with id `id`; `what` names it in the error. */
export function polledView<T>(seq: number, title: string, id: string, path: string, what: string, content: (v: T) => HTMLElement[]): void {
  const box = h('div', { id }, h('div', { class: 'empty', text: 'Loading…' }));
  setView(h('h1', { text: title }), box);
  const load = async (): Promise<void> => {
    let v: T;
    try {
      v = await api<T>('GET', path);
    } catch (e) {
      if (current(seq)) replace(box, errorBox(`Could not load ${what}: ${errText(e)}`));
      return;
    }
    if (current(seq)) refreshInto(box, content(v));
  };
  every(5000, () => {
    if (!document.hidden) void load();
  });
  void load();
}
