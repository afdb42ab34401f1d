/**
 * The destination policy (SSRF guard): which addresses callbacks may connect to.
 *
 * The decisive check runs at connect time on the *resolved* address: `connector()` builds an undici
 * connector whose DNS lookup drops refused addresses (and whose IP-literal hosts are checked before
 * any socket is opened), so a hostname that resolves to an allowed address when the task is created
 * and to the metadata address later (DNS rebinding) is still refused. `checkUrl()` is the early,
 * friendlier check the API runs when a task is created or updated (code 1011).
 *
 * Rules, first match wins:
 *   1. `allow_hosts`: a hostname (`receiver.internal`, `*.corp.example`), an IP or a CIDR — allowed,
 *      even inside a denied range (the operator named it).
 *   2. `deny_cidrs`: refused. Default: link-local (169.254.0.0/16, fe80::/10) and the cloud metadata
 *      addresses (169.254.169.254, fd00:ec2::254, 100.100.100.200).
 *   3. loopback (127.0.0.0/8, ::1, and 0.0.0.0/8 / ::, which reach this host): refused unless
 *      `allow_loopback` (default false; the server's --dev flag sets it).
 *   4. private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10): refused unless
 *      `allow_private` (default false; the server's --dev flag sets it).
 * IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) IPv6 addresses are judged as the IPv4
 * address they carry.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { buildConnector } from 'undici';
import { DestinationRefusedError } from '../errors.js';

export const DEFAULT_DENY_CIDRS: readonly string[] = ['169.254.0.0/16', 'fe80::/10', '169.254.169.254/32', 'fd00:ec2::254/128', '100.100.100.200/32'];
const LOOPBACK_CIDRS = ['127.0.0.0/8', '0.0.0.0/8', '::1/128', '::/128'];
const PRIVATE_CIDRS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7', 'fec0::/10'];

export interface DestinationPolicyOptions {
  denyCidrs?: readonly string[];
  allowHosts?: readonly string[];
  allowLoopback?: boolean;
  allowPrivate?: boolean;
  /** DNS resolution (injectable for tests); default node:dns lookup with all: true. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
  /** Create-time lookups give up after this long (the connect-time check still applies). */
  lookupTimeoutMs?: number;
}

/** A connection refused by the policy (defined with the other typed errors in src/errors.ts). */
export { DestinationRefusedError };

interface Rule {
  cidr: string;
  list: BlockList;
}

/** Parses "a.b.c.d/n", "x::y/n" or a bare address (a /32 or /128). Returns null when invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return null;
  const address = m[1]!;
  const v = isIP(address);
  if (v === 0 || address.includes('%')) return null;
  const max = v === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return null;
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

function rule(cidr: string): Rule {
  const p = parseCidr(cidr);
  if (!p) throw new Error(`invalid CIDR ${JSON.stringify(cidr)}`);
  const list = new BlockList();
  list.addSubnet(p.address, p.prefix, p.family);
  return { cidr, list };
}

/** A hostname pattern: exact (`a.example`) or a wildcard for subdomains (`*.example`). */
const HOST_PATTERN = /^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/i;
export const isHostPattern = (s: string): boolean => s.length <= 253 && HOST_PATTERN.test(s);

/** Expands an IPv6 address to 8 groups (no zone). */
function ipv6Groups(addr: string): number[] | null {
  let a = addr;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const o = v4[1]!.split('.').map(Number);
    tail = [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
    a = a.slice(0, -v4[1]!.length) + '0:0';
  }
  const halves = a.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest];
  if (tail.length) groups.splice(6, 2, ...tail);
  return groups.some((g) => Number.isNaN(g)) ? null : groups;
}

/** The IPv4 address an IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address carries. */
export function embeddedIpv4(addr: string): string | null {
  const g = ipv6Groups(addr);
  if (!g) return null;
  const mapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0;
  if (!mapped && !nat64) return null;
  return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
}

const stripBrackets = (h: string): string => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h);

/**
 * The name to resolve for a URL host: without brackets and without the one trailing dot of a fully
 * qualified name. `localhost.` and `localhost` name the same host, but the resolver reads
 * /etc/hosts only for the undotted spelling, so the guard resolves (and judges) both the same way.
 */
export const resolvableName = (host: string): string => {
  const h = stripBrackets(host);
  return h.length > 1 && h.endsWith('.') && !h.endsWith('..') ? h.slice(0, -1) : h;
};

