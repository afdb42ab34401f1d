/** Task tags: a short list of labels for filtering (listTasks?tag=) and bulk operations. */
import { describe, invalidOption, typeError } from '../errors.js';

export const MAX_TAGS = 16;
export const MAX_TAG_LENGTH = 64;
/** A tag: 1 to 64 characters of letters, digits and `_ . : -`. */
export const TAG_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Why `v` is not a tag, or null. */
export function tagProblem(v: unknown): string | null {
  if (typeof v !== 'string') return `must be a string, got ${describe(v)}`;
  if (!TAG_RE.test(v)) return `must be 1 to ${MAX_TAG_LENGTH} characters of letters, digits and _ . : - (got ${JSON.stringify(v.slice(0, 80))})`;
  return null;
}

/** A task's `tags`: null or an empty array clears them; duplicates are dropped, order is kept. */
export function parseTags(v: unknown): string[] | null {
  if (v === null) return null;
  if (!Array.isArray(v)) throw typeError('tags', 'an array of strings', v);
  if (v.length > MAX_TAGS) throw invalidOption('tags', `at most ${MAX_TAGS} tags, got ${v.length}`);
  v.forEach((t, i) => {
    const why = tagProblem(t);
    if (why !== null) throw invalidOption(`tags[${i}]`, why);
  });
  const out = [...new Set(v as string[])];
  return out.length > 0 ? out : null;
}
