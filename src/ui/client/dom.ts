/**
 * Building DOM nodes. Every value from the server goes in as text (textContent or a text node),
 * never as markup, and no style attribute is written into markup (the CSP forbids inline styles).
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];
export type Handler = (ev: Event) => unknown;
export type Attr = string | number | boolean | null | undefined;
/**
 * `class`, `text` (textContent), `value`, on<event> handlers, the boolean properties checked,
 * disabled, selected and open; anything else is an attribute (true: present and empty).
 */
export type Props = Record<string, Attr | Handler>;

const BOOL_PROPS = new Set(['checked', 'disabled', 'selected', 'open']);

/** Appends children: nodes, text, and nested arrays of them; null, undefined and false are skipped. */
export function add(el: Node, c: Child): void {
  if (c === null || c === undefined || c === false) return;
  if (Array.isArray(c)) {
    for (const x of c as readonly Child[]) add(el, x);
    return;
  }
  el.appendChild(typeof c === 'object' ? (c as Node) : document.createTextNode(String(c)));
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') {
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      continue;
    }
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value') (el as unknown as { value: string }).value = String(v);
    else if (BOOL_PROPS.has(k)) Reflect.set(el, k, Boolean(v));
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) add(el, c);
  return el;
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** An element of the page shell (index.ts renders it); a missing one is a bug. */
export function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

/** Empties `el` and fills it with `content`. */
export function replace(el: Node, content: Child): void {
  el.textContent = '';
  add(el, content);
}
