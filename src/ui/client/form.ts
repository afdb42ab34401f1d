/** The create and edit form: fields, one-shot time picker, live preview, and submit. */
import { api, errText, messageOf, qs, statusOf } from './api.js';
import { add, h, type Child } from './dom.js';
import { errorBox, flash } from './flash.js';
import { json, localInputValue, oneShotMs } from './format.js';
import { advancedText, buildRequest, buildUpdate, type Built, type FormValues } from './form-model.js';
import { livePreview } from './preview.js';
import type { TaskView } from './types.js';
import { current, setTitle, setView } from './view.js';

const TIMEZONES = ['Asia/Shanghai', 'Asia/Tokyo', 'Asia/Kolkata', 'Europe/London', 'Europe/Berlin', 'America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Australia/Sydney'];
const CRON_PLACEHOLDER = '*/5 * * * *  ·  0 */10 * * * *  ·  @every 30s  ·  @daily';

function browserTimezone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    return '';
  }
}

const options = (values: readonly string[], selected: string): HTMLOptionElement[] => values.map((m) => h('option', { value: m, text: m, selected: selected === m }));

/** The form's inputs, filled from `t` when editing (`edit`) or cloning it. */
function formFields(t: TaskView | null, edit: boolean) {
  const cb = t?.callback;
  const retry = t?.retry;
  const f = {
    name: h('input', { name: 'name', id: 'f-name', value: t ? (edit ? (t.name ?? '') : `${t.name ?? t.task_id}-copy`) : '', placeholder: 'e.g. order-timeout-sweep', maxlength: 200 }),
    type: h(
      'select',
      { name: 'type', id: 'f-type', disabled: edit },
      h('option', { value: '1', text: 'Periodic (cron expression)', selected: !t || t.type === 1 }),
      h('option', { value: '2', text: 'One-shot (at a time)', selected: t?.type === 2 }),
    ),
    format: h('input', { name: 'format', id: 'f-format', class: 'mono', value: t ? t.format : '', required: true, placeholder: CRON_PLACEHOLDER }),
    at: h('input', { type: 'datetime-local', id: 'f-at', step: 1, 'aria-label': 'one-shot time' }),
    timezone: h('input', { name: 'timezone', id: 'f-timezone', value: t ? t.timezone : '', placeholder: `server default (${document.body.getAttribute('data-default-tz') || 'UTC'})`, list: 'tz-list' }),
    url: h('input', { name: 'url', id: 'f-url', type: 'url', class: 'mono', value: cb?.url || '', placeholder: 'https://service.internal/hooks/tick' }),
    target: h('input', { name: 'target', id: 'f-target', class: 'mono', value: cb?.target || '', placeholder: 'a [targets.<name>] of the server (instead of a URL)' }),
    key: h('input', { name: 'key', id: 'f-key', class: 'mono', value: cb?.key || '', placeholder: "default: the target's own" }),
    method: h('select', { name: 'method', id: 'f-method' }, options(['POST', 'PUT', 'PATCH', 'DELETE', 'GET'], cb?.method || 'POST')),
    headers: h('textarea', { name: 'headers', id: 'f-headers', rows: 3, placeholder: '{"X-Api-Key": "…"}' }),
    body: h('textarea', { name: 'body', id: 'f-body', rows: 5 }),
    timeout: h('input', { name: 'timeout_ms', id: 'f-timeout', inputmode: 'numeric', value: t?.timeout_ms || '', placeholder: 'default' }),
    completion: h(
      'select',
      { name: 'completion', id: 'f-completion' },
      h('option', { value: 'sync', text: 'sync: a 2xx answer finishes the run', selected: (t?.completion ?? 'sync') === 'sync' }),
      h('option', { value: 'async', text: 'async: the worker reports the outcome', selected: t?.completion === 'async' }),
    ),
    asyncTimeout: h('input', { name: 'async_timeout_ms', id: 'f-async-timeout', inputmode: 'numeric', value: t?.async_timeout_ms || '', placeholder: 'default (1 h)' }),
    tags: h('input', { name: 'tags', id: 'f-tags', value: (t?.tags ?? []).join(', '), placeholder: 'e.g. billing, nightly' }),
    attempts: h('input', { name: 'max_attempts', id: 'f-attempts', inputmode: 'numeric', value: retry ? retry.max_attempts : '', placeholder: 'default' }),
    backoff: h('input', { name: 'backoff_ms', id: 'f-backoff', inputmode: 'numeric', value: retry ? retry.backoff_ms : '', placeholder: 'default' }),
    maxBackoff: h('input', { name: 'max_backoff_ms', id: 'f-max-backoff', inputmode: 'numeric', value: retry ? retry.max_backoff_ms : '', placeholder: 'default' }),
    misfire: h('select', { name: 'misfire', id: 'f-misfire' }, options(['fire_once', 'skip'], t ? t.misfire : 'fire_once')),
    overlap: h('select', { name: 'overlap', id: 'f-overlap' }, options(['allow', 'skip', 'queue'], t ? t.overlap : 'allow')),
    paused: h('input', { type: 'checkbox', name: 'paused', id: 'f-paused' }),
    advanced: h('textarea', {
      name: 'advanced',
      id: 'f-advanced',
      rows: 4,
      placeholder: '{"end_time": 1767225600, "on_success": ["<task id>"], "callback": {"urls": ["…", "…"], "route": "broadcast"}}',
    }),
  };
  f.headers.value = cb?.headers ? json(cb.headers) : '';
  f.body.value = json(cb?.body || {});
  f.advanced.value = advancedText(t, true); // never an existing idempotency key (a clone is a new task)
  if (t && t.type === 2) f.at.value = localInputValue(oneShotMs(t.format));
  return f;
}

