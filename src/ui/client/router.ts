/** Hash routing: #/ overview, #/tasks, #/task/<id>, #/new, #/edit/<id>, #/executors, #/cluster, #/login. */
import { viewLogin } from './auth.js';
import { viewCluster } from './cluster.js';
import { viewExecutors } from './executors.js';
import { h } from './dom.js';
import { errText } from './api.js';
import { flash } from './flash.js';
import { viewForm } from './form.js';
import { viewOverview } from './overview.js';
import { S } from './state.js';
import { viewTask } from './task.js';
import { viewTasks } from './tasks.js';
import { focusHeadingOnDraw, markNav, resetView, setTitle, setView } from './view.js';

export interface HashRoute {
  /** The path's segments, decoded. */
  parts: string[];
  /** The query after '?', decoded ('+' is a space). */
  params: Record<string, string>;
}

export function parseHash(hash: string): HashRoute {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params: Record<string, string> = {};
  if (q >= 0) {
    for (const p of raw.slice(q + 1).split('&')) {
      if (!p) continue;
      const i = p.indexOf('=');
      const k = decodeURIComponent(i >= 0 ? p.slice(0, i) : p);
      params[k] = i >= 0 ? decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' ')) : '';
    }
  }
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params };
}

function notFound(): void {
  markNav('');
  setTitle('Not found');
  setView(h('h1', { text: 'Not found' }), h('p', {}, 'No dashboard page ', h('code', { text: location.hash }), '. ', h('a', { href: '#/', text: 'Back to the overview' })));
}

let lastHash = location.hash;

const TITLES: Record<string, string> = { '': 'Overview', tasks: 'Tasks', task: 'Task', new: 'New task', edit: 'Edit task', executors: 'Executors', cluster: 'Cluster', login: 'Sign in' };

/** Draws the page for the current hash (the previous view's timers stop); `moved`: a route change. */
export function route(moved = false): void {
  // A filter typed into the same page (its hash changes) keeps the focus in that input.
  const active = document.activeElement;
  const keepId = moved && active instanceof HTMLInputElement && active.id && parseHash(lastHash).parts[0] === parseHash(location.hash).parts[0] ? active.id : '';
  lastHash = location.hash;
  const seq = resetView();
  if (moved && !keepId) focusHeadingOnDraw();
  const { parts, params } = parseHash(location.hash);
  const [p0 = '', p1] = parts;
  setTitle(TITLES[p0] ?? 'Not found');
  if (p0 !== 'login' && S.auth === 'needed' && !S.token) {
    S.afterLogin = location.hash || '#/';
    location.hash = '#/login';
    return;
  }
  try {
    if (p0 === '') {
      markNav('overview');
      viewOverview(seq);
    } else if (p0 === 'tasks') {
      markNav('tasks');
      viewTasks(seq, params);
    } else if (p0 === 'task' && p1) {
      markNav('tasks');
      viewTask(seq, p1, params);
    } else if (p0 === 'new') {
      markNav('new');
      viewForm(seq, null, params.clone || null);
    } else if (p0 === 'edit' && p1) {
      markNav('tasks');
      viewForm(seq, p1, null);
    } else if (p0 === 'executors') {
      markNav('executors');
      viewExecutors(seq);
    } else if (p0 === 'cluster') {
      markNav('cluster');
      viewCluster(seq);
    } else if (p0 === 'login') {
      markNav('');
      viewLogin(seq);
    } else notFound();
  } catch (e) {
    flash('error', errText(e));
  }
  const again = keepId ? document.getElementById(keepId) : null;
  if (again instanceof HTMLInputElement) {
    again.focus();
    if (again.type === 'search' || again.type === 'text') again.setSelectionRange(again.value.length, again.value.length);
  }
}
