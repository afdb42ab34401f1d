/**
 * Redis error replies are classified by their protocol error code (replyCode in
 * src/redis/connection.ts), read once, not by matching message text elsewhere.
 */
import { Redis, ReplyError } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/errors.js';
import { isUnavailable, replyCode } from '../../src/redis/connection.js';
import { RedisServer } from '../helpers/redis.js';

describe('Redis reply codes', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
    await client.connect();
  });
  afterAll(async () => {
    client.disconnect();
    await server.stop();
  });

  const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => null, (e: unknown) => e);

  it('reads the code of real replies: NOSCRIPT for an unknown script, ERR for an unknown command', async () => {
    const noscript = await failure(client.evalsha('0'.repeat(40), 0));
    expect(replyCode(noscript)).toBe('NOSCRIPT');
    expect(isUnavailable(noscript)).toBe(false);
    const unknown = await failure(client.call('NOSUCHCOMMAND'));
    expect(replyCode(unknown)).toBe('ERR');
    expect(isUnavailable(unknown)).toBe(false);
  });

  it('transient codes mean unavailable; an error that only reads like one is not a reply', () => {
    const R = ReplyError as unknown as new (message: string) => Error;
    expect(isUnavailable(new R('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isUnavailable(new R('READONLY You cannot write against a read only replica.'))).toBe(true);
    expect(isUnavailable(new R('ERR LOADING is not a command'))).toBe(false);
    expect(replyCode(new Error('NOSCRIPT looks like a reply'))).toBeNull();
    expect(isUnavailable(new StoreUnavailableError('down'))).toBe(true);
    expect(isUnavailable(new Error('connect ECONNREFUSED'))).toBe(true); // not a reply: the connection failed
  });
});
