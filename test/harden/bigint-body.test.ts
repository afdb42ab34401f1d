/**
 * Issue 23 item 8: a callback body arrives exactly as given. `12345678901234567890` in
 * callback.body used to be sent as `12345678901234567000` (JSON.parse makes every number a
 * double). The body's exact text is kept when parsing would change a number; it is what the
 * callback sends and signs, and what queryTask and listTasks show. Real server on each store (SQLite,
 * and Redis with a real redis-server), real receiver.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactBodyText } from '../../src/task/index.js';
import { hasLossyNumber, valueText } from '../../src/task/json-text.js';
import { call } from '../helpers/http.js';
import { RedisServer, stopAllRedis } from '../helpers/redis.js';
import { Receiver } from '../helpers/receiver.js';
import { XcronServer, cleanupTempDirs } from '../helpers/server.js';
import { trigger } from '../async/common.js';

const SECRET = 'bigint-test-signing-secret-0123456789';

describe('exact body text (pure)', () => {
  it('finds the exact text of callback.body, whatever the spacing, key order and duplicates', () => {
    const t = '{ "type":1, "callback" : { "url":"http://x/", "body" : {"a": 12345678901234567890, "s":"}\\"{"} }, "x":[1,2] }';
    expect(valueText(t, ['callback', 'body'])).toBe('{"a": 12345678901234567890, "s":"}\\"{"}');
    expect(valueText('{"callback":{"body":{"a":1},"body":{"b":99999999999999999999}}}', ['callback', 'body'])).toBe('{"b":99999999999999999999}');
    expect(valueText('{"callback":{"url":"u"}}', ['callback', 'body'])).toBeNull();
  });

  it('keeps the text only when parsing would change a number', () => {
    expect(exactBodyText('{"callback":{"body":{"id":12345678901234567890}}}')).toBe('{"id":12345678901234567890}');
    expect(exactBodyText('{"callback":{"body":{"p":1.50,"e":1e3}}}')).toBe('{"p":1.50,"e":1e3}');
    expect(exactBodyText('{"callback":{"body":{"id":9007199254740991,"f":0.5,"s":"12345678901234567890"}}}')).toBeNull();
    expect(exactBodyText('{"callback":{"url":"http://x/"},"name":"12345678901234567890"}')).toBeNull();
  });

  it('property: a body is flagged exactly when JSON.stringify(JSON.parse(text)) would change a number', () => {
    const num = fc.oneof(fc.integer().map(String), fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String), fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)), fc.constantFrom('1.50', '1e3', '-0', '0.1', '2.5E-3'));
    const val: fc.Arbitrary<string> = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, num, fc.string().map((s) => JSON.stringify(s)), fc.constantFrom('true', 'null'), fc.array(tie('v'), { maxLength: 4 }).map((a) => `[${a.join(',')}]`), fc.dictionary(fc.string({ maxLength: 4 }), tie('v'), { maxKeys: 4 }).map((o) => `{${Object.entries(o).map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`)),
    })).v as fc.Arbitrary<string>;
    fc.assert(
      fc.property(val, (text) => {
        const nums: string[] = [];
        JSON.parse(text, function (this: unknown, _k, v: unknown) {
          if (typeof v === 'number') nums.push(JSON.stringify(v));
          return v;
        });
        const tokens = text.match(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g)?.filter((t) => !t.startsWith('"')) ?? [];
        expect(hasLossyNumber(text)).toBe(tokens.some((t, i) => t !== nums[i]));
      }),
      { numRuns: 1000 },
    );
  });
});

for (const kind of ['sqlite', 'redis'] as const) {
  describe(`real server, ${kind} store`, () => {
    let server: XcronServer;
    let receiver: Receiver;
    beforeAll(async () => {
      receiver = await Receiver.start();
      const env: Record<string, string> = { XCRON_CALLBACK_SIGNING_SECRETS: JSON.stringify([SECRET]) };
      if (kind === 'redis') {
        const redis = await RedisServer.start({ appendonly: true, appendfsync: 'always' });
        Object.assign(env, { XCRON_CLUSTER_REDIS_URL: redis.url, XCRON_CLUSTER_KEY_PREFIX: `bigint${Date.now()}`, XCRON_NODE_ID: 'bigint-a' });
      }
      server = await XcronServer.start({ env });
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
      await receiver?.close();
      await stopAllRedis();
      cleanupTempDirs();
    });

    it('sends, signs and shows the body exactly as given (queryTask, listTasks); updateTask too', async () => {
      const body = '{"order_id":12345678901234567890,"price":1.50,"qty":[1e3,-0],"note":"ok"}';
      const raw = `{"type":1,"format":"0 0 1 1 *","name":"big-${kind}","callback":{"url":"${receiver.url('/big')}","body":${body}}}`;
      const created = await call<{ task_id: string }>(server.baseUrl, 'POST', '/xcron/createTask', { body: raw, headers: { 'content-type': 'application/json' } });
      expect(created.body.code, created.text).toBe(0);
      const id = created.body.data.task_id;
      await trigger(server.baseUrl, id);
      const got = await receiver.waitForRequest((r) => r.path === '/big', 30_000, 'the callback');
      expect(got.body).toBe(body);
      const sig = String(got.headers['x-xcron-signature']);
      const t = /t=(\d+)/.exec(sig)![1]!;
      expect(sig).toContain(`v1=${createHmac('sha256', SECRET).update(`${t}.${got.body}`).digest('hex')}`);

      const q = await call(server.baseUrl, 'GET', `/xcron/queryTask?task_id=${id}`);
      expect(q.status).toBe(200);
      expect(q.text).toContain(`"body":${body}`);
      expect(q.body.code).toBe(0);

      // listTasks shows the exact text too (it showed the parsed, rounded body); another task on the
      // same page keeps its ordinary body.
      const plain = await call<{ task_id: string }>(server.baseUrl, 'POST', '/xcron/createTask', { json: { type: 1, format: '0 0 1 1 *', name: `big-${kind}-plain`, callback: { url: receiver.url('/plain'), body: { n: 7 } } } });
      expect(plain.body.code, plain.text).toBe(0);
      const list = await call<{ tasks: { task_id: string; callback: { body: unknown } }[] }>(server.baseUrl, 'GET', `/xcron/listTasks?name=big-${kind}`);
      expect(list.status, list.text).toBe(200);
      expect(list.text).toContain(`"body":${body}`);
      expect(list.text).not.toContain('12345678901234567000');
      expect(list.body.data.tasks.map((x) => x.task_id).sort()).toEqual([id, plain.body.data.task_id].sort());
      expect(list.body.data.tasks.find((x) => x.task_id === plain.body.data.task_id)!.callback.body).toEqual({ n: 7 });

      const body2 = '{"order_id":98765432109876543210}';
      const upd = await call(server.baseUrl, 'POST', '/xcron/updateTask', { body: `{"task_id":"${id}","callback":{"url":"${receiver.url('/big2')}","body":${body2}}}`, headers: { 'content-type': 'application/json' } });
      expect(upd.body.code, upd.text).toBe(0);
      await trigger(server.baseUrl, id);
      const got2 = await receiver.waitForRequest((r) => r.path === '/big2', 30_000, 'the callback after the update');
      expect(got2.body).toBe(body2);
      const list2 = await call(server.baseUrl, 'GET', `/xcron/listTasks?name=big-${kind}`);
      expect(list2.text).toContain(`"body":${body2}`);

      // an update without a new callback keeps the exact body; a body that parses losslessly is sent as before
      await call(server.baseUrl, 'POST', '/xcron/updateTask', { json: { task_id: id, name: `big-${kind}-renamed` } });
      await trigger(server.baseUrl, id);
      await receiver.waitFor((rs) => rs.filter((r) => r.path === '/big2').length >= 2, 30_000, 'the callback after a rename');
      expect(receiver.to('/big2')[1]!.body).toBe(body2);
    });

    it('the exact body survives a restart (stored with the task)', async () => {
      const body = '{"id":11112222333344445555}';
      const created = await call<{ task_id: string }>(server.baseUrl, 'POST', '/xcron/createTask', { body: `{"type":1,"format":"0 0 1 1 *","callback":{"url":"${receiver.url('/restart')}","body":${body}}}`, headers: { 'content-type': 'application/json' } });
      const id = created.body.data.task_id;
      await server.stop();
      server = await server.restart();
      await trigger(server.baseUrl, id);
      const got = await receiver.waitForRequest((r) => r.path === '/restart', 30_000, 'the callback after the restart');
      expect(got.body).toBe(body);
    });
  });
}
