/**
 * The form's live preview: the next five fire times of the schedule being typed, computed by the
 * server (/ui/api/next-fires, the same parser createTask uses), 300 ms after the last keystroke,
 * with the schedule in plain language. Times show in local time and in the task's zone; a one-shot
 * time in the past is flagged (createTask refuses it).
 */
import { api, messageOf, qs } from './api.js';
import { h, replace } from './dom.js';
import { fmtTime, inZone } from './format.js';
import { parseJsonObject } from './form-model.js';
import type { Fires } from './types.js';
import { current } from './view.js';

export interface PreviewInput {
  type: string;
  format: string;
  timezone: string;
  /** The "Advanced options" text (its start_time and end_time bound the list). */
  advanced: string;
}

/** start_time / end_time as given (unix seconds or ms) to ms; '' when absent. */
function toMs(v: unknown): number | '' {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return s.length === 10 ? Number(s) * 1000 : Number(s);
}

export interface Preview {
  /** Recomputes after a pause in typing. */
  schedule(): void;
  /** Recomputes now. */
  run(): Promise<void>;
}

function fireList(data: Fires, tz: string): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (data.description) out.push(h('div', { id: 'f-description', text: data.description }));
  if (!data.times.length) {
    out.push(h('span', { class: 'muted', text: 'This schedule has no fire time left.' }));
    return out;
  }
  const zoned = data.times.map((ms) => inZone(ms, tz));
  out.push(
    h(
      'div',
      {},
      h('span', { class: 'muted', text: 'Next fires (local time): ' }),
      data.times.map((ms, i) => [i ? ' · ' : '', h('span', { title: new Date(ms).toISOString(), text: fmtTime(ms) })]),
    ),
  );
  if (zoned.some(Boolean)) out.push(h('div', { class: 'zone', text: `In ${tz}: ${data.times.map((ms) => inZone(ms, tz).replace(` ${tz}`, '')).join(' · ')}` }));
  return out;
}

export function livePreview(seq: number, box: HTMLElement, read: () => PreviewInput): Preview {
  let timer: number | undefined;
  let last = 0;
  const run = async (): Promise<void> => {
    const my = ++last;
    const input = read();
    const format = input.format.trim();
    if (!format) {
      box.className = 'preview';
      box.textContent = '';
      return;
    }
    let a: Record<string, unknown> | null;
    try {
      a = parseJsonObject(input.advanced, 'Advanced');
    } catch {
      a = null;
    }
    const query = qs({ type: input.type, format, timezone: input.timezone.trim(), count: 5, start: a ? toMs(a.start_time) : '', end: a ? toMs(a.end_time) : '' });
    try {
      const data = await api<Fires>('GET', `/ui/api/next-fires${query}`);
      if (my !== last || !current(seq)) return;
      const past = input.type === '2' && data.times.length > 0 && data.times[0]! < Date.now();
      box.className = past ? 'preview warn' : 'preview';
      replace(box, [
        past ? h('div', { id: 'f-past', role: 'alert', text: `This time is in the past (${fmtTime(data.times[0])}): a one-shot must be in the future, so it would be refused.` }) : null,
        fireList(data, data.timezone),
      ]);
    } catch (e) {
      if (my !== last || !current(seq)) return;
      box.className = 'preview error';
      box.textContent = messageOf(e);
    }
  };
  return {
    schedule: () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => void run(), 300);
    },
    run,
  };
}