/** Addresses whose judgement DestinationPolicy keeps (all are forgotten when it is full). */
const MAX_JUDGED = 4096;

export class DestinationPolicy {
  private readonly deny: Rule[];
  private readonly loopback = LOOPBACK_CIDRS.map(rule);
  private readonly private_ = PRIVATE_CIDRS.map(rule);
  private readonly allowRules: Rule[] = [];
  private readonly allowExact = new Set<string>();
  private readonly allowSuffixes: string[] = [];
  readonly allowLoopback: boolean;
  readonly allowPrivate: boolean;
  private readonly resolveHost: (hostname: string) => Promise<LookupAddress[]>;
  private readonly lookupTimeoutMs: number;

  constructor({ denyCidrs = DEFAULT_DENY_CIDRS, allowHosts = [], allowLoopback = true, allowPrivate = true, resolve, lookupTimeoutMs = 3000 }: DestinationPolicyOptions = {}) {
    this.deny = denyCidrs.map(rule);
    for (const h of allowHosts) {
      if (parseCidr(h)) this.allowRules.push(rule(h));
      else if (isHostPattern(h)) {
        const lower = h.toLowerCase().replace(/\.$/, '');
        if (lower.startsWith('*.')) this.allowSuffixes.push(lower.slice(1));
        else this.allowExact.add(lower);
      } else throw new Error(`invalid allow_hosts entry ${JSON.stringify(h)}: expected a hostname, *.domain, an IP or a CIDR`);
    }
    this.allowLoopback = allowLoopback;
    this.allowPrivate = allowPrivate;
    this.resolveHost = resolve ?? ((h) => new Promise((res, rej) => dnsLookup(h, { all: true, verbatim: true }, (err, addrs) => (err ? rej(err) : res(addrs)))));
    this.lookupTimeoutMs = lookupTimeoutMs;
  }

  /** True when the hostname is named in allow_hosts (exact or by a *.domain pattern). */
  hostAllowed(hostname: string): boolean {
    const h = stripBrackets(hostname).toLowerCase().replace(/\.$/, '');
    if (this.allowExact.has(h)) return true;
    return this.allowSuffixes.some((s) => h.endsWith(s) && h.length > s.length);
  }

  /**
   * Why a connection to `address` is refused, or null when it is allowed. The answers are kept (the
   * policy never changes): judging an address builds a SocketAddress per CIDR rule, which cost more
   * than the rest of a createTask; callbacks mostly go to a few addresses.
   */
  refusal(address: string): string | null {
    const known = this.judged.get(address);
    if (known !== undefined) return known;
    const why = this.judge(address);
    if (this.judged.size >= MAX_JUDGED) this.judged.clear();
    this.judged.set(address, why);
    return why;
  }

  private readonly judged = new Map<string, string | null>();
  /** URLs with an IP-literal host, judged (see urlRefusal). */
  private readonly urlJudged = new Map<string, string | null>();

  private judge(address: string): string | null {
    const ip = address.split('%')[0]!;
    const fam = isIP(ip);
    if (fam === 0) return `${JSON.stringify(address)} is not an IP address`;
    const candidates: [string, 'ipv4' | 'ipv6'][] = [[ip, fam === 4 ? 'ipv4' : 'ipv6']];
    if (fam === 6) {
      const v4 = embeddedIpv4(ip);
      if (v4) candidates.push([v4, 'ipv4']);
    }
    const hit = (rules: Rule[]): Rule | undefined => rules.find((r) => candidates.some(([a, f]) => r.list.check(a, f)));
    if (hit(this.allowRules)) return null;
    const shown = candidates.length > 1 ? `${ip} (IPv4 ${candidates[1]![0]})` : ip;
    const denied = hit(this.deny);
    if (denied) return `${shown} is in the denied range ${denied.cidr} ([callback] deny_cidrs)`;
    if (!this.allowLoopback) {
      const r = hit(this.loopback);
      if (r) return `${shown} is a loopback address (${r.cidr}) and [callback] allow_loopback is false (for local development start the server with --dev; else name the receiver in [callback] allow_hosts)`;
    }
    if (!this.allowPrivate) {
      const r = hit(this.private_);
      if (r) return `${shown} is a private address (${r.cidr}) and [callback] allow_private is false (name the receiver in [callback] allow_hosts, or set allow_private = true)`;
    }
    return null;
  }

