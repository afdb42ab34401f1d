/** The executors page: every executor group with its instances, their last heartbeat and whether they are live. */
import { h } from './dom.js';
import { polledView } from './polled.js';
import type { ExecutorsView } from './types.js';
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
  polledView<ExecutorsView>(seq, 'Executors', 'executors', '/xcron/executors', 'the executors', executorsContent);
}
