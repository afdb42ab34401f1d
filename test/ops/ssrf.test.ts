/**
 * SSRF guard: the policy's decisions (pure), the connect-time check inside real deliveries to a real
 * receiver (IP literal, hostname through DNS, a "rebinding" hostname that looked public at create
 * time), and the create/update-time check of the API (code 1011).
 */
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../src/clock/index.js';
import { Delivery, type DeliveryJob } from '../../src/delivery/index.js';
import { DEFAULT_DENY_CIDRS, DestinationPolicy, DestinationRefusedError, destinationsOf, embeddedIpv4, parseCidr } from '../../src/delivery/ssrf.js';
import { send } from '../helpers/app.js';
import { Receiver } from '../helpers/receiver.js';
import { ADMIN, bearer, createOpsApp, type OpsApp } from './helpers.js';

describe('policy decisions', () => {
  const dflt = new DestinationPolicy();

  it('parses CIDRs and bare addresses, rejects junk', () => {
    expect(parseCidr('169.254.0.0/16')).toEqual({ address: '169.254.0.0', prefix: 16, family: 'ipv4' });
    expect(parseCidr('fd00:ec2::254')).toEqual({ address: 'fd00:ec2::254', prefix: 128, family: 'ipv6' });
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('example.com/8')).toBeNull();
    expect(parseCidr('fe80::1%eth0')).toBeNull();
  });

  it('reads the IPv4 address inside IPv4-mapped and NAT64 IPv6 addresses', () => {
    expect(embeddedIpv4('::ffff:169.254.169.254')).toBe('169.254.169.254');
    expect(embeddedIpv4('::ffff:a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIpv4('64:ff9b::a9fe:a9fe')).toBe('169.254.169.254');
    expect(embeddedIpv4('2001:db8::1')).toBeNull();
  });

  it('defaults: link-local and metadata refused; loopback, private and public allowed', () => {
    for (const a of ['169.254.169.254', '169.254.1.1', 'fe80::1', 'fd00:ec2::254', '100.100.100.200', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe']) {
      expect(dflt.refusal(a), a).toMatch(/denied range/);
    }
    for (const a of ['127.0.0.1', '::1', '10.1.2.3', '172.16.5.4', '192.168.1.1', 'fd12::1', '93.184.216.34', '2606:4700::1111']) {
      expect(dflt.refusal(a), a).toBeNull();
    }
    expect(DEFAULT_DENY_CIDRS).toContain('169.254.169.254/32');
  });

  it('allow_loopback = false refuses 127/8, ::1, 0.0.0.0 and their mapped forms', () => {
    const p = new DestinationPolicy({ allowLoopback: false });
    for (const a of ['127.0.0.1', '127.9.9.9', '::1', '0.0.0.0', '::', '::ffff:127.0.0.1']) expect(p.refusal(a), a).toMatch(/loopback/);
    expect(p.refusal('10.0.0.1')).toBeNull();
  });

  it('allow_private = false refuses RFC 1918, CGNAT and ULA ranges', () => {
    const p = new DestinationPolicy({ allowPrivate: false });
    for (const a of ['10.0.0.1', '172.31.255.255', '192.168.0.10', '100.64.0.1', 'fd12:3456::1', '::ffff:10.0.0.1']) expect(p.refusal(a), a).toMatch(/private/);
    expect(p.refusal('172.32.0.1')).toBeNull();
    expect(p.refusal('127.0.0.1')).toBeNull();
  });

  it('allow_hosts beats every rule: CIDRs by address, names by hostname', () => {
    const p = new DestinationPolicy({ allowPrivate: false, allowLoopback: false, allowHosts: ['10.20.0.0/16', '169.254.10.10', 'receiver.internal', '*.jobs.example'] });
    expect(p.refusal('10.20.3.4')).toBeNull();
    expect(p.refusal('10.21.0.1')).toMatch(/private/);
    expect(p.refusal('169.254.10.10')).toBeNull();
    expect(p.refusal('169.254.10.11')).toMatch(/denied range/);
    expect(p.hostAllowed('receiver.internal')).toBe(true);
    expect(p.hostAllowed('RECEIVER.internal.')).toBe(true);
    expect(p.hostAllowed('a.jobs.example')).toBe(true);
    expect(p.hostAllowed('jobs.example')).toBe(false);
    expect(p.hostAllowed('evil-receiver.internal')).toBe(false);
    expect(() => new DestinationPolicy({ allowHosts: ['not a host!'] })).toThrow(/allow_hosts/);
  });

  it('create-time URL check: literals directly, hostnames by every address they resolve to', async () => {
    const dns: Record<string, string[]> = { 'meta.example': ['169.254.169.254'], 'mixed.example': ['169.254.169.254', '93.184.216.34'], 'pub.example': ['93.184.216.34'] };
    const p = new DestinationPolicy({
      resolve: (h) => {
        const a = dns[h];
        return a ? Promise.resolve(a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))) : Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
      },
    });
    expect(await p.urlRefusal('http://169.254.169.254/latest/meta-data')).toMatch(/169\.254\.169\.254 is in the denied range/);
    expect(await p.urlRefusal('http://0xa9fea9fe/')).toMatch(/denied range/); // WHATWG URL normalizes hex/int forms
    expect(await p.urlRefusal('http://2852039166/')).toMatch(/denied range/);
    expect(await p.urlRefusal('http://[::ffff:169.254.169.254]:8080/')).toMatch(/denied range/);
    expect(await p.urlRefusal('http://meta.example/x')).toMatch(/resolves only to refused addresses/);
    expect(await p.urlRefusal('http://mixed.example/x')).toBeNull();
    expect(await p.urlRefusal('http://pub.example/x')).toBeNull();
    expect(await p.urlRefusal('http://does-not-resolve.example/x')).toBeNull(); // decided at connect time
    expect(await p.urlRefusal('not a url')).toBeNull(); // the validator's job (1003)
  });

  it('a lookup that never answers does not hold the request beyond the lookup timeout', async () => {
    const p = new DestinationPolicy({ resolve: () => new Promise(() => undefined), lookupTimeoutMs: 50 });
    expect(await p.urlRefusal('http://slow.example/')).toBeNull();
  });

  it('finds every callback destination of a create/update body', () => {
    expect(destinationsOf({ callback: { url: 'http://a/', urls: ['http://b/', 3, 'http://c/'] }, alert_url: 'http://d/' })).toEqual([
      { field: 'callback.url', url: 'http://a/' },
      { field: 'callback.urls[0]', url: 'http://b/' },
      { field: 'callback.urls[2]', url: 'http://c/' },
      { field: 'alert_url', url: 'http://d/' },
    ]);
    expect(destinationsOf([1])).toEqual([]);
    expect(destinationsOf(null)).toEqual([]);
  });
});

