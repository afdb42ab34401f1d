/** The child-graph (on_success) cycle check, shared by the stores that can walk the graph in one transaction. */
import type { GraphRefusal } from './types.js';

/** At most this many tasks are visited by one check (a larger graph is refused as too large). */
export const MAX_GRAPH_VISIT = 10_000;

/**
 * Would giving `selfId` the children `children` close a cycle? Walks on_success depth-first from
 * each child (`childrenOf`: a task's children, [] or null for none or unknown). Returns the refusal
 * with the path selfId -> … -> selfId, or null when no path leads back.
 */
export function findCycle(selfId: string, children: readonly string[], childrenOf: (id: string) => readonly string[] | null): GraphRefusal | null {
  const seen = new Set<string>();
  const stack: { id: string; path: string[] }[] = children.map((c) => ({ id: c, path: [c] }));
  let visited = 0;
  while (stack.length > 0) {
    const { id, path } = stack.pop()!;
    if (id === selfId) return { refused: 'cycle', path: [selfId, ...path] };
    if (seen.has(id)) continue;
    seen.add(id);
    if (++visited > MAX_GRAPH_VISIT) return { refused: 'too_large', path: [] };
    for (const next of childrenOf(id) ?? []) stack.push({ id: next, path: [...path, next] });
  }
  return null;
}
