/**
 * A callback to a named queue target (`"callback": {"target": "orders", "key": "…"}`) is kept in
 * the task's `callback.url` as `target:<name>` or `target:<name>?key=<percent-encoded key>`: the
 * stores, the scheduler and the delivery lanes carry it like any URL, and the delivery sends it
 * through the configured target instead of HTTP. The name refers to `[targets.<name>]` in the
 * configuration: a task never holds a broker URL or a password.
 */
export const TARGET_SCHEME = 'target:';
/** A target's name in the configuration and in tasks. */
export const TARGET_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** An override of the stream name, routing key or subject: 1 to 255 visible ASCII characters. */
export const TARGET_KEY_RE = /^[\x21-\x7e]{1,255}$/;

export interface TargetRef {
  name: string;
  key: string | null;
}

export const isTargetUrl = (url: string): boolean => url.startsWith(TARGET_SCHEME);

export function targetUrl(name: string, key: string | null): string {
  return key === null ? `${TARGET_SCHEME}${name}` : `${TARGET_SCHEME}${name}?key=${encodeURIComponent(key)}`;
}

/** The target a `target:` URL names, or null when the URL is not one. */
export function parseTargetUrl(url: string): TargetRef | null {
  if (!isTargetUrl(url)) return null;
  const rest = url.slice(TARGET_SCHEME.length);
  const q = rest.indexOf('?key=');
  if (q < 0) return { name: rest, key: null };
  let key: string;
  try {
    key = decodeURIComponent(rest.slice(q + 5));
  } catch {
    key = rest.slice(q + 5);
  }
  return { name: rest.slice(0, q), key };
}