describe('connect-time check in delivery (real receiver)', () => {
  let receiver: Receiver;
  const deliveries: Delivery[] = [];
  const make = (policy: DestinationPolicy | undefined): Delivery => {
    const d = new Delivery({
      clock: new SystemClock(),
      log: pino({ level: 'silent' }),
      userAgent: 'xcron/test',
      globalConcurrency: 8,
      perOriginConcurrency: 4,
      maxResponseBytes: 65_536,
      signingSecrets: [],
      ...(policy ? { destinations: policy } : {}),
    });
    deliveries.push(d);
    return d;
  };
  const job = (url: string): DeliveryJob => ({
    run_id: `t1:${Date.now()}`,
    task_id: 't1',
    scheduled_time: Date.now(),
    url,
    method: 'POST',
    headers: null,
    body: '{"n":1}',
    timeout_ms: 5000,
    retry: { max_attempts: 5, backoff_ms: 0, max_backoff_ms: 0 },
    first_attempt: 1,
  });

  beforeAll(async () => {
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await Promise.all(deliveries.map((d) => d.close()));
    await receiver.close();
  });

  it('control: the default policy delivers to the loopback receiver', async () => {
    const r = await make(new DestinationPolicy()).deliver(job(receiver.url('/ok')));
    expect(r.ok).toBe(true);
    expect(receiver.to('/ok')).toHaveLength(1);
  });

  it('an IP-literal destination in a refused range fails at once, without retries and without a connection', async () => {
    const d = make(new DestinationPolicy({ allowLoopback: false }));
    const attempts: boolean[] = [];
    const r = await d.deliver(job(receiver.url('/literal')), { onAttempt: () => attempts.push(true) });
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(1); // max_attempts 5, but a policy refusal is final
    expect(attempts).toHaveLength(1);
    expect(r.error).toMatch(/refused by the callback destination policy: 127\.0\.0\.1 is a loopback address/);
    expect(receiver.to('/literal')).toHaveLength(0);
  });

  it('a hostname is judged on the address DNS gives at connect time (localhost -> loopback)', async () => {
    const d = make(new DestinationPolicy({ allowLoopback: false }));
    const r = await d.deliver(job(`http://localhost:${receiver.port}/byname`));
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(1);
    expect(r.error).toMatch(/destination localhost refused .*loopback/);
    expect(receiver.to('/byname')).toHaveLength(0);
  });

  it('DNS rebinding: a hostname that resolved to a public address at create time is still refused at connect time', async () => {
    // At create time the name pointed somewhere public; by the time the callback fires it resolves
    // to a refused address. The create-time check passes, the connection is refused anyway.
    const policy = new DestinationPolicy({ allowLoopback: false, resolve: () => Promise.resolve([{ address: '93.184.216.34', family: 4 }]) });
    const url = `http://localhost:${receiver.port}/rebind`;
    expect(await policy.urlRefusal(url)).toBeNull();
    const r = await make(policy).deliver(job(url));
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/refused by the callback destination policy/);
    expect(receiver.to('/rebind')).toHaveLength(0);
  });

  it('allow_hosts exempts a named host, but not the same address given as a literal', async () => {
    const d = make(new DestinationPolicy({ allowLoopback: false, allowHosts: ['localhost'] }));
    const byName = await d.deliver(job(`http://localhost:${receiver.port}/named`));
    expect(byName.ok).toBe(true);
    expect(receiver.to('/named')).toHaveLength(1);
    const byIp = await d.deliver(job(receiver.url('/named-ip')));
    expect(byIp.ok).toBe(false);
    expect(receiver.to('/named-ip')).toHaveLength(0);
  });

  it('the connector reports a typed error', async () => {
    const p = new DestinationPolicy({ allowLoopback: false });
    const err = await new Promise<Error | null>((resolve) => {
      p.connector({ timeout: 1000 })({ hostname: '127.0.0.1', protocol: 'http:', port: String(receiver.port) }, (...args) => resolve(args[0]));
    });
    expect(err).toBeInstanceOf(DestinationRefusedError);
  });
});

