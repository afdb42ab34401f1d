/**
 * Typed errors across a thread boundary: toWire/fromWire (src/errors.ts) through a real structured
 * clone (a MessageChannel, what worker postMessage uses) keep the class, so `instanceof` works on
 * the receiving side; a raw Error sent as is does not.
 */
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Codes, ConfigError, DestinationRefusedError, StoreUnavailableError, XcronError, fromWire, toWire, type WireError } from '../../src/errors.js';

const channels: MessageChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) {
    c.port1.close();
    c.port2.close();
  }
});

/** Sends a value through a real MessageChannel and resolves with what arrives. */
function cloneThroughPort<T>(v: T): Promise<T> {
  const ch = new MessageChannel();
  channels.push(ch);
  return new Promise((resolve) => {
    ch.port2.once('message', (m: T) => resolve(m));
    ch.port1.postMessage(v);
  });
}

const across = async (e: unknown): Promise<Error> => fromWire(await cloneThroughPort<WireError>(toWire(e)));

describe('errors across a thread boundary', () => {
  it('a raw custom error loses its class in a structured clone (why the wire format exists)', async () => {
    const got = await cloneThroughPort(new StoreUnavailableError('down'));
    expect(got).not.toBeInstanceOf(StoreUnavailableError);
  });

  it('an XcronError keeps its class, public code, HTTP status and message', async () => {
    const got = await across(new XcronError(Codes.INVALID_OPTION, 400, "invalid 'on_success': it would form a cycle"));
    expect(got).toBeInstanceOf(XcronError);
    expect(got).toMatchObject({ code: Codes.INVALID_OPTION, status: 400, message: "invalid 'on_success': it would form a cycle", name: 'XcronError' });
  });

  it('StoreUnavailableError, ConfigError and DestinationRefusedError keep their class', async () => {
    expect(await across(new StoreUnavailableError('sqlite: database is locked'))).toBeInstanceOf(StoreUnavailableError);
    expect(await across(new ConfigError("'slots' differs"))).toBeInstanceOf(ConfigError);
    const refused = await across(new DestinationRefusedError('destination 10.0.0.1 refused'));
    expect(refused).toBeInstanceOf(DestinationRefusedError);
    expect((refused as DestinationRefusedError).code).toBe('XCRON_DESTINATION_REFUSED');
  });

  it('TypeError and RangeError keep their built-in class', async () => {
    expect(await across(new TypeError('x is not a function'))).toBeInstanceOf(TypeError);
    expect(await across(new RangeError('out of range'))).toBeInstanceOf(RangeError);
  });

  it('any other error keeps its name, message, code and the stack of where it was thrown', async () => {
    const e = Object.assign(new Error('database disk image is malformed'), { name: 'SqliteError', code: 'SQLITE_CORRUPT' });
    const got = (await across(e)) as Error & { code?: string };
    expect(got).toBeInstanceOf(Error);
    expect(got).toMatchObject({ name: 'SqliteError', message: 'database disk image is malformed', code: 'SQLITE_CORRUPT' });
    expect(got.stack).toBe(e.stack);
  });

  it('an XcronError with a code or status it cannot have becomes an internal error, not a crash', () => {
    const got = fromWire({ name: 'XcronError', message: 'odd', code: 42, status: 418 });
    expect(got).toBeInstanceOf(XcronError);
    expect(got).toMatchObject({ code: Codes.INTERNAL, status: 500 });
  });

  it('a thrown non-Error value becomes an Error with its text', async () => {
    const got = await across('plain string');
    expect(got).toBeInstanceOf(Error);
    expect(got.message).toBe('plain string');
  });
});
