/**
 * A run's execution log (GET /xcron/runLog), tailing live: new lines are appended every second
 * (`since` = the last line read) until the run is finished and no more lines come; then the run's
 * outcome, message and output show under the log.
 */
import { api, errText, qs } from './api.js';
import { h, replace } from './dom.js';
import { errorBox } from './flash.js';
import { fmtElapsed, json } from './format.js';
import { selecting } from './keep.js';
import type { RunLog } from './types.js';
import { current, every } from './view.js';
import { badge } from './widgets.js';

const TAIL_MS = 1000;
let stopPrevious: (() => void) | null = null;

/** Shows run `runId`'s log in `box` and keeps it tailing while the view `seq` is on screen. */
export function showRunLog(seq: number, box: HTMLElement, runId: string, onClose: () => void): void {
  const pre = h('pre', { class: 'log', id: 'run-log-lines', 'aria-live': 'polite', 'aria-label': `log of run ${runId}` });
  const status = h('div', { class: 'row', id: 'run-log-status' }, h('span', { class: 'muted', text: 'Loading…' }));
  const outcome = h('div', { id: 'run-log-outcome' });
  const close = h('button', { type: 'button', class: 'small', id: 'run-log-close', text: 'Close log', onclick: () => done('closed') });
  replace(box, h('div', { class: 'panel', 'data-run': runId }, h('div', { class: 'row' }, h('h2', { text: 'Run log' }), h('code', { text: runId }), h('span', { class: 'spacer' }), close), status, pre, outcome));
  box.hidden = false;
  stopPrevious?.();
  let since = 0;
  let stopped = false;
  stopPrevious = () => {
    stopped = true;
  };
  let busy = false;
  let count = 0;
  const started = Date.now();
  const done = (why: 'closed' | 'finished'): void => {
    stopped = true;
    if (why === 'closed') {
      box.hidden = true;
      replace(box, null);
      onClose();
    }
  };
  const poll = async (): Promise<void> => {
    if (stopped || busy || !current(seq)) return;
    busy = true;
    try {
      const d = await api<RunLog>('GET', `/xcron/runLog${qs({ run_id: runId, since, limit: 500 })}`);
      if (stopped || !current(seq)) return;
      const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
      for (const l of d.lines) {
        pre.appendChild(h('span', { class: 'seq', text: `${String(l.seq).padStart(4, ' ')}  ` }));
        pre.appendChild(document.createTextNode(`${l.line}\n`));
      }
      count += d.lines.length;
      since = d.next_since;
      if (atBottom && !selecting(pre)) pre.scrollTop = pre.scrollHeight;
      const finished = d.finished && d.lines.length === 0;
      replace(status, [badge(d.status), h('span', { class: 'muted small', 'data-testid': 'run-log-count', text: `${count} line${count === 1 ? '' : 's'}` }), h('span', { class: 'muted small', text: finished ? 'finished' : `tailing live (every ${TAIL_MS / 1000} s, ${fmtElapsed(Date.now() - started)})` })]);
      const r = d.run;
      if (d.finished && r) {
        replace(outcome, [
          r.message !== undefined ? h('div', { class: 'run-message' }, h('span', { class: 'muted', text: 'message: ' }), r.message) : null,
          r.error ? h('div', { class: 'err run-error', text: r.error }) : null,
          r.output !== undefined ? h('pre', { class: 'run-output', text: json(r.output) }) : null,
        ]);
      }
      if (finished) done('finished');
    } catch (e) {
      if (!stopped && current(seq)) replace(status, errorBox(`Could not read the log: ${errText(e)}`));
    } finally {
      busy = false;
    }
  };
  every(TAIL_MS, () => void poll());
  void poll();
}
