/**
 * Who can reach the API: an address other machines can connect to, served without API tokens, is
 * refused at start unless `allow_open = true` says it is meant that way.
 */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addSubnet('::1', 128, 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether a listen address is reachable from this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v = isIP(h);
  return v !== 0 && LOOPBACK.check(h, v === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why serving on `host` is refused, or null when it is allowed: a loopback address, API tokens, or
 * `allow_open = true`.
 */
export function openBindRefusal(host: string, tokenCount: number, allowOpen: boolean): string | null {
  if (allowOpen || tokenCount > 0 || isLoopbackHost(host)) return null;
  return (
    `'http_host' is ${JSON.stringify(host)}, an address other machines can reach, and no API tokens are configured: ` +
    `anyone who can connect could create, change and delete tasks, and so make this server send HTTP requests. ` +
    `Configure tokens ([auth] tokens or tokens_file; XCRON_AUTH_TOKENS), or listen on 127.0.0.1 (http_host; XCRON_HTTP_HOST), ` +
    `or set allow_open = true (XCRON_ALLOW_OPEN=true) to serve an open API on purpose`
  );
}
