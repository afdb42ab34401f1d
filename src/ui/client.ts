/**
 * The dashboard's browser code (served as /ui/app.js): a small hash-routed single page in vanilla
 * JavaScript. It talks only to the public JSON API (/xcron/*) with `Authorization: Bearer <token>`
 * when a token was given, plus /ui/api/next-fires for schedule previews. Every value from the server
 * is put into the page with textContent (never innerHTML).
 *
 * Kept as a plain string so the build stays `tsc` only. No template literals inside (the string is
 * itself one), no external scripts, CSP-clean (no inline scripts or style attributes in markup).
 */
export const CLIENT_JS = String.raw`
(function () {
  'use strict';

  var TOKEN_KEY = 'xcron.dashboard.token';
  var POLL_MS = 3000;
  var MAX_SAMPLES = 200;

  var S = {
    token: readToken(),
    auth: 'unknown',          // 'open' | 'token' | 'needed' | 'unknown'
    up: null,                 // server reachable (last stats poll)
    samples: [],              // stats history for the charts
    lastStats: null,
    viewTimers: [],
    afterLogin: '#/',
    listPrev: [],             // cursor stack of the task list (for "previous page")
    runsPrev: [],
    renderSeq: 0
  };

  // ---------------------------------------------------------------- helpers

  function readToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function storeToken(token, remember) {
    try {
      sessionStorage.removeItem(TOKEN_KEY); localStorage.removeItem(TOKEN_KEY);
      if (token) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
    } catch (e) { /* storage disabled: the token lives in memory only */ }
    S.token = token;
  }

  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'open') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function svg(tag, attrs) {
    var el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    for (var i = 2; i < arguments.length; i++) if (arguments[i]) el.appendChild(arguments[i]);
    return el;
  }
  function $(id) { return document.getElementById(id); }
  function pad(n, w) { var s = String(n); while (s.length < (w || 2)) s = '0' + s; return s; }

  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    var d = new Date(ms);
    var s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (d.getMilliseconds()) s += '.' + pad(d.getMilliseconds(), 3);
    return s;
  }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }
  function rel(ms) {
    if (ms === null || ms === undefined) return '';
    var diff = ms - Date.now(), a = Math.abs(diff), s;
    if (a < 1000) return diff >= 0 ? 'now' : 'just now';
    if (a < 60000) s = Math.round(a / 1000) + 's';
    else if (a < 3600000) s = Math.round(a / 60000) + 'm';
    else if (a < 86400000) s = (a / 3600000).toFixed(1).replace(/\.0$/, '') + 'h';
    else s = (a / 86400000).toFixed(1).replace(/\.0$/, '') + 'd';
    return diff >= 0 ? 'in ' + s : s + ' ago';
  }
  function timeCell(ms) {
    if (ms === null || ms === undefined) return h('span', { class: 'muted', text: '—' });
    return h('span', { title: new Date(ms).toISOString() + ' (' + ms + ')' }, fmtTime(ms), h('div', { class: 'sub', text: rel(ms) }));
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '—';
    if (typeof v !== 'number') return String(v);
    return digits === undefined ? v.toLocaleString() : v.toFixed(digits);
  }
  function fmtMs(v) {
    if (v === null || v === undefined) return '—';
    if (v >= 10000) return (v / 1000).toFixed(1) + ' s';
    return Math.round(v) + ' ms';
  }
  function badge(text) { return h('span', { class: 'badge ' + text, text: text }); }
  function json(v) { return JSON.stringify(v, null, 2); }
  function schedText(t) { return t.type === 2 ? 'once at ' + fmtTime(oneShotMs(t.format)) : t.format; }
  function oneShotMs(format) { var s = String(format).trim(); return s.length === 13 ? Number(s) : Number(s) * 1000; }

  // ---------------------------------------------------------------- flash messages

  function flash(kind, text) {
    var box = $('flash');
    var el = h('div', { class: 'flash ' + kind, role: kind === 'error' ? 'alert' : 'status' },
      h('span', { class: 'msg', text: text }),
      h('button', { type: 'button', title: 'dismiss', text: '×', onclick: function () { el.remove(); } }));
    box.appendChild(el);
    while (box.children.length > 4) box.firstChild.remove();
    if (kind === 'ok') setTimeout(function () { el.remove(); }, 4000);
  }
  function clearFlash() { $('flash').textContent = ''; }
  function errText(e) {
    if (e && e.code !== undefined) return e.message + ' (code ' + e.code + ', HTTP ' + e.status + ')';
    return String(e && e.message ? e.message : e);
  }

  // ---------------------------------------------------------------- API

  function ApiError(status, code, message) {
    this.status = status; this.code = code; this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function qs(params) {
    var parts = [];
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== null && v !== undefined && v !== '') parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
    });
    return parts.length ? '?' + parts.join('&') : '';
  }

  async function api(method, path, body, opts) {
    opts = opts || {};
    var headers = { Accept: 'application/json' };
    var token = opts.token !== undefined ? opts.token : S.token;
    if (token) headers.Authorization = 'Bearer ' + token;
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    var res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, -1, 'cannot reach the xcron server (' + (e && e.message ? e.message : e) + ')');
    }
    var env = null;
    try { env = await res.json(); } catch (e) { /* not JSON */ }
    if (!env || typeof env !== 'object') throw new ApiError(res.status, -1, 'unexpected response from the server (HTTP ' + res.status + ')');
    if (res.status === 401 && !opts.noLogin) {
      S.auth = 'needed';
      if (token && opts.token === undefined) storeToken('', false); // rejected (revoked or mistyped)
      renderAuthStatus();
      if (location.hash.indexOf('#/login') !== 0) {
        S.afterLogin = location.hash || '#/';
        location.hash = '#/login';
      }
    }
    if (!res.ok || env.code !== 0) throw new ApiError(res.status, env.code, env.message || ('HTTP ' + res.status));
    if (path.indexOf('/xcron/') === 0 && S.auth !== 'token' && S.auth !== 'open') {
      S.auth = token ? 'token' : 'open';
      renderAuthStatus();
    }
    return env.data;
  }

  // ---------------------------------------------------------------- view plumbing

  function every(ms, fn) { S.viewTimers.push(setInterval(fn, ms)); }
  function resetView() {
    S.viewTimers.forEach(clearInterval);
    S.viewTimers = [];
    S.onStats = null;
    S.renderSeq++;
    return S.renderSeq;
  }
  function current(seq) { return seq === S.renderSeq; }
  function view() { return $('view'); }
  function setView() {
    var v = view();
    v.textContent = '';
    for (var i = 0; i < arguments.length; i++) add(v, arguments[i]);
  }

  function parseHash() {
    var raw = location.hash.replace(/^#/, '') || '/';
    var q = raw.indexOf('?');
    var path = q >= 0 ? raw.slice(0, q) : raw;
    var params = {};
    if (q >= 0) raw.slice(q + 1).split('&').forEach(function (p) {
      if (!p) return;
      var i = p.indexOf('=');
      var k = decodeURIComponent(i >= 0 ? p.slice(0, i) : p);
      params[k] = i >= 0 ? decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' ')) : '';
    });
    return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: params };
  }

  function markNav(name) {
    document.querySelectorAll('header.top nav a').forEach(function (a) {
      a.classList.toggle('active', a.getAttribute('data-nav') === name);
    });
  }

  function route() {
    var seq = resetView();
    var r = parseHash();
    var p0 = r.parts[0] || '';
    if (p0 !== 'login' && S.auth === 'needed' && !S.token) { S.afterLogin = location.hash || '#/'; location.hash = '#/login'; return; }
    try {
      if (p0 === '') { markNav('overview'); return viewOverview(seq); }
      if (p0 === 'tasks') { markNav('tasks'); return viewTasks(seq, r.params); }
      if (p0 === 'task' && r.parts[1]) { markNav('tasks'); return viewTask(seq, r.parts[1], r.params); }
      if (p0 === 'new') { markNav('new'); return viewForm(seq, null); }
      if (p0 === 'edit' && r.parts[1]) { markNav('tasks'); return viewForm(seq, r.parts[1]); }
      if (p0 === 'cluster') { markNav('cluster'); return viewCluster(seq); }
      if (p0 === 'login') { markNav(''); return viewLogin(seq); }
      markNav('');
      setView(h('h1', { text: 'Not found' }), h('p', {}, 'No dashboard page ', h('code', { text: location.hash }), '. ', h('a', { href: '#/', text: 'Back to the overview' })));
    } catch (e) {
      flash('error', errText(e));
    }
  }

  // ---------------------------------------------------------------- auth

  function renderAuthStatus() {
    var box = $('auth-status');
    if (!box) return;
    box.textContent = '';
    var dot = h('span', { class: 'dot' + (S.up === true ? ' up' : S.up === false ? ' down' : ''), title: S.up === false ? 'server unreachable' : 'server reachable' });
    add(box, dot);
    if (S.auth === 'open') add(box, h('span', { 'data-testid': 'auth-mode', text: 'auth: open' }));
    else if (S.token) {
      add(box, h('span', { 'data-testid': 'auth-mode', text: 'token …' + S.token.slice(-4) }));
      add(box, h('button', { type: 'button', id: 'logout', text: 'Sign out', onclick: function () {
        storeToken('', false);
        S.auth = 'needed';
        S.samples = []; S.lastStats = null;
        renderAuthStatus();
        location.hash = '#/login';
      } }));
    } else if (S.auth === 'needed') add(box, h('span', { 'data-testid': 'auth-mode', text: 'signed out' }));
  }

  function viewLogin(seq) {
    var input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', placeholder: 'API token', required: true });
    var remember = h('input', { id: 'remember', type: 'checkbox' });
    var err = h('div');
    var submit = h('button', { class: 'primary', type: 'submit', id: 'login-submit', text: 'Sign in' });
    var form = h('form', { class: 'panel', id: 'login-form', onsubmit: async function (ev) {
      ev.preventDefault();
      var token = input.value.trim();
      if (!token) return;
      submit.disabled = true; err.textContent = '';
      try {
        await api('GET', '/xcron/stats', undefined, { token: token, noLogin: true });
        storeToken(token, remember.checked);
        S.auth = 'token';
        renderAuthStatus();
        clearFlash();
        var to = S.afterLogin && S.afterLogin.indexOf('#/login') !== 0 ? S.afterLogin : '#/';
        location.hash = to;
        if (location.hash === to) route();
        void pollStats();
      } catch (e) {
        if (!current(seq)) return;
        err.appendChild(h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: e.status === 401 || e.status === 403 ? 'The server rejected this token: ' + e.message : errText(e) })));
      } finally { submit.disabled = false; }
    } },
      h('h1', { text: 'Sign in to xcron' }),
      h('p', { class: 'muted', text: 'This server requires an API token (an admin token can change tasks; a read token can only look). The token is sent as "Authorization: Bearer …" with every request and is kept in this browser only.' }),
      h('div', { class: 'field' }, h('label', { for: 'token', text: 'API token' }), input),
      h('div', { class: 'field' }, h('label', {}, remember, ' Remember on this device (otherwise until this tab closes)')),
      err,
      h('div', { class: 'row' }, submit));
    setView(h('div', { class: 'login' }, form));
    input.focus();
  }

  // ---------------------------------------------------------------- stats polling and charts

  async function pollStats() {
    if (S.auth === 'needed' && !S.token) return;
    try {
      var st = await api('GET', '/xcron/stats');
      S.up = true;
      var live = st.live || {};
      var now = Date.now();
      var prev = S.samples[S.samples.length - 1];
      var sample = { t: now, since: live.since, fired: live.fired || 0, succeeded: live.succeeded || 0, failed: live.failed || 0,
        missed: (live.missed || 0) + (live.skipped || 0), lat: live.lateness_ms || {}, cb: live.callback_latency_ms || {} };
      if (prev && (prev.since !== sample.since || sample.fired < prev.fired)) S.samples = []; // server restarted
      // Rates over the last ~15 s (several samples), so a 1-2 s schedule does not saw-tooth.
      prev = S.samples[Math.max(0, S.samples.length - 5)];
      if (prev) {
        var per = 60000 / Math.max(1, now - prev.t);
        sample.rFired = (sample.fired - prev.fired) * per;
        sample.rOk = (sample.succeeded - prev.succeeded) * per;
        sample.rFail = (sample.failed - prev.failed) * per;
        sample.rMiss = (sample.missed - prev.missed) * per;
      }
      S.samples.push(sample);
      if (S.samples.length > MAX_SAMPLES) S.samples.shift();
      S.lastStats = st;
    } catch (e) {
      if (e.status === 401) { S.auth = 'needed'; } else if (e.status === 0 || e.status >= 500) S.up = false;
    }
    renderAuthStatus();
    if (S.onStats) S.onStats();
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  /** A line chart: series = [{name, color, values: [[t, v|null], ...]}]. */
  function lineChart(title, unit, series, testid) {
    var W = 560, H = 170, L = 46, R = 10, T = 10, B = 22;
    var pts = [];
    series.forEach(function (s) { s.values.forEach(function (p) { if (p[1] !== null && p[1] !== undefined) pts.push(p); }); });
    var legend = h('span', { class: 'legend' });
    series.forEach(function (s) {
      var last = null;
      for (var i = s.values.length - 1; i >= 0; i--) { if (s.values[i][1] !== null && s.values[i][1] !== undefined) { last = s.values[i][1]; break; } }
      var li = h('span', {}, h('i', {}), s.name + ': ' + (last === null ? '—' : (Math.round(last * 100) / 100).toLocaleString() + (unit ? ' ' + unit : '')));
      li.firstChild.style.background = s.color;
      add(legend, li);
    });
    var box = h('div', { class: 'chart', 'data-testid': testid }, h('div', { class: 'title' }, title, legend));
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title });
    var now = Date.now();
    var t1 = now, t0 = now - 60000;
    if (pts.length) t0 = Math.min(t0, pts.reduce(function (m, p) { return Math.min(m, p[0]); }, Infinity));
    var ymax = niceMax(pts.reduce(function (m, p) { return Math.max(m, p[1]); }, 0));
    var x = function (t) { return L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0); };
    var y = function (v) { return T + (H - T - B) * (1 - v / ymax); };
    [0, 0.5, 1].forEach(function (f) {
      var yy = y(ymax * f);
      root.appendChild(svg('line', { class: f === 0 ? 'axis' : 'grid', x1: L, x2: W - R, y1: yy, y2: yy }));
      var lab = svg('text', { x: L - 6, y: yy + 3.5, 'text-anchor': 'end' });
      lab.textContent = String(Math.round(ymax * f * 100) / 100);
      root.appendChild(lab);
    });
    var tl = svg('text', { x: L, y: H - 6 }); tl.textContent = clock(t0); root.appendChild(tl);
    var tr = svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }); tr.textContent = clock(t1); root.appendChild(tr);
    if (!pts.length) {
      var w = svg('text', { x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle' }); w.textContent = 'collecting samples…'; root.appendChild(w);
    }
    series.forEach(function (s) {
      // Break the line where a value is missing.
      var seg = [];
      var flush = function () {
        if (seg.length === 1) root.appendChild(svg('circle', { cx: seg[0][0], cy: seg[0][1], r: 2, fill: s.color }));
        else if (seg.length > 1) root.appendChild(svg('polyline', { stroke: s.color, points: seg.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); }).join(' ') }));
        seg = [];
      };
      s.values.forEach(function (p) { if (p[1] === null || p[1] === undefined) flush(); else seg.push([x(p[0]), y(p[1])]); });
      flush();
    });
    box.appendChild(root);
    return box;
  }

  function card(label, value, cls, testid) {
    return h('div', { class: 'card' }, h('div', { class: 'label', text: label }), h('div', { class: 'value' + (cls ? ' ' + cls : ''), 'data-testid': testid, text: value }));
  }

  function viewOverview(seq) {
    var cards = h('div', { class: 'cards', id: 'stat-cards' });
    var charts = h('div', { class: 'grid3', id: 'charts' });
    var runs = h('div');
    setView(h('h1', {}, 'Overview', h('span', { class: 'muted small', id: 'stats-node' })), cards,
      h('h2', {}, 'Activity ', h('span', { class: 'muted small', text: '(sampled every ' + POLL_MS / 1000 + ' s while this page is open; rates per minute)' })),
      charts, runs);
    function draw() {
      if (!current(seq)) return;
      var st = S.lastStats;
      cards.textContent = '';
      if (!st) { add(cards, h('div', { class: 'muted', text: S.up === false ? 'The server is not reachable.' : 'Loading…' })); }
      else {
        var live = st.live || {};
        var tasks = st.tasks || {};
        $('stats-node').textContent = 'node ' + st.node;
        add(cards, [
          card('Active tasks', fmtNum(tasks.active || 0), '', 'stat-active'),
          card('Paused tasks', fmtNum(tasks.paused || 0), '', 'stat-paused'),
          card('Completed one-shots', fmtNum(tasks.completed || 0)),
          card('Fired (since start)', fmtNum(live.fired || 0), '', 'stat-fired'),
          card('Succeeded', fmtNum(live.succeeded || 0), 'ok'),
          card('Failed', fmtNum(live.failed || 0), live.failed ? 'bad' : '', 'stat-failed'),
          card('Skipped / missed', fmtNum((live.skipped || 0) + ' / ' + (live.missed || 0))),
          card('Success rate', live.success_rate === null || live.success_rate === undefined ? '—' : (live.success_rate * 100).toFixed(1) + ' %'),
          card('Lateness p50 / p99', live.lateness_ms ? fmtMs(live.lateness_ms.p50) + ' / ' + fmtMs(live.lateness_ms.p99) : '—'),
          card('Callback p50 / p99', live.callback_latency_ms ? fmtMs(live.callback_latency_ms.p50) + ' / ' + fmtMs(live.callback_latency_ms.p99) : '—')
        ]);
      }
      var sm = S.samples;
      var pick = function (k) { return sm.map(function (s) { return [s.t, s[k] === undefined ? null : s[k]]; }); };
      var latPick = function (k) { return sm.map(function (s) { return [s.t, s.lat && s.lat[k] !== undefined ? s.lat[k] : null]; }); };
      charts.textContent = '';
      add(charts, [
        lineChart('Fires', '/min', [{ name: 'fired', color: '#2457c5', values: pick('rFired') }, { name: 'succeeded', color: '#1f8a4c', values: pick('rOk') }], 'chart-fires'),
        lineChart('Failures', '/min', [{ name: 'failed', color: '#c43d3d', values: pick('rFail') }, { name: 'skipped+missed', color: '#a86a00', values: pick('rMiss') }], 'chart-failures'),
        lineChart('Fire lateness', 'ms', [{ name: 'p50', color: '#2457c5', values: latPick('p50') }, { name: 'p99', color: '#c43d3d', values: latPick('p99') }], 'chart-lateness')
      ]);
      runs.textContent = '';
      if (st && st.runs) {
        var keys = Object.keys(st.runs);
        add(runs, [h('h2', { text: 'Run history in the store' }), h('div', { class: 'row', id: 'store-runs' }, keys.length ? keys.map(function (k) {
          return h('span', {}, badge(k), ' ', fmtNum(st.runs[k]));
        }) : h('span', { class: 'muted', text: 'no runs recorded yet' }))]);
      }
    }
    S.onStats = draw;
    draw();
  }

  // ---------------------------------------------------------------- task actions

  async function act(kind, id, after) {
    var path = { pause: 'pauseTask', resume: 'resumeTask', trigger: 'triggerTask', delete: 'deleteTask' }[kind];
    try {
      await api('POST', '/xcron/' + path, { task_id: id });
      flash('ok', { pause: 'Paused ', resume: 'Resumed ', trigger: 'Triggered a run of ', delete: 'Deleted ' }[kind] + id);
      if (after) after();
    } catch (e) {
      flash('error', (e.status === 403 ? 'Not allowed with this token: ' : 'Could not ' + kind + ' ' + id + ': ') + errText(e));
    }
  }

  /** A button that needs a second click within 4 s (no native dialogs). */
  function confirmButton(label, armedLabel, onConfirm, props) {
    var armed = false, timer = null;
    var b = h('button', Object.assign({ type: 'button', class: 'danger' + (props && props.small ? ' small' : ''), text: label }, props && props.attrs || {}));
    b.addEventListener('click', function () {
      if (!armed) {
        armed = true; b.classList.add('armed'); b.textContent = armedLabel;
        timer = setTimeout(function () { armed = false; b.classList.remove('armed'); b.textContent = label; }, 4000);
        return;
      }
      clearTimeout(timer); armed = false; b.disabled = true;
      Promise.resolve(onConfirm()).finally(function () { b.disabled = false; b.classList.remove('armed'); b.textContent = label; });
    });
    return b;
  }

  function actionButtons(t, refresh, small) {
    var cls = small ? 'small' : '';
    var out = [];
    if (t.state === 'active') out.push(h('button', { type: 'button', class: cls, 'data-action': 'pause', text: 'Pause', onclick: function () { return act('pause', t.task_id, refresh); } }));
    if (t.state === 'paused') out.push(h('button', { type: 'button', class: cls, 'data-action': 'resume', text: 'Resume', onclick: function () { return act('resume', t.task_id, refresh); } }));
    out.push(h('button', { type: 'button', class: cls, 'data-action': 'trigger', text: 'Trigger now', title: 'fire once now, outside the schedule', onclick: function () { return act('trigger', t.task_id, refresh); } }));
    return out;
  }

  // ---------------------------------------------------------------- task list

  function tasksHash(p) { return '#/tasks' + qs({ state: p.state, name: p.name, limit: p.limit, cursor: p.cursor }); }

  function viewTasks(seq, params) {
    var p = { state: params.state || '', name: params.name || '', limit: params.limit || '50', cursor: params.cursor || '' };
    if (!p.cursor) S.listPrev = [];
    var go = function (np) { location.hash = tasksHash(np); };
    var stateSel = h('select', { id: 'filter-state', 'aria-label': 'state', onchange: function () { S.listPrev = []; go(Object.assign({}, p, { state: stateSel.value, cursor: '' })); } },
      ['', 'active', 'paused', 'completed'].map(function (s) { return h('option', { value: s, selected: s === p.state, text: s || 'all states' }); }));
    var nameIn = h('input', { id: 'filter-name', type: 'search', placeholder: 'name starts with…', value: p.name, 'aria-label': 'name' });
    var nameTimer = null;
    nameIn.addEventListener('input', function () {
      clearTimeout(nameTimer);
      nameTimer = setTimeout(function () { S.listPrev = []; go(Object.assign({}, p, { name: nameIn.value.trim(), cursor: '' })); }, 400);
    });
    nameIn.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') { clearTimeout(nameTimer); S.listPrev = []; go(Object.assign({}, p, { name: nameIn.value.trim(), cursor: '' })); } });
    var limitSel = h('select', { id: 'filter-limit', 'aria-label': 'page size', onchange: function () { S.listPrev = []; go(Object.assign({}, p, { limit: limitSel.value, cursor: '' })); } },
      ['20', '50', '100', '200'].map(function (n) { return h('option', { value: n, selected: n === p.limit, text: n + ' per page' }); }));
    var auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
    var body = h('div', { id: 'task-list' }, h('div', { class: 'empty', text: 'Loading…' }));
    var pager = h('div', { class: 'pager' });
    setView(
      h('h1', {}, 'Tasks', h('a', { class: 'btn primary small', href: '#/new', text: '+ New task' })),
      h('div', { class: 'row' }, stateSel, nameIn, limitSel, h('button', { type: 'button', text: 'Refresh', onclick: function () { void load(); } }),
        h('label', {}, auto, ' auto-refresh'), h('span', { class: 'spacer' })),
      body, pager);
    nameIn.focus();
    if (p.name) nameIn.setSelectionRange(p.name.length, p.name.length);

    async function load() {
      var data;
      try {
        data = await api('GET', '/xcron/listTasks' + qs({ state: p.state, name: p.name, limit: p.limit, cursor: p.cursor }));
      } catch (e) {
        if (!current(seq)) return;
        body.textContent = '';
        add(body, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: 'Could not load tasks: ' + errText(e) })));
        return;
      }
      if (!current(seq)) return;
      var tasks = data.tasks || [];
      var table = h('table', { id: 'tasks-table' },
        h('thead', {}, h('tr', {}, ['Name / id', 'Schedule', 'State', 'Next fire', 'Last fire', 'Last status', 'Runs', ''].map(function (c, i) {
          return h('th', { class: i === 6 ? 'num' : '', text: c });
        }))),
        h('tbody', {}, tasks.length ? tasks.map(function (t) {
          return h('tr', { 'data-task-id': t.task_id },
            h('td', {}, h('a', { href: '#/task/' + encodeURIComponent(t.task_id), class: 'task-link', text: t.name || t.task_id }), h('div', { class: 'sub mono', text: t.name ? t.task_id : '' })),
            h('td', {}, h('div', { class: 'mono ellipsis', title: t.format, text: schedText(t) }), h('div', { class: 'sub', text: (t.type === 1 ? 'cron · ' : 'one-shot · ') + t.timezone })),
            h('td', { class: 'state' }, badge(t.state)),
            h('td', {}, t.state === 'active' ? timeCell(t.next_fire_time) : h('span', { class: 'muted', text: t.state === 'paused' ? 'paused' : '—' })),
            h('td', {}, timeCell(t.last_fire_time)),
            h('td', {}, t.last_status ? badge(t.last_status) : h('span', { class: 'muted', text: '—' })),
            h('td', { class: 'num run-count', text: fmtNum(t.run_count) }),
            h('td', { class: 'actions' }, actionButtons(t, load, true)));
        }) : h('tr', {}, h('td', { colspan: 8, class: 'empty', text: p.state || p.name ? 'No task matches this filter.' : 'No tasks yet. Create one with "+ New task".' }))));
      body.textContent = '';
      add(body, h('div', { class: 'table-wrap' }, table));
      pager.textContent = '';
      var page = S.listPrev.length + 1;
      add(pager, [
        h('button', { type: 'button', id: 'page-first', text: '« First', disabled: !p.cursor, onclick: function () { S.listPrev = []; go(Object.assign({}, p, { cursor: '' })); } }),
        h('button', { type: 'button', id: 'page-prev', text: '‹ Previous', disabled: !p.cursor, onclick: function () { var c = S.listPrev.pop() || ''; go(Object.assign({}, p, { cursor: c })); } }),
        h('span', { class: 'muted', text: 'page ' + (p.cursor && !S.listPrev.length ? '?' : page) + ' · ' + tasks.length + ' task' + (tasks.length === 1 ? '' : 's') }),
        h('button', { type: 'button', id: 'page-next', text: 'Next ›', disabled: !data.next_cursor, onclick: function () { S.listPrev.push(p.cursor); go(Object.assign({}, p, { cursor: data.next_cursor })); } })
      ]);
    }
    every(5000, function () { if (auto.checked && !document.hidden) void load(); });
    void load();
  }

  // ---------------------------------------------------------------- task detail

  function viewTask(seq, id, params) {
    var head = h('h1', {}, h('span', { text: id }));
    var info = h('div', { class: 'panel', id: 'task-info' }, h('span', { class: 'muted', text: 'Loading…' }));
    var fires = h('div', { class: 'panel', id: 'next-fires' }, h('span', { class: 'muted', text: '…' }));
    var runsBox = h('div', { id: 'runs' }, h('div', { class: 'empty', text: 'Loading runs…' }));
    var runsPager = h('div', { class: 'pager' });
    var live = h('input', { type: 'checkbox', id: 'runs-live', checked: true });
    var runCursor = params.runs || '';
    setView(head, h('div', { class: 'row', id: 'task-actions' }),
      h('div', { class: 'grid2' }, h('div', {}, h('h2', { text: 'Task' }), info), h('div', {}, h('h2', { text: 'Next fire times' }), fires)),
      h('div', { class: 'row' }, h('h2', { text: 'Runs' }), h('span', { class: 'muted small', text: 'newest first' }), h('span', { class: 'spacer' }), h('label', {}, live, ' live (refresh every 3 s)')),
      runsBox, runsPager);
    var lastFiresKey = '';
    var actionsKey = '';

    async function loadTask() {
      var t;
      try { t = await api('GET', '/xcron/queryTask' + qs({ task_id: id })); } catch (e) {
        if (!current(seq)) return;
        info.textContent = '';
        add(info, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: e.status === 404 ? 'Task ' + id + ' does not exist (deleted?).' : errText(e) })));
        return;
      }
      if (!current(seq)) return;
      head.textContent = '';
      add(head, [h('span', { text: t.name || t.task_id }), h('span', { id: 'task-state' }, badge(t.state))]);
      var actions = $('task-actions');
      if (actionsKey === t.state) return renderInfo(t);
      actionsKey = t.state;
      actions.textContent = '';
      add(actions, [
        h('a', { class: 'btn', href: '#/edit/' + encodeURIComponent(t.task_id), id: 'edit-task', text: 'Edit' }),
        actionButtons(t, refreshAll, false),
        confirmButton('Delete', 'Click again to delete', function () { return act('delete', t.task_id, function () { location.hash = '#/tasks'; }); }, { attrs: { 'data-action': 'delete' } }),
        h('span', { class: 'spacer' }),
        h('a', { href: '#/tasks', text: '← all tasks' })
      ]);
      renderInfo(t);
    }

    function renderInfo(t) {
      var cb = t.callback || {};
      // Short facts two to a line, then the wide ones (callback, bodies, lists) across the panel.
      var rows = [
        ['Task id', h('code', { text: t.task_id })],
        ['Type', t.type === 1 ? 'periodic (cron)' : 'one-shot'],
        ['Schedule', h('code', { text: t.format })],
        ['Timezone', t.timezone],
        ['Runs', h('span', { id: 'task-run-count', text: String(t.run_count) })],
        ['Last status', t.last_status ? badge(t.last_status) : '—'],
        ['Last fire', timeCell(t.last_fire_time)],
        ['Created', fmtTime(Number(t.create_time) * 1000)],
        ['Timeout', t.timeout_ms ? t.timeout_ms + ' ms' : 'server default'],
        ['Misfire / overlap', t.misfire + ' / ' + t.overlap],
        ['Retry', t.retry ? t.retry.max_attempts + ' attempts, backoff ' + t.retry.backoff_ms + '–' + t.retry.max_backoff_ms + ' ms' : 'server default']
      ];
      if (t.type === 2) rows.push(['Fires at', fmtTime(oneShotMs(t.format))]);
      if (t.max_consecutive_failures !== undefined) rows.push(['Auto-pause after', t.max_consecutive_failures + ' failures']);
      var wide = [['Callback', h('code', { text: (cb.method || 'POST') + ' ' + cb.url })]];
      if (t.start_time || t.end_time) wide.push(['Window', (t.start_time ? fmtTime(t.start_time) : 'open') + ' → ' + (t.end_time ? fmtTime(t.end_time) : 'open')]);
      if (cb.urls) wide.push(['Targets', h('div', {}, h('div', { class: 'muted small', text: 'route: ' + (cb.route || 'failover') }), cb.urls.map(function (u) { return h('div', { class: 'mono', text: u }); }))]);
      if (cb.headers) wide.push(['Headers', h('pre', { text: json(cb.headers) })]);
      wide.push(['Body', h('pre', { class: 'body', text: json(cb.body || {}) })]);
      if (t.on_success) wide.push(['On success', t.on_success.map(function (c) { return h('div', {}, h('a', { href: '#/task/' + encodeURIComponent(c), class: 'mono', text: c })); })]);
      if (t.alert_url) wide.push(['Alert URL', h('code', { text: t.alert_url })]);
      if (t.idempotency_key) wide.push(['Idempotency key', h('code', { text: t.idempotency_key })]);
      info.textContent = '';
      add(info, h('dl', { class: 'kv' },
        rows.map(function (r) { return [h('dt', { text: r[0] }), h('dd', {}, r[1])]; }),
        wide.map(function (r) { return [h('dt', { class: 'wide', text: r[0] }), h('dd', { class: 'wide' }, r[1])]; })));
      void loadFires(t);
    }

    async function loadFires(t) {
      var key = [t.state, t.type, t.format, t.timezone, t.state === 'paused' ? Math.floor(Date.now() / 10000) : t.next_fire_time, t.end_time].join('|');
      if (key === lastFiresKey) return;
      lastFiresKey = key;
      var render = function (content) { if (!current(seq)) return; fires.textContent = ''; add(fires, content); };
      if (t.state === 'completed') return render(h('span', { class: 'muted', text: 'Completed: this one-shot task has fired and will not fire again.' }));
      if (t.next_fire_time === null || t.next_fire_time === undefined) return render(h('span', { class: 'muted', text: 'No fire time left in the schedule.' }));
      var pausedPeriodic = t.state === 'paused' && t.type === 1;
      var note = t.state === 'paused' ? h('p', { class: 'muted small', text: pausedPeriodic
        ? 'Paused: nothing fires until the task is resumed. Resumed now, it would fire at:'
        : 'Paused: nothing fires until the task is resumed (a one-shot keeps its time; if that has passed it fires at once).' }) : null;
      try {
        // Active: the stored next fire and what follows it. Paused periodic: resuming recomputes from then.
        var data = await api('GET', '/ui/api/next-fires' + qs({ type: t.type, format: t.format, timezone: t.timezone, from: t.type === 1 && !pausedPeriodic ? t.next_fire_time : '',
          start: pausedPeriodic ? t.start_time || '' : '', end: t.end_time || '', count: 5 }));
        render([note, h('ol', { class: 'fires', id: 'next-fire-list' }, data.times.map(function (ms) {
          return h('li', { title: new Date(ms).toISOString() }, fmtTime(ms), ' ', h('span', { class: 'muted small', text: rel(ms) }));
        })), h('p', { class: 'muted small', text: 'Shown in this browser\'s time zone; the task evaluates its schedule in ' + t.timezone + '.' })]);
      } catch (e) {
        render([note, h('div', {}, 'Next fire: ', fmtTime(t.next_fire_time), ' ', h('span', { class: 'muted small', text: rel(t.next_fire_time) }))]);
      }
    }

    async function loadRuns() {
      var data;
      try { data = await api('GET', '/xcron/taskRuns' + qs({ task_id: id, limit: 25, cursor: runCursor })); } catch (e) {
        if (!current(seq)) return;
        runsBox.textContent = '';
        if (e.status !== 404) add(runsBox, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: 'Could not load runs: ' + errText(e) })));
        return;
      }
      if (!current(seq)) return;
      var runs = data.runs || [];
      var table = h('table', { id: 'runs-table' },
        h('thead', {}, h('tr', {}, ['Scheduled', 'Status', 'Attempts', 'HTTP', 'Duration', 'Started', 'Finished', 'Node', 'Error / details'].map(function (c, i) {
          return h('th', { class: i === 2 || i === 3 || i === 4 ? 'num' : '', text: c });
        }))),
        h('tbody', {}, runs.length ? runs.map(function (r) {
          var details = [];
          if (r.error) details.push(h('div', { text: r.error }));
          if (r.shards && r.shards.length) {
            details.push(h('details', { 'data-key': r.run_id + ':shards' }, h('summary', { text: r.shards.length + ' shards (' + r.shards.filter(function (s) { return s.ok; }).length + ' ok)' }),
              h('table', { class: 'shards' }, h('tbody', {}, r.shards.map(function (s) {
                return h('tr', {}, h('td', { text: '#' + s.index }), h('td', { class: 'mono', text: s.url }), h('td', {}, badge(s.ok ? 'SUCCESS' : 'FAIL')),
                  h('td', { class: 'num', text: 'x' + s.attempts }), h('td', { class: 'num', text: s.http_status === null ? '—' : s.http_status }), h('td', { class: 'err', text: s.error || '' }));
              })))));
          }
          if (r.response_body) details.push(h('details', { 'data-key': r.run_id + ':response' }, h('summary', { text: 'response body' }), h('pre', { text: r.response_body })));
          return h('tr', { 'data-run-id': r.run_id, 'data-status': r.status },
            h('td', {}, timeCell(r.scheduled_time)),
            h('td', { class: 'status' }, badge(r.status)),
            h('td', { class: 'num', text: r.attempts }),
            h('td', { class: 'num', text: r.http_status === null || r.http_status === undefined ? '—' : r.http_status }),
            h('td', { class: 'num', text: r.duration_ms === null || r.duration_ms === undefined ? '—' : fmtMs(r.duration_ms) }),
            h('td', { text: fmtTime(r.start_time) }),
            h('td', { text: fmtTime(r.end_time) }),
            h('td', { class: 'mono small', text: r.node || '—' }),
            h('td', { class: r.error ? 'err' : '' }, details.length ? details : h('span', { class: 'muted', text: '—' })));
        }) : h('tr', {}, h('td', { colspan: 9, class: 'empty', text: runCursor ? 'No older runs.' : 'No runs yet.' }))));
      var open = {};
      runsBox.querySelectorAll('details[open]').forEach(function (d) { open[d.getAttribute('data-key')] = true; });
      table.querySelectorAll('details').forEach(function (d) { if (open[d.getAttribute('data-key')]) d.open = true; });
      runsBox.textContent = '';
      add(runsBox, h('div', { class: 'table-wrap' }, table));
      runsPager.textContent = '';
      add(runsPager, [
        h('button', { type: 'button', text: '« Newest', disabled: !runCursor, onclick: function () { S.runsPrev = []; runCursor = ''; live.checked = true; void loadRuns(); } }),
        h('button', { type: 'button', text: '‹ Newer', disabled: !runCursor, onclick: function () { runCursor = S.runsPrev.pop() || ''; if (!runCursor) live.checked = true; void loadRuns(); } }),
        h('button', { type: 'button', id: 'runs-older', text: 'Older ›', disabled: !data.next_cursor, onclick: function () { S.runsPrev.push(runCursor); runCursor = data.next_cursor; live.checked = false; void loadRuns(); } })
      ]);
    }

    function refreshAll() { void loadTask(); void loadRuns(); }
    S.runsPrev = [];
    every(3000, function () { if (live.checked && !document.hidden) refreshAll(); });
    refreshAll();
  }

  // ---------------------------------------------------------------- create / edit form

  var ADV_KEYS = ['start_time', 'end_time', 'on_success', 'alert_url', 'max_consecutive_failures', 'idempotency_key'];

  function same(a, b) { return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b); }

  function parseJsonField(text, what, wantObject) {
    if (text.trim() === '') return null;
    var v;
    try { v = JSON.parse(text); } catch (e) { throw new Error(what + ' is not valid JSON: ' + e.message); }
    if (wantObject && (v === null || typeof v !== 'object' || Array.isArray(v))) throw new Error(what + ' must be a JSON object');
    return v;
  }
  function intField(v, what) {
    if (v.trim() === '') return null;
    if (!/^\d+$/.test(v.trim())) throw new Error(what + ' must be a whole number');
    return Number(v.trim());
  }

  function viewForm(seq, editId) {
    setView(h('h1', { text: editId ? 'Edit task' : 'New task' }), h('div', { class: 'empty', text: 'Loading…' }));
    if (!editId) return buildForm(seq, null);
    api('GET', '/xcron/queryTask' + qs({ task_id: editId })).then(function (t) { if (current(seq)) buildForm(seq, t); }, function (e) {
      if (current(seq)) setView(h('h1', { text: 'Edit task' }), h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: errText(e) })));
    });
  }

  function buildForm(seq, t) {
    var edit = !!t;
    var cb = (t && t.callback) || {};
    var browserTz = '';
    try { browserTz = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { /* ignore */ }
    var f = {
      name: h('input', { name: 'name', id: 'f-name', value: t && t.name ? t.name : '', placeholder: 'e.g. order-timeout-sweep', maxlength: 200 }),
      type: h('select', { name: 'type', id: 'f-type', disabled: edit },
        h('option', { value: '1', text: 'Periodic (cron expression)', selected: !t || t.type === 1 }),
        h('option', { value: '2', text: 'One-shot (at a time)', selected: t && t.type === 2 })),
      format: h('input', { name: 'format', id: 'f-format', class: 'mono', value: t ? t.format : '', required: true, placeholder: '*/5 * * * *  ·  0 */10 * * * *  ·  @every 30s  ·  @daily' }),
      at: h('input', { type: 'datetime-local', id: 'f-at', step: 1, 'aria-label': 'one-shot time' }),
      timezone: h('input', { name: 'timezone', id: 'f-timezone', value: t ? t.timezone : '', placeholder: 'server default (' + (document.body.getAttribute('data-default-tz') || 'UTC') + ')', list: 'tz-list' }),
      url: h('input', { name: 'url', id: 'f-url', type: 'url', class: 'mono', value: cb.url || '', required: true, placeholder: 'https://service.internal/hooks/tick' }),
      method: h('select', { name: 'method', id: 'f-method' }, ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'].map(function (m) { return h('option', { value: m, text: m, selected: (cb.method || 'POST') === m }); })),
      headers: h('textarea', { name: 'headers', id: 'f-headers', rows: 3, placeholder: '{"X-Api-Key": "…"}' }),
      body: h('textarea', { name: 'body', id: 'f-body', rows: 5 }),
      timeout: h('input', { name: 'timeout_ms', id: 'f-timeout', inputmode: 'numeric', value: t && t.timeout_ms ? t.timeout_ms : '', placeholder: 'default' }),
      attempts: h('input', { name: 'max_attempts', id: 'f-attempts', inputmode: 'numeric', value: t && t.retry ? t.retry.max_attempts : '', placeholder: 'default' }),
      backoff: h('input', { name: 'backoff_ms', id: 'f-backoff', inputmode: 'numeric', value: t && t.retry ? t.retry.backoff_ms : '', placeholder: 'default' }),
      maxBackoff: h('input', { name: 'max_backoff_ms', id: 'f-max-backoff', inputmode: 'numeric', value: t && t.retry ? t.retry.max_backoff_ms : '', placeholder: 'default' }),
      misfire: h('select', { name: 'misfire', id: 'f-misfire' }, ['fire_once', 'skip'].map(function (m) { return h('option', { value: m, text: m, selected: (t ? t.misfire : 'fire_once') === m }); })),
      overlap: h('select', { name: 'overlap', id: 'f-overlap' }, ['allow', 'skip', 'queue'].map(function (m) { return h('option', { value: m, text: m, selected: (t ? t.overlap : 'allow') === m }); })),
      paused: h('input', { type: 'checkbox', name: 'paused', id: 'f-paused' }),
      advanced: h('textarea', { name: 'advanced', id: 'f-advanced', rows: 4, placeholder: '{"end_time": 1767225600, "on_success": ["<task id>"], "callback": {"urls": ["…", "…"], "route": "broadcast"}}' })
    };
    f.headers.value = cb.headers ? json(cb.headers) : '';
    f.body.value = json(cb.body || {});
    var adv = {};
    if (t) {
      ADV_KEYS.forEach(function (k) { if (t[k] !== undefined && !(edit && k === 'idempotency_key')) adv[k] = t[k]; });
      if (cb.urls) adv.callback = { urls: cb.urls, route: cb.route };
    }
    f.advanced.value = Object.keys(adv).length ? json(adv) : '';

    var tzList = h('datalist', { id: 'tz-list' }, ['UTC', browserTz, 'Asia/Shanghai', 'Asia/Tokyo', 'Asia/Kolkata', 'Europe/London', 'Europe/Berlin', 'America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Australia/Sydney']
      .filter(function (z, i, a) { return z && a.indexOf(z) === i; }).map(function (z) { return h('option', { value: z }); }));
    var preview = h('div', { class: 'preview', id: 'f-preview', 'aria-live': 'polite' });
    var err = h('div', { class: 'form-error', id: 'form-error' });
    var submit = h('button', { type: 'submit', class: 'primary', id: 'f-submit', text: edit ? 'Save changes' : 'Create task' });
    var atField = h('div', { class: 'field' }, h('label', { for: 'f-at', text: 'Fire at (this browser\'s local time; fills the format with unix seconds)' }), f.at);

    function syncType() {
      var one = f.type.value === '2';
      atField.hidden = !one;
      f.format.placeholder = one ? 'unix seconds, e.g. ' + Math.floor(Date.now() / 1000 + 3600) : '*/5 * * * *  ·  0 */10 * * * *  ·  @every 30s  ·  @daily';
    }
    f.type.addEventListener('change', function () { syncType(); schedulePreview(); });
    f.at.addEventListener('change', function () {
      var ms = f.at.value ? new Date(f.at.value).getTime() : NaN;
      if (!Number.isNaN(ms)) { f.format.value = String(Math.floor(ms / 1000)); schedulePreview(); }
    });
    if (t && t.type === 2) {
      var d = new Date(oneShotMs(t.format));
      f.at.value = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    }

    var pvTimer = null, pvSeq = 0;
    function schedulePreview() { clearTimeout(pvTimer); pvTimer = setTimeout(runPreview, 300); }
    async function runPreview() {
      var my = ++pvSeq;
      var format = f.format.value.trim();
      preview.className = 'preview';
      if (!format) { preview.textContent = ''; return; }
      var a = null;
      try { a = parseJsonField(f.advanced.value, 'Advanced', true); } catch (e) { a = null; }
      var toMs = function (v) { if (v === null || v === undefined) return ''; var s = String(v); return s.length === 10 ? Number(s) * 1000 : Number(s); };
      try {
        var data = await api('GET', '/ui/api/next-fires' + qs({ type: f.type.value, format: format, timezone: f.timezone.value.trim(), count: 5,
          start: a ? toMs(a.start_time) : '', end: a ? toMs(a.end_time) : '' }));
        if (my !== pvSeq || !current(seq)) return;
        preview.textContent = '';
        add(preview, [h('span', { class: 'muted', text: data.times.length ? 'Next fires: ' : 'This schedule has no fire time left.' }),
          data.times.map(function (ms, i) { return [i ? ' · ' : '', h('span', { title: new Date(ms).toISOString(), text: fmtTime(ms) })]; })]);
      } catch (e) {
        if (my !== pvSeq || !current(seq)) return;
        preview.className = 'preview error';
        preview.textContent = e.message;
      }
    }
    f.format.addEventListener('input', schedulePreview);
    f.timezone.addEventListener('input', schedulePreview);
    f.advanced.addEventListener('input', schedulePreview);

    function buildRequest() {
      var headers = parseJsonField(f.headers.value, 'Headers', true);
      var body = parseJsonField(f.body.value, 'Body', true) || {};
      var advanced = parseJsonField(f.advanced.value, 'Advanced options', true) || {};
      var callback = { url: f.url.value.trim(), body: body };
      if (f.method.value !== 'POST') callback.method = f.method.value;
      if (headers && Object.keys(headers).length) callback.headers = headers;
      if (advanced.callback && typeof advanced.callback === 'object') Object.assign(callback, advanced.callback);
      var req = {
        type: Number(f.type.value),
        format: f.format.value.trim(),
        callback: callback
      };
      if (f.name.value.trim()) req.name = f.name.value.trim();
      if (f.timezone.value.trim()) req.timezone = f.timezone.value.trim();
      var timeout = intField(f.timeout.value, 'Timeout');
      if (timeout !== null) req.timeout_ms = timeout;
      var retry = {};
      var ma = intField(f.attempts.value, 'Max attempts'), bo = intField(f.backoff.value, 'Backoff'), mb = intField(f.maxBackoff.value, 'Max backoff');
      if (ma !== null) retry.max_attempts = ma;
      if (bo !== null) retry.backoff_ms = bo;
      if (mb !== null) retry.max_backoff_ms = mb;
      if (Object.keys(retry).length) req.retry = retry;
      req.misfire = f.misfire.value;
      req.overlap = f.overlap.value;
      Object.keys(advanced).forEach(function (k) { if (k !== 'callback') req[k] = advanced[k]; });
      if (callback.urls && callback.url === '') delete callback.url;
      return { req: req, advanced: advanced };
    }

    /** updateTask body: only what changed (a callback that changed is sent whole). */
    function buildUpdate(built) {
      var req = built.req, out = { task_id: t.task_id };
      if (req.format !== t.format) out.format = req.format;
      if ((req.timezone || t.timezone) !== t.timezone) out.timezone = req.timezone;
      if ((req.name || null) !== (t.name || null)) out.name = req.name || null;
      var norm = function (c) { return { url: c.urls ? c.urls[0] : c.url, urls: c.urls || null, route: c.urls ? (c.route || 'failover') : null, method: c.method || 'POST', headers: c.headers || null, body: c.body || {} }; };
      if (!same(norm(req.callback), norm(t.callback))) {
        var c2 = Object.assign({}, req.callback);
        if (c2.urls) delete c2.url;
        out.callback = c2;
      }
      if (!same(req.timeout_ms === undefined ? null : req.timeout_ms, t.timeout_ms === undefined ? null : t.timeout_ms)) out.timeout_ms = req.timeout_ms === undefined ? null : req.timeout_ms;
      var r0 = t.retry || null, r1 = req.retry || null;
      if (r1 && r0) r1 = Object.assign({}, r0, r1);
      if (!same(r1, r0)) out.retry = r1;
      if (req.misfire !== t.misfire) out.misfire = req.misfire;
      if (req.overlap !== t.overlap) out.overlap = req.overlap;
      ADV_KEYS.forEach(function (k) {
        if (k === 'idempotency_key') return;
        var v = built.advanced[k];
        if (!same(v, t[k])) out[k] = v === undefined ? null : v;
      });
      if (built.advanced.idempotency_key !== undefined) throw new Error('idempotency_key cannot be changed on an existing task');
      return out;
    }

    var form = h('form', { class: 'task-form', id: 'task-form', novalidate: true, onsubmit: async function (ev) {
      ev.preventDefault();
      err.textContent = '';
      var built;
      try {
        built = buildRequest();
        if (!built.req.format) throw new Error('Schedule (format) is required');
        if (!built.req.callback.url && !built.req.callback.urls) throw new Error('Callback URL is required');
      } catch (e) {
        add(err, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: e.message })));
        return;
      }
      submit.disabled = true;
      try {
        if (!edit) {
          if (f.paused.checked) built.req.paused = true;
          var created = await api('POST', '/xcron/createTask', built.req);
          flash('ok', 'Created task ' + created.task_id);
          location.hash = '#/task/' + encodeURIComponent(created.task_id);
        } else {
          var upd = buildUpdate(built);
          if (Object.keys(upd).length === 1) { flash('ok', 'Nothing changed'); location.hash = '#/task/' + encodeURIComponent(t.task_id); return; }
          await api('POST', '/xcron/updateTask', upd);
          flash('ok', 'Saved task ' + t.task_id + ' (' + Object.keys(upd).filter(function (k) { return k !== 'task_id'; }).join(', ') + ')');
          location.hash = '#/task/' + encodeURIComponent(t.task_id);
        }
      } catch (e) {
        if (!current(seq)) return;
        add(err, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: (e.status === 403 ? 'Not allowed with this token: ' : '') + errText(e) })));
      } finally { submit.disabled = false; }
    } },
      h('div', { class: 'panel' },
        h('h2', { text: 'Schedule' }),
        h('div', { class: 'field' }, h('label', { for: 'f-name', text: 'Name (optional; the list searches by name prefix)' }), f.name),
        h('div', { class: 'fields2' },
          h('div', { class: 'field' }, h('label', { for: 'f-type', text: 'Type' + (edit ? ' (fixed)' : '') }), f.type),
          h('div', { class: 'field' }, h('label', { for: 'f-timezone', text: 'Timezone (IANA)' }), f.timezone, tzList)),
        h('div', { class: 'field' }, h('label', { for: 'f-format', text: 'Format' }), f.format,
          h('span', { class: 'hint', text: 'cron: 5 fields (min hour dom mon dow), 6 (leading seconds) or 7 (trailing year); Quartz ? L W #; @hourly @daily …; @every 1h30m. One-shot: unix seconds.' })),
        atField,
        preview,
        h('h2', { text: 'Policies' }),
        h('div', { class: 'fields2' },
          h('div', { class: 'field' }, h('label', { for: 'f-misfire', text: 'Misfire (ticks missed while down)' }), f.misfire),
          h('div', { class: 'field' }, h('label', { for: 'f-overlap', text: 'Overlap (previous run still going)' }), f.overlap)),
        h('div', { class: 'fields2' },
          h('div', { class: 'field' }, h('label', { for: 'f-timeout', text: 'Callback timeout (ms)' }), f.timeout),
          h('div', { class: 'field' }, h('label', { for: 'f-attempts', text: 'Retry: max attempts' }), f.attempts)),
        h('div', { class: 'fields2' },
          h('div', { class: 'field' }, h('label', { for: 'f-backoff', text: 'Retry: backoff (ms)' }), f.backoff),
          h('div', { class: 'field' }, h('label', { for: 'f-max-backoff', text: 'Retry: max backoff (ms)' }), f.maxBackoff)),
        edit ? null : h('div', { class: 'field' }, h('label', {}, f.paused, ' Create paused'))),
      h('div', { class: 'panel' },
        h('h2', { text: 'Callback' }),
        h('div', { class: 'fields2' },
          h('div', { class: 'field' }, h('label', { for: 'f-url', text: 'URL' }), f.url),
          h('div', { class: 'field' }, h('label', { for: 'f-method', text: 'Method' }), f.method)),
        h('div', { class: 'field' }, h('label', { for: 'f-body', text: 'Body (JSON object, sent with every callback)' }), f.body),
        h('div', { class: 'field' }, h('label', { for: 'f-headers', text: 'Headers (JSON object of strings, optional)' }), f.headers),
        h('div', { class: 'field' }, h('label', { for: 'f-advanced', text: 'Advanced options (JSON, optional): start_time, end_time, on_success, alert_url, max_consecutive_failures' + (edit ? '' : ', idempotency_key') + ', callback.urls + callback.route' }), f.advanced)),
      err,
      h('div', { class: 'form-actions' }, submit, h('a', { class: 'btn', href: edit ? '#/task/' + encodeURIComponent(t.task_id) : '#/tasks', text: 'Cancel' })));
    setView(h('h1', { text: edit ? 'Edit task ' + (t.name || t.task_id) : 'New task' }), form);
    syncType();
    if (f.format.value) void runPreview();
    (edit ? f.format : f.name).focus();
  }

  // ---------------------------------------------------------------- cluster

  function ownerColor(owner, i) {
    var palette = ['#2457c5', '#1f8a4c', '#a86a00', '#8a3fb5', '#c43d3d', '#138a8a', '#5a6b1f', '#b5407f'];
    if (i < palette.length) return palette[i];
    var hsh = 0;
    for (var k = 0; k < owner.length; k++) hsh = (hsh * 31 + owner.charCodeAt(k)) | 0;
    return 'hsl(' + (Math.abs(hsh) % 360) + ', 55%, 45%)';
  }

  function viewCluster(seq) {
    var box = h('div', { id: 'cluster' }, h('div', { class: 'empty', text: 'Loading…' }));
    setView(h('h1', { text: 'Cluster' }), box);
    async function load() {
      var c;
      try { c = await api('GET', '/xcron/cluster'); } catch (e) {
        if (!current(seq)) return;
        box.textContent = '';
        add(box, h('div', { class: 'flash error', role: 'alert' }, h('span', { class: 'msg', text: 'Could not load the cluster view: ' + errText(e) })));
        return;
      }
      if (!current(seq)) return;
      var slots = c.slots || [];
      var members = (c.members || []).slice().sort();
      var owners = {};
      members.forEach(function (m) { owners[m] = 0; });
      var unowned = 0;
      slots.forEach(function (s) { if (s.owner === null || s.owner === undefined) unowned++; else owners[s.owner] = (owners[s.owner] || 0) + 1; });
      var names = Object.keys(owners).sort();
      var colors = {};
      names.forEach(function (n, i) { colors[n] = ownerColor(n, i); });
      var memberTable = h('table', { id: 'members-table' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Node' }), h('th', { text: 'Member' }), h('th', { class: 'num', text: 'Owned slots' }), h('th', { class: 'num', text: 'Share' }))),
        h('tbody', {}, names.map(function (n) {
          var sw = h('i', {}); sw.style.background = colors[n];
          return h('tr', { 'data-node': n },
            h('td', { class: 'node' }, sw, h('span', { class: 'mono', text: n }), n === c.node ? [' ', h('span', { class: 'badge completed', text: 'this node' })] : null),
            h('td', { text: members.indexOf(n) >= 0 ? 'yes' : 'no (lease still held)' }),
            h('td', { class: 'num owned', text: owners[n] }),
            h('td', { class: 'num', text: slots.length ? (owners[n] * 100 / slots.length).toFixed(1) + ' %' : '—' }));
        })));
      var grid = h('div', { class: 'slots', id: 'slot-grid' }, slots.map(function (s) {
        var cell = h('div', { class: 'slot' + (s.owner ? '' : ' none'), title: 'slot ' + s.slot + ' → ' + (s.owner || 'no owner') + (s.epoch !== null && s.epoch !== undefined ? ' (epoch ' + s.epoch + ')' : '') });
        if (s.owner) cell.style.background = colors[s.owner];
        return cell;
      }));
      box.textContent = '';
      add(box, [
        h('div', { class: 'cards' }, card('This node', c.node, '', 'cluster-node'), card('Members', String(members.length), '', 'cluster-members'), card('Slots', String(slots.length)), card('Unowned slots', String(unowned), unowned ? 'bad' : 'ok', 'cluster-unowned')),
        h('div', { class: 'grid2' },
          h('div', {}, h('h2', { text: 'Nodes' }), h('div', { class: 'table-wrap' }, memberTable)),
          h('div', {}, h('h2', { text: 'Slot ownership' }), h('div', { class: 'panel' }, grid, h('p', { class: 'muted small', text: 'One cell per slot (hover for owner and fencing epoch); striped = no owner right now. A task lives in slot hash(task_id) mod ' + slots.length + '.' }))))
      ]);
    }
    every(5000, function () { if (!document.hidden) void load(); });
    void load();
  }

  // ---------------------------------------------------------------- start

  window.addEventListener('hashchange', function () { route(); });
  renderAuthStatus();
  setInterval(function () { void pollStats(); }, POLL_MS);
  void pollStats();
  route();
})();
`;
