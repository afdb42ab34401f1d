/** Small pieces shared by the views: badges, time cells, stat cards and the task action buttons. */
import { api, errText, statusOf } from './api.js';
import { h, type Props } from './dom.js';
import { flash } from './flash.js';
import { fmtTime, inZone, rel } from './format.js';
import type { TaskView } from './types.js';

export const badge = (text: string): HTMLSpanElement => h('span', { class: `badge ${text}`, text });

/**
 * A local time with "in 5s" under it, and the same instant in the task's zone `tz` when that is not
 * this browser's; the ISO time and ms epoch on hover.
 */
export function timeCell(ms: number | null | undefined, tz?: string): HTMLSpanElement {
  if (ms === null || ms === undefined) return h('span', { class: 'muted', text: '—' });
  const zoned = inZone(ms, tz);
  return h(
    'span',
    { title: `${new Date(ms).toISOString()} (${ms})` },
    h('span', { class: 'local', text: zoned ? `${fmtTime(ms)} local` : fmtTime(ms) }),
    zoned ? h('div', { class: 'zone', text: zoned }) : null,
    h('div', { class: 'sub', text: rel(ms) }),
  );
}

/** The task's tags as chips. */
export const tagChips = (tags: readonly string[] | undefined): HTMLSpanElement[] => (tags ?? []).map((t) => h('span', { class: 'tag', text: t }));

export function card(label: string, value: string, cls = '', testid?: string): HTMLDivElement {
  return h('div', { class: 'card' }, h('div', { class: 'label', text: label }), h('div', { class: `value${cls ? ` ${cls}` : ''}`, 'data-testid': testid, text: value }));
}

export type TaskAction = 'pause' | 'resume' | 'trigger' | 'delete';

const ACTION_PATH: Record<TaskAction, string> = { pause: 'pauseTask', resume: 'resumeTask', trigger: 'triggerTask', delete: 'deleteTask' };
const ACTION_DONE: Record<TaskAction, string> = { pause: 'Paused ', resume: 'Resumed ', trigger: 'Triggered a run of ', delete: 'Deleted ' };

/** Runs a task operation and says how it went; `after` runs on success. `extra`: more body fields (a pause note). */
export async function act(kind: TaskAction, id: string, after?: () => void, extra: Record<string, unknown> = {}): Promise<void> {
  try {
    await api('POST', `/xcron/${ACTION_PATH[kind]}`, { ...extra, task_id: id });
    flash('ok', ACTION_DONE[kind] + id);
    after?.();
  } catch (e) {
    flash('error', (statusOf(e) === 403 ? 'Not allowed with this token: ' : `Could not ${kind} ${id}: `) + errText(e));
  }
}

/** A button that needs a second click within 4 s (no native dialogs). */
export function confirmButton(label: string, armedLabel: string, onConfirm: () => Promise<void>, attrs: Props = {}): HTMLButtonElement {
  let armed = false;
  let timer: number | undefined;
  const b = h('button', { type: 'button', class: 'danger', text: label, ...attrs });
  const disarm = (): void => {
    armed = false;
    b.classList.remove('armed');
    b.textContent = label;
  };
  b.addEventListener('click', () => {
    if (!armed) {
      armed = true;
      b.classList.add('armed');
      b.textContent = armedLabel;
      timer = window.setTimeout(disarm, 4000);
      return;
    }
    clearTimeout(timer);
    armed = false;
    b.disabled = true;
    void onConfirm().finally(() => {
      b.disabled = false;
      disarm();
    });
  });
  return b;
}

/**
 * Pause or resume (by state) and "Trigger now"; `refresh` runs after a success. `note`: an input
 * whose text (when any) goes with a pause as its note.
 */
export function actionButtons(t: TaskView, refresh: () => void, small: boolean, note?: HTMLInputElement): HTMLButtonElement[] {
  const cls = small ? 'small' : '';
  const extra = (action: TaskAction): Record<string, unknown> => (action === 'pause' && note && note.value.trim() ? { note: note.value.trim() } : {});
  const button = (action: TaskAction, text: string, title?: string): HTMLButtonElement =>
    h('button', { type: 'button', class: cls, 'data-action': action, text, title, onclick: () => act(action, t.task_id, refresh, extra(action)) });
  const out: HTMLButtonElement[] = [];
  if (t.state === 'active') out.push(button('pause', 'Pause'));
  if (t.state === 'paused') out.push(button('resume', 'Resume'));
  out.push(button('trigger', 'Trigger now', 'fire once now, outside the schedule'));
  return out;
}

/** Why a paused task is paused, in one line: "auto-paused …" (the reason) or the note and who. */
export function pauseText(t: TaskView): string | null {
  const p = t.state === 'paused' ? t.pause : undefined;
  if (!p) return null;
  if (p.kind === 'auto') return p.note ?? 'auto-paused after consecutive failures';
  const who = p.by ? `paused by ${p.by}` : 'paused';
  return p.note ? `${who}: ${p.note}` : who;
}
