/**
 * Bulk pause / resume / delete by tag or name prefix (POST /xcron/pauseTasks | resumeTasks |
 * deleteTasks). "Preview" asks with dry_run and lists what would change; "Apply" then acts on the
 * same selector (delete needs a second click).
 */
import { api, errText, statusOf } from './api.js';
import { h, replace } from './dom.js';
import { errorBox, flash } from './flash.js';
import type { BulkResult } from './types.js';
import { confirmButton } from './widgets.js';

const PATHS = { pause: 'pauseTasks', resume: 'resumeTasks', delete: 'deleteTasks' } as const;
type BulkAction = keyof typeof PATHS;

/** The bulk panel (a <details>, closed until opened); `after` runs after an applied change. */
export function bulkPanel(after: () => void): HTMLDetailsElement {
  const by: HTMLSelectElement = h('select', { id: 'bulk-by', 'aria-label': 'select tasks by' }, h('option', { value: 'tag', text: 'tag' }), h('option', { value: 'name_prefix', text: 'name prefix' }));
  const value = h('input', { id: 'bulk-value', 'aria-label': 'tag or name prefix', placeholder: 'e.g. billing' });
  const action: HTMLSelectElement = h('select', { id: 'bulk-action', 'aria-label': 'action' }, (Object.keys(PATHS) as BulkAction[]).map((a) => h('option', { value: a, text: a })));
  const note = h('input', { id: 'bulk-note', 'aria-label': 'pause note (optional)', placeholder: 'pause note (optional)', maxlength: 500 });
  const out = h('div', { id: 'bulk-result', 'aria-live': 'polite' });
  // The note goes with a pause only.
  const showNote = (): void => {
    note.hidden = action.value !== 'pause';
  };
  action.addEventListener('change', showNote);
  showNote();
  const selector = (): Record<string, string> | null => {
    const v = value.value.trim();
    return v ? { [by.value]: v } : null;
  };
  const call = async (dry: boolean): Promise<BulkResult | null> => {
    const sel = selector();
    if (!sel) {
      replace(out, errorBox('Give a tag or a name prefix first.'));
      return null;
    }
    try {
      const extra = action.value === 'pause' && note.value.trim() ? { note: note.value.trim() } : {};
      return await api<BulkResult>('POST', `/xcron/${PATHS[action.value as BulkAction]}`, { ...sel, ...extra, dry_run: dry });
    } catch (e) {
      replace(out, errorBox((statusOf(e) === 403 ? 'Not allowed with this token: ' : '') + errText(e)));
      return null;
    }
  };
  const apply = async (): Promise<void> => {
    const what = action.value;
    const r = await call(false);
    if (!r) return;
    flash('ok', `${what}: ${r.count} task${r.count === 1 ? '' : 's'} changed`);
    replace(out, null);
    after();
  };
  const preview = async (): Promise<void> => {
    const r = await call(true);
    if (!r) return;
    const ids = r.task_ids ?? [];
    const what = action.value as BulkAction;
    const go =
      what === 'delete'
        ? confirmButton(`Delete ${r.count} task${r.count === 1 ? '' : 's'}`, 'Click again to delete them', apply, { id: 'bulk-apply' })
        : h('button', { type: 'button', class: 'primary', id: 'bulk-apply', text: `${what === 'pause' ? 'Pause' : 'Resume'} ${r.count} task${r.count === 1 ? '' : 's'}`, onclick: () => void apply() });
    replace(out, [
      h('p', { id: 'bulk-count', text: `Would ${what} ${r.count} task${r.count === 1 ? '' : 's'} (dry run: nothing changed yet).` }),
      ids.length ? h('ul', { class: 'small mono', id: 'bulk-ids' }, ids.slice(0, 50).map((id) => h('li', {}, h('a', { href: `#/task/${encodeURIComponent(id)}`, text: id })))) : null,
      ids.length > 50 ? h('p', { class: 'muted small', text: `… and ${ids.length - 50} more` }) : null,
      r.count ? go : null,
    ]);
  };
  for (const el of [by, value, action]) el.addEventListener('input', () => replace(out, null));
  return h(
    'details',
    { class: 'panel filters', id: 'bulk' },
    h('summary', { text: 'Bulk pause / resume / delete by tag or name prefix' }),
    h('div', { class: 'row' }, by, value, action, note, h('button', { type: 'button', id: 'bulk-preview', text: 'Preview', onclick: () => void preview() })),
    out,
  );
}
