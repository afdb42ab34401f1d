/** The cluster page: members, owned slots per node, and a grid of every slot coloured by owner. */
import { h } from './dom.js';
import { polledView } from './polled.js';
import type { ClusterView, SlotView } from './types.js';
import { card } from './widgets.js';

const PALETTE = ['#2457c5', '#1f8a4c', '#a86a00', '#8a3fb5', '#c43d3d', '#138a8a', '#5a6b1f', '#b5407f'];

/** The i-th owner's colour: the palette, then a hue from the owner's name. */
export function ownerColor(owner: string, i: number): string {
  const fixed = PALETTE[i];
  if (fixed) return fixed;
  let hsh = 0;
  for (let k = 0; k < owner.length; k++) hsh = (hsh * 31 + owner.charCodeAt(k)) | 0;
  return `hsl(${Math.abs(hsh) % 360}, 55%, 45%)`;
}

function membersTable(c: ClusterView, names: string[], owned: Map<string, number>, colors: Map<string, string>): HTMLTableElement {
  const members = c.members ?? [];
  const slots = c.slots ?? [];
  return h(
    'table',
    { id: 'members-table' },
    h('thead', {}, h('tr', {}, h('th', { text: 'Node' }), h('th', { text: 'Member' }), h('th', { class: 'num', text: 'Owned slots' }), h('th', { class: 'num', text: 'Share' }))),
    h(
      'tbody',
      {},
      names.map((n) => {
        const sw = h('i', {});
        sw.style.background = colors.get(n) ?? '';
        const count = owned.get(n) ?? 0;
        return h(
          'tr',
          { 'data-node': n },
          h('td', { class: 'node' }, sw, h('span', { class: 'mono', text: n }), n === c.node ? [' ', h('span', { class: 'badge completed', text: 'this node' })] : null),
          h('td', { text: members.includes(n) ? 'yes' : 'no (lease still held)' }),
          h('td', { class: 'num owned', text: count }),
          h('td', { class: 'num', text: slots.length ? `${((count * 100) / slots.length).toFixed(1)} %` : '—' }),
        );
      }),
    ),
  );
}

function slotCell(s: SlotView, colors: Map<string, string>): HTMLDivElement {
  const epoch = s.epoch !== null && s.epoch !== undefined ? ` (epoch ${s.epoch})` : '';
  const cell = h('div', { class: `slot${s.owner ? '' : ' none'}`, title: `slot ${s.slot} → ${s.owner || 'no owner'}${epoch}` });
  if (s.owner) cell.style.background = colors.get(s.owner) ?? '';
  return cell;
}

function clusterContent(c: ClusterView): HTMLElement[] {
  const slots = c.slots ?? [];
  const members = (c.members ?? []).slice().sort();
  const owned = new Map<string, number>(members.map((m) => [m, 0]));
  let unowned = 0;
  for (const s of slots) {
    if (s.owner === null || s.owner === undefined) unowned++;
    else owned.set(s.owner, (owned.get(s.owner) ?? 0) + 1);
  }
  const names = [...owned.keys()].sort();
  const colors = new Map(names.map((n, i) => [n, ownerColor(n, i)]));
  const grid = h('div', { class: 'slots', id: 'slot-grid' }, slots.map((s) => slotCell(s, colors)));
  return [
    h(
      'div',
      { class: 'cards' },
      card('This node', c.node, '', 'cluster-node'),
      card('Members', String(members.length), '', 'cluster-members'),
      card('Slots', String(slots.length)),
      card('Unowned slots', String(unowned), unowned ? 'bad' : 'ok', 'cluster-unowned'),
    ),
    h(
      'div',
      { class: 'grid2' },
      h('div', {}, h('h2', { text: 'Nodes' }), h('div', { class: 'table-wrap' }, membersTable(c, names, owned, colors))),
      h(
        'div',
        {},
        h('h2', { text: 'Slot ownership' }),
        h(
          'div',
          { class: 'panel' },
          grid,
          h('p', { class: 'muted small', text: `One cell per slot (hover for owner and fencing epoch); striped = no owner right now. A task lives in slot hash(task_id) mod ${slots.length}.` }),
        ),
      ),
    ),
  ];
}

export function viewCluster(seq: number): void {
  polledView<ClusterView>(seq, 'Cluster', 'cluster', '/xcron/cluster', 'the cluster view', clusterContent);
}
