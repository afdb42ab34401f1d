/**
 * Broker URLs carry credentials: they never go into a log line, a run record or an API answer as
 * given. `redactUrl` masks the password; `scrub` removes a URL's password (and the URL itself)
 * from an error text a client library produced.
 */

/** `scheme://user:***@host/...`: the URL with its password masked (unparsable: `<url>`). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '<url>';
  }
}

/** An error text without the URL's password or the URL itself, at most 500 characters. */
export function scrub(text: string, url: string): string {
  let out = text;
  try {
    const u = new URL(url);
    if (u.password !== '') {
      out = out.split(url).join(redactUrl(url));
      out = out.split(u.password).join('***');
      const decoded = decodeURIComponent(u.password);
      if (decoded !== '') out = out.split(decoded).join('***');
    }
  } catch {
    out = out.split(url).join('<url>');
  }
  return out.length > 500 ? `${out.slice(0, 500)}…` : out;
}

/** The text of a thrown value, scrubbed. */
export function errorText(err: unknown, url: string): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const msg = e && typeof e.message === 'string' ? e.message : String(err);
  const code = e && (typeof e.code === 'string' || typeof e.code === 'number') ? `${e.code}: ` : '';
  return scrub(`${code}${msg}`, url);
}
