/** The executors page: every executor group with its instances, their last heartbeat and whether they are live. */
import { api, errText } from './api.js';
import { h, replace } from './dom.js';
import { errorBox } from './flash.js';
import { refreshInto } from './keep.js';
import type { ExecutorsView } from './types.js';
import { current, every, setView } from './view.js';
import { card, timeCell } from './widgets.js';

function groupTable(g: ExecutorsView['groups'][number]): HTMLElement {
  return h(
    'section',
    { class: 'executor-group', 'data-group': g.group },
    h('h2', {}, h('span', { class: 'mono', text: g.group }), ' ', h('span', { class: `badge ${g.live > 0 ? 'active' : 'paused'}`, text: `${g.live} live` })),
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, h('th', { text: 'Address' }), h('th', { text: 'State' }), h('th', { text: 'Last heartbeat' }), h('th', { text: 'Expires' }), h('th', { text: 'Registered' }), h('th', { text: 'Meta' }))),
      h(
        'tbody',
        {},
        g.instances.map((i) =>
          h(
            'tr',
            { 'data-address': i.address },
            h('td', { class: 'mono', text: i.address }),
            h('td', {}, h('span', { class: `badge ${i.live ? 'active' : 'paused'}`, text: i.live ? 'live' : 'expired' })),
            h('td', {}, timeCell(i.last_heartbeat)),
            h('td', {}, timeCell(i.expires_at)),
            h('td', {}, timeCell(i.registered_at)),
            h('td', { class: 'mono', text: i.meta === null ? '—' : JSON.stringify(i.meta) }),
          ),
        ),
      ),
    ),
  );
}

function executorsContent(v: ExecutorsView): HTMLElement[] {
  const live = v.groups.reduce((n, g) => n + g.live, 0);
  const all = v.groups.reduce((n, g) => n + g.instances.length, 0);
  const cards = h('div', { class: 'cards' }, card('Groups', String(v.groups.length)), card('Live instances', String(live), '', 'executors-live'), card('Expired', String(all - live)));
  if (v.groups.length === 0) return [cards, h('div', { class: 'empty', text: 'No executor has registered (POST /xcron/registerExecutor; see docs/executors.md).' })];
  return [cards, ...v.groups.map(groupTable)];
}

export function viewExecutors(seq: number): void {
  const box = h('div', { id: 'executors' }, h('div', { class: 'empty', text: 'Loading…' }));
  setView(h('h1', { text: 'Executors' }), box);
  const load = async (): Promise<void> => {
    let v: ExecutorsView;
    try {
      v = await api<ExecutorsView>('GET', '/xcron/executors');
    } catch (e) {
      if (current(seq)) replace(box, errorBox(`Could not load the executors: ${errText(e)}`));
      return;
    }
    if (current(seq)) refreshInto(box, executorsContent(v));
  };
  every(5000, () => {
    if (!document.hidden) void load();
  });
  void load();
}