type Fields = ReturnType<typeof formFields>;

const valuesOf = (f: Fields): FormValues => ({
  type: f.type.value,
  format: f.format.value,
  name: f.name.value,
  timezone: f.timezone.value,
  url: f.url.value,
  method: f.method.value,
  headers: f.headers.value,
  body: f.body.value,
  advanced: f.advanced.value,
  timeout: f.timeout.value,
  attempts: f.attempts.value,
  backoff: f.backoff.value,
  maxBackoff: f.maxBackoff.value,
  misfire: f.misfire.value,
  overlap: f.overlap.value,
  completion: f.completion.value,
  asyncTimeout: f.asyncTimeout.value,
  tags: f.tags.value,
  target: f.target.value,
  key: f.key.value,
});

const field = (id: string, label: string, ...control: Child[]): HTMLDivElement => h('div', { class: 'field' }, h('label', { for: id, text: label }), ...control);
const pair = (a: Child, b: Child): HTMLDivElement => h('div', { class: 'fields2' }, a, b);

function layout(f: Fields, edit: boolean, atField: HTMLElement, preview: HTMLElement): HTMLDivElement[] {
  const tzList = h(
    'datalist',
    { id: 'tz-list' },
    ['UTC', browserTimezone(), ...TIMEZONES].filter((z, i, a) => z && a.indexOf(z) === i).map((z) => h('option', { value: z })),
  );
  const advancedLabel = `Advanced options (JSON, optional): start_time, end_time, on_success, alert_url, max_consecutive_failures, jitter_ms, flow_key, flow${edit ? '' : ', idempotency_key'}, callback.urls + callback.route`;
  return [
    h(
      'div',
      { class: 'panel' },
      h('h2', { text: 'Schedule' }),
      pair(field('f-name', 'Name (optional)', f.name), field('f-tags', 'Tags (optional, comma-separated)', f.tags)),
      pair(field('f-type', `Type${edit ? ' (fixed)' : ''}`, f.type), field('f-timezone', 'Timezone (IANA)', f.timezone, tzList)),
      field(
        'f-format',
        'Format',
        f.format,
        h('span', { class: 'hint', text: 'cron: 5 fields (min hour dom mon dow), 6 (leading seconds) or 7 (trailing year); Quartz ? L W #; @hourly @daily …; @every 1h30m. One-shot: unix seconds.' }),
      ),
      atField,
      preview,
      h('h2', { text: 'Policies' }),
      pair(field('f-misfire', 'Misfire (ticks missed while down)', f.misfire), field('f-overlap', 'Overlap (previous run still going)', f.overlap)),
      pair(field('f-timeout', 'Callback timeout (ms)', f.timeout), field('f-attempts', 'Retry: max attempts', f.attempts)),
      pair(field('f-backoff', 'Retry: backoff (ms)', f.backoff), field('f-max-backoff', 'Retry: max backoff (ms)', f.maxBackoff)),
      pair(field('f-completion', 'Completion', f.completion), field('f-async-timeout', 'Async report deadline (ms)', f.asyncTimeout)),
      h('p', { class: 'hint muted small', text: 'A cleared field goes back to its default when saved.' }),
      edit ? null : h('div', { class: 'field' }, h('label', {}, f.paused, ' Create paused')),
    ),
    h(
      'div',
      { class: 'panel' },
      h('h2', { text: 'Callback' }),
      pair(field('f-url', 'URL', f.url), field('f-method', 'Method', f.method)),
      pair(field('f-target', 'Queue target (instead of a URL)', f.target), field('f-key', 'Queue key (stream / routing key, optional)', f.key)),
      field('f-body', 'Body (JSON object, sent with every callback)', f.body),
      field('f-headers', 'Headers (JSON object of strings, optional)', f.headers),
      field('f-advanced', advancedLabel, f.advanced),
    ),
  ];
}