  /**
   * The create-time check of a callback URL. Returns why it is refused, or null. An IP literal is
   * judged directly; a hostname is resolved and refused only when *every* address it resolves to is
   * refused. A hostname that does not resolve (yet) is allowed here: the connect-time check decides.
   */
  async urlRefusal(url: string): Promise<string | null> {
    const known = this.urlJudged.get(url);
    if (known !== undefined) return known;
    let host: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return null; // the validator reports it (1003)
      host = resolvableName(u.hostname);
    } catch {
      return null; // not a URL: the validator reports it (1003)
    }
    if (host === '' || this.hostAllowed(host)) return null;
    if (isIP(host) !== 0) {
      // An IP literal's answer depends on the URL alone: kept (a hostname's depends on DNS: not).
      const why = this.refusal(host);
      if (this.urlJudged.size >= MAX_JUDGED) this.urlJudged.clear();
      this.urlJudged.set(url, why);
      return why;
    }
    let addrs: LookupAddress[];
    let timer: NodeJS.Timeout | undefined;
    try {
      addrs = await Promise.race([
        this.resolveHost(host),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error('lookup timeout')), this.lookupTimeoutMs);
        }),
      ]);
    } catch {
      return null;
    } finally {
      clearTimeout(timer);
    }
    if (addrs.length === 0) return null;
    const reasons = addrs.map((a) => this.refusal(a.address));
    if (reasons.every((r) => r !== null)) return `${host} resolves only to refused addresses: ${reasons.join('; ')}`;
    return null;
  }

  /** A dns.lookup replacement for net.connect that drops refused addresses (connect-time check). */
  readonly lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions | number, callback: (...args: unknown[]) => void): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    const wantAll = 'all' in opts && opts.all === true;
    dnsLookup(resolvableName(hostname), { ...opts, all: true }, (err, addrs) => {
      if (err) {
        callback(err);
        return;
      }
      const skipCheck = this.hostAllowed(hostname);
      const reasons: string[] = [];
      const kept = skipCheck
        ? addrs
        : addrs.filter((a) => {
            const r = this.refusal(a.address);
            if (r) reasons.push(r);
            return r === null;
          });
      if (kept.length === 0) {
        callback(new DestinationRefusedError(`destination ${hostname} refused by the callback destination policy: ${reasons.join('; ') || 'no address'}`));
        return;
      }
      if (wantAll) callback(null, kept);
      else callback(null, kept[0]!.address, kept[0]!.family);
    });
  };

  /**
   * An undici connector enforcing the policy on every new connection: IP-literal hosts are checked
   * before connecting; hostnames go through `lookup`, which drops refused addresses.
   */
  connector(base: buildConnector.BuildOptions = {}): buildConnector.connector {
    const inner = buildConnector({ ...base, lookup: this.lookup } as buildConnector.BuildOptions);
    return (opts, callback) => {
      const host = resolvableName(opts.hostname);
      if (isIP(host.split('%')[0]!) !== 0 && !this.hostAllowed(host)) {
        const why = this.refusal(host);
        if (why) {
          callback(new DestinationRefusedError(`destination ${host} refused by the callback destination policy: ${why}`), null);
          return;
        }
      }
      inner(opts, callback);
    };
  }

  /** A one-line description for the start-up log. */
  describe(): Record<string, unknown> {
    return {
      deny_cidrs: this.deny.map((r) => r.cidr),
      allow_hosts: [...this.allowExact, ...this.allowSuffixes.map((s) => `*${s}`), ...this.allowRules.map((r) => r.cidr)],
      allow_loopback: this.allowLoopback,
      allow_private: this.allowPrivate,
    };
  }
}

/** The callback URLs a createTask/updateTask body names, for the create-time check (non-strings are skipped). */
export function destinationsOf(body: unknown): { field: string; url: string }[] {
  const out: { field: string; url: string }[] = [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return out;
  const o = body as Record<string, unknown>;
  const cb = o.callback;
  if (typeof cb === 'object' && cb !== null && !Array.isArray(cb)) {
    const c = cb as Record<string, unknown>;
    if (typeof c.url === 'string') out.push({ field: 'callback.url', url: c.url });
    if (Array.isArray(c.urls)) {
      c.urls.slice(0, 64).forEach((u, i) => {
        if (typeof u === 'string') out.push({ field: `callback.urls[${i}]`, url: u });
      });
    }
  }
  if (typeof o.alert_url === 'string') out.push({ field: 'alert_url', url: o.alert_url });
  return out;
}
