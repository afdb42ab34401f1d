/** The header's auth status (reachability dot, mode, "Sign out") and the sign-in page. */
import { api, errText, messageOf, statusOf } from './api.js';
import { h, replace } from './dom.js';
import { clearFlash, errorBox } from './flash.js';
import { S, authChanged, storeToken } from './state.js';
import { pollStats } from './stats.js';
import { current, rerender, setView } from './view.js';

function signOut(): void {
  storeToken('', false);
  S.auth = 'needed';
  S.samples = [];
  S.lastStats = null;
  authChanged();
  location.hash = '#/login';
}

export function renderAuthStatus(): void {
  const box = document.getElementById('auth-status');
  if (!box) return;
  const dot = h('span', { class: `dot${S.up === true ? ' up' : S.up === false ? ' down' : ''}`, title: S.up === false ? 'server unreachable' : 'server reachable' });
  const mode = (text: string): HTMLSpanElement => h('span', { 'data-testid': 'auth-mode', text });
  if (S.auth === 'open') replace(box, [dot, mode('auth: open')]);
  else if (S.token) replace(box, [dot, mode(`token …${S.token.slice(-4)}`), h('button', { type: 'button', id: 'logout', text: 'Sign out', onclick: signOut })]);
  else if (S.auth === 'needed') replace(box, [dot, mode('signed out')]);
  else replace(box, dot);
}

export function viewLogin(seq: number): void {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', placeholder: 'API token', required: true });
  const remember = h('input', { id: 'remember', type: 'checkbox' });
  const err = h('div');
  const submit = h('button', { class: 'primary', type: 'submit', id: 'login-submit', text: 'Sign in' });
  const signIn = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    submit.disabled = true;
    err.textContent = '';
    try {
      await api('GET', '/xcron/stats', undefined, { token, noLogin: true });
      storeToken(token, remember.checked);
      S.auth = 'token';
      authChanged();
      clearFlash();
      const to = S.afterLogin && !S.afterLogin.startsWith('#/login') ? S.afterLogin : '#/';
      location.hash = to;
      if (location.hash === to) rerender();
      void pollStats();
    } catch (e) {
      if (!current(seq)) return;
      const status = statusOf(e);
      err.appendChild(errorBox(status === 401 || status === 403 ? `The server rejected this token: ${messageOf(e)}` : errText(e)));
    } finally {
      submit.disabled = false;
    }
  };
  const form = h(
    'form',
    { class: 'panel', id: 'login-form', onsubmit: signIn },
    h('h1', { text: 'Sign in to xcron' }),
    h('p', {
      class: 'muted',
      text: 'This server requires an API token (an admin token can change tasks; a read token can only look). The token is sent as "Authorization: Bearer …" with every request and is kept in this browser only.',
    }),
    h('div', { class: 'field' }, h('label', { for: 'token', text: 'API token' }), input),
    h('div', { class: 'field' }, h('label', {}, remember, ' Remember on this device (otherwise until this tab closes)')),
    err,
    h('div', { class: 'row' }, submit),
  );
  setView(h('div', { class: 'login' }, form));
}