/** Creates or saves; on success goes to the task page. */
async function submitForm(built: Built, paused: boolean, t: TaskView | null): Promise<void> {
  if (!t) {
    if (paused) built.req.paused = true;
    const created = await api<{ task_id: string }>('POST', '/xcron/createTask', built.req);
    flash('ok', `Created task ${created.task_id}`);
    location.hash = `#/task/${encodeURIComponent(created.task_id)}`;
    return;
  }
  const upd = buildUpdate(built, t, document.body.getAttribute('data-default-tz') || 'UTC');
  const changed = Object.keys(upd).filter((k) => k !== 'task_id');
  if (changed.length === 0) flash('ok', 'Nothing changed');
  else {
    await api('POST', '/xcron/updateTask', upd);
    flash('ok', `Saved task ${t.task_id} (${changed.join(', ')})`);
  }
  location.hash = `#/task/${encodeURIComponent(t.task_id)}`;
}

function buildForm(seq: number, t: TaskView | null, edit: boolean): void {
  const f = formFields(t, edit);
  const preview = h('div', { class: 'preview', id: 'f-preview', 'aria-live': 'polite' });
  const err = h('div', { class: 'form-error', id: 'form-error' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'f-submit', text: edit ? 'Save changes' : 'Create task' });
  const atField = field('f-at', "Fire at (this browser's local time; fills the format with unix seconds)", f.at);
  const pv = livePreview(seq, preview, () => ({ type: f.type.value, format: f.format.value, timezone: f.timezone.value, advanced: f.advanced.value }));

  const syncType = (): void => {
    const one = f.type.value === '2';
    atField.hidden = !one;
    f.format.placeholder = one ? `unix seconds, e.g. ${Math.floor(Date.now() / 1000 + 3600)}` : CRON_PLACEHOLDER;
  };
  f.type.addEventListener('change', () => {
    syncType();
    pv.schedule();
  });
  f.at.addEventListener('change', () => {
    const ms = f.at.value ? new Date(f.at.value).getTime() : NaN;
    if (Number.isNaN(ms)) return;
    f.format.value = String(Math.floor(ms / 1000));
    pv.schedule();
  });
  for (const input of [f.format, f.timezone, f.advanced]) input.addEventListener('input', () => pv.schedule());
  // An error from the last submit is about the old input: it goes as soon as the input changes.
  {
    const clearErr = (): void => {
      err.textContent = '';
    };
    for (const input of Object.values(f)) {
      input.addEventListener('input', clearErr);
      input.addEventListener('change', clearErr);
    }
  }

  const onSubmit = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    err.textContent = '';
    let built: Built;
    try {
      built = buildRequest(valuesOf(f));
      if (!built.req.format) throw new Error('Schedule (format) is required');
      if (!built.req.callback.url && !built.req.callback.urls && !built.req.callback.target) throw new Error('Callback URL (or a queue target) is required');
    } catch (e) {
      add(err, errorBox(messageOf(e)));
      return;
    }
    submit.disabled = true;
    try {
      await submitForm(built, f.paused.checked, edit ? t : null);
    } catch (e) {
      if (current(seq)) add(err, errorBox((statusOf(e) === 403 ? 'Not allowed with this token: ' : '') + errText(e)));
    } finally {
      submit.disabled = false;
    }
  };
  const form = h(
    'form',
    { class: 'task-form', id: 'task-form', novalidate: true, onsubmit: onSubmit },
    layout(f, edit, atField, preview),
    err,
    h('div', { class: 'form-actions' }, submit, h('a', { class: 'btn', href: t ? `#/task/${encodeURIComponent(t.task_id)}` : '#/tasks', text: 'Cancel' })),
  );
  const title = t ? (edit ? `Edit task ${t.name || t.task_id}` : `New task (copy of ${t.name || t.task_id})`) : 'New task';
  setView(h('h1', { text: title }), form);
  setTitle(title);
  syncType();
  if (f.format.value) void pv.run();
}

/** The form for a new task (`editId` null; `cloneId`: prefilled from that task) or for editing one. */
export function viewForm(seq: number, editId: string | null, cloneId: string | null): void {
  setView(h('h1', { text: editId ? 'Edit task' : 'New task' }), h('div', { class: 'empty', text: 'Loading…' }));
  const from = editId ?? cloneId;
  if (!from) {
    buildForm(seq, null, false);
    return;
  }
  api<TaskView>('GET', `/xcron/queryTask${qs({ task_id: from })}`).then(
    (t) => {
      if (current(seq)) buildForm(seq, t, editId !== null);
    },
    (e: unknown) => {
      if (current(seq)) setView(h('h1', { text: 'Edit task' }), errorBox(errText(e)));
    },
  );
}
