/**
 * "Trigger with a body…" on the task page: one run now with a one-off body (and headers), sent by
 * POST /xcron/triggerTask {task_id, body, headers}; the task's own body stays as it is.
 */
import { api, errText, messageOf, statusOf } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, flash } from './flash.js';
import { json } from './format.js';
import { parseJsonObject } from './form-model.js';
import type { TaskView } from './types.js';

/** The form, into `box` (toggled: a second call closes it). */
export function toggleTriggerForm(box: HTMLElement, t: TaskView, after: () => void): void {
  if (!box.hidden) {
    box.hidden = true;
    replace(box, null);
    return;
  }
  const body = h('textarea', { id: 'trigger-body', rows: 5 });
  body.value = json(t.callback.body || {});
  const headers = h('textarea', { id: 'trigger-headers', rows: 2, placeholder: '{"X-Reason": "backfill"} (optional)' });
  const err = h('div');
  const send = h('button', { type: 'submit', class: 'primary', id: 'trigger-send', text: 'Trigger this run' });
  const submit = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    err.textContent = '';
    let req: Record<string, unknown>;
    try {
      req = { task_id: t.task_id, body: parseJsonObject(body.value, 'Body') ?? {} };
      const hd = parseJsonObject(headers.value, 'Headers');
      if (hd && Object.keys(hd).length) req.headers = hd;
    } catch (e) {
      err.appendChild(errorBox(messageOf(e)));
      return;
    }
    send.disabled = true;
    try {
      const r = await api<{ run_id?: string }>('POST', '/xcron/triggerTask', req);
      flash('ok', `Triggered a run of ${t.task_id} with a one-off body${r.run_id ? ` (run ${r.run_id})` : ''}`);
      box.hidden = true;
      replace(box, null);
      after();
    } catch (e) {
      err.appendChild(errorBox((statusOf(e) === 403 ? 'Not allowed with this token: ' : '') + errText(e)));
    } finally {
      send.disabled = false;
    }
  };
  for (const el of [body, headers]) el.addEventListener('input', () => (err.textContent = ''));
  replace(
    box,
    h(
      'form',
      { class: 'panel inline-form', id: 'trigger-form', onsubmit: submit },
      h('h2', { text: 'Trigger once with a one-off body' }),
      h('p', { class: 'muted small', text: 'Sent for this run only; the task keeps its own body and headers.' }),
      h('div', { class: 'field' }, h('label', { for: 'trigger-body', text: 'Body (JSON object)' }), body),
      h('div', { class: 'field' }, h('label', { for: 'trigger-headers', text: 'Extra headers (JSON object, optional)' }), headers),
      err,
      h('div', { class: 'row' }, send, h('button', { type: 'button', text: 'Cancel', onclick: () => toggleTriggerForm(box, t, after) })),
    ),
  );
  box.hidden = false;
}
