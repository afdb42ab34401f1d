/**
 * The form's live preview: the next five fire times of the schedule being typed, computed by the
 * server (/ui/api/next-fires, the same parser createTask uses), 300 ms after the last keystroke.
 */
import { api, messageOf, qs } from './api.js';
import { h, replace } from './dom.js';
import { fmtTime } from './format.js';
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

export function livePreview(seq: number, box: HTMLElement, read: () => PreviewInput): Preview {
  let timer: number | undefined;
  let last = 0;
  const run = async (): Promise<void> => {
    const my = ++last;
    const input = read();
    const format = input.format.trim();
    box.className = 'preview';
    if (!format) {
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
      replace(box, [
        h('span', { class: 'muted', text: data.times.length ? 'Next fires: ' : 'This schedule has no fire time left.' }),
        data.times.map((ms, i) => [i ? ' · ' : '', h('span', { title: new Date(ms).toISOString(), text: fmtTime(ms) })]),
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
