/** The `cluster.redis_url` forms: one Redis, Redis Cluster seed nodes, or Sentinels and a primary name. */
import { ConfigError } from '../errors.js';

export interface RedisEndpoint {
  /** The Redis nodes, or with `sentinel` the Sentinels to ask for the current primary. */
  nodes: { host: string; port: number }[];
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: boolean;
  /** Sentinel mode: the monitored primary's name (`redis+sentinel://…/<name>`). */
  sentinel: { name: string } | null;
}

const URL_FORMS = 'redis://[user:password@]host:port[,host:port…][/db] (rediss:// for TLS), or redis+sentinel://[user:password@]sentinel:port[,sentinel:port…]/<primary name>[/db] (rediss+sentinel:// for TLS)';

/**
 * Parses `redis://[user:pass@]host:port[,host:port…][/db]` (`rediss://` = TLS). Several hosts are
 * the seed nodes of a Redis Cluster. `redis+sentinel://[user:pass@]host:port[,…]/<name>[/db]`
 * names Sentinels (default port 26379) and the primary they monitor; the user and password are
 * the data nodes' (the Sentinels' own password is `cluster.redis_sentinel_password`).
 */
export function parseRedisUrl(url: string): RedisEndpoint {
  const m = /^(rediss?)(\+sentinel)?:\/\/(?:([^@/]*)@)?([^/]+)(?:\/([^/]*))?(?:\/([^/]*))?$/.exec(url.trim());
  if (!m) throw new ConfigError(`'cluster.redis_url': invalid Redis URL ${JSON.stringify(url)}: expected ${URL_FORMS}`);
  const [, scheme, sentinelMode, auth, hosts, first, second] = m;
  let name: string | null = null;
  let dbText: string | undefined;
  if (sentinelMode) {
    name = first ? decodeURIComponent(first) : '';
    if (name === '') throw new ConfigError(`'cluster.redis_url': ${JSON.stringify(url)} names no primary: expected redis+sentinel://sentinel:port[,sentinel:port…]/<primary name>[/db]`);
    dbText = second;
  } else {
    if (second !== undefined) throw new ConfigError(`'cluster.redis_url': invalid Redis URL ${JSON.stringify(url)}: expected ${URL_FORMS}`);
    dbText = first;
  }
  if (dbText !== undefined && dbText !== '' && !/^\d+$/.test(dbText)) throw new ConfigError(`'cluster.redis_url': invalid database number ${JSON.stringify(dbText)} in ${JSON.stringify(url)}`);
  let username: string | undefined;
  let password: string | undefined;
  if (auth) {
    const i = auth.indexOf(':');
    const u = i < 0 ? '' : decodeURIComponent(auth.slice(0, i));
    const p = decodeURIComponent(i < 0 ? auth : auth.slice(i + 1));
    username = u === '' ? undefined : u;
    password = p === '' ? undefined : p;
  }
  const defaultPort = sentinelMode ? 26379 : 6379;
  const nodes = hosts!.split(',').map((h) => {
    const hm = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h.trim());
    if (!hm) throw new ConfigError(`'cluster.redis_url': invalid host ${JSON.stringify(h)} in ${JSON.stringify(url)}`);
    return { host: hm[1]!.replace(/^\[|\]$/g, ''), port: hm[2] ? Number(hm[2]) : defaultPort };
  });
  return { nodes, username, password, db: dbText ? Number(dbText) : 0, tls: scheme === 'rediss', sentinel: name === null ? null : { name } };
}

/** The URL with its password replaced by `***`, for logs and messages. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_, scheme: string, auth: string) => {
    const i = auth.indexOf(':');
    return `${scheme}${i < 0 ? '***' : `${auth.slice(0, i)}:***`}@`;
  });
}