describe('create/update-time check in the API (code 1011)', () => {
  let api: OpsApp;
  afterEach(async () => {
    await api.close();
  });
  const url = 'http://127.0.0.1:9/hook';

  it('refuses denied destinations in callback.url, callback.urls and alert_url with HTTP 400, code 1011', async () => {
    api = await createOpsApp({ tokens: [ADMIN] });
    const cases: [unknown, RegExp][] = [
      [{ type: 1, format: '* * * * *', callback: { url: 'http://169.254.169.254/latest/meta-data/' } }, /'callback\.url' is refused .*169\.254\.169\.254 is in the denied range 169\.254\.0\.0\/16/],
      [{ type: 1, format: '* * * * *', callback: { url: 'http://[fd00:ec2::254]/' } }, /'callback\.url' is refused .*fd00:ec2::254/],
      [{ type: 1, format: '* * * * *', callback: { url: 'http://[::ffff:169.254.169.254]/' } }, /'callback\.url' is refused/],
      [{ type: 1, format: '* * * * *', callback: { urls: [url, 'http://169.254.169.254/'] } }, /'callback\.urls\[1\]' is refused/],
      [{ type: 1, format: '* * * * *', callback: { url }, alert_url: 'http://[fe80::1]/alert' }, /'alert_url' is refused .*fe80::\/10/],
    ];
    for (const [json, message] of cases) {
      const r = await send(api.app, '/xcron/createTask', { json, headers: bearer(ADMIN) });
      expect(r.status, JSON.stringify(json)).toBe(400);
      expect(r.body.code).toBe(1011);
      expect(r.body.message).toMatch(message);
    }
    expect((await api.store.listTasks({ state: null, namePrefix: null, after: null, limit: 10 })).length).toBe(0);

    const created = await send<{ task_id: string }>(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url } }, headers: bearer(ADMIN) });
    expect(created.body.code).toBe(0);
    const id = created.body.data.task_id;
    const upd = await send(api.app, '/xcron/updateTask', { json: { task_id: id, callback: { url: 'http://169.254.169.254/' } }, headers: bearer(ADMIN) });
    expect(upd.status).toBe(400);
    expect(upd.body.code).toBe(1011);
    expect((await api.store.get(id))?.callback.url).toBe(url);
    const upd2 = await send(api.app, '/xcron/updateTask', { json: { task_id: id, alert_url: 'http://169.254.169.254/' }, headers: bearer(ADMIN) });
    expect(upd2.body.code).toBe(1011);
  });

  it('a hostname resolving only into refused ranges is refused at create time (real DNS: localhost)', async () => {
    api = await createOpsApp({ destinations: { allowLoopback: false } });
    const r = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://localhost:8080/hook' } } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe(1011);
    expect(r.body.message).toMatch(/localhost resolves only to refused addresses/);
  });

  it('malformed bodies still get the validator\'s answers (the guard never turns them into 1011 or 500)', async () => {
    api = await createOpsApp();
    const bad = await send(api.app, '/xcron/createTask', { body: '{"callback":', headers: { 'content-type': 'application/json' } });
    expect(bad.body.code).toBe(1000);
    const notUrl = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'ftp://169.254.169.254/' } } });
    expect(notUrl.body.code).toBe(1003); // not http(s): the validator's answer
    const junk = await send(api.app, '/xcron/createTask', { json: { type: 1, format: '* * * * *', callback: { url: 'http://' } } });
    expect(junk.body.code).toBe(1003);
  });
});
