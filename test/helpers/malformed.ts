/**
 * Malformed requests and the exact answer each must get (HTTP status, error code, and a message that
 * names the problem). Shared by the app.request suite and the end-to-end suite.
 */

export interface MalformedCase {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /** Serialized as JSON with Content-Type application/json. */
  json?: unknown;
  /** Sent as is (with the headers given). */
  body?: string;
  headers?: Record<string, string>;
  status: number;
  code: number;
  message: RegExp;
  /** Expected Allow header (405 only). */
  allow?: string;
}

export interface CaseContext {
  /** The server's "now" (ms). */
  now: number;
  /** A valid callback URL. */
  url: string;
  requestBodyLimit: number;
  callbackBodyLimit: number;
}

const JSON_CT = { 'content-type': 'application/json' };

export function malformedCases(ctx: CaseContext): MalformedCase[] {
  const { now, url } = ctx;
  const periodic = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 1, format: '*/5 * * * *', callback: { url, body: { a: 1 } }, ...over });
  const oneShot = (format: unknown): Record<string, unknown> => ({ type: 2, format, callback: { url } });
  const withCallback = (cb: Record<string, unknown>): Record<string, unknown> => periodic({ callback: { url, ...cb } });
  const create = (name: string, json: unknown, status: number, code: number, message: RegExp): MalformedCase => ({
    name,
    method: 'POST',
    path: '/xcron/createTask',
    json,
    status,
    code,
    message,
  });
  const nowS = Math.floor(now / 1000);

  return [
    // --- body shape ---
    { name: 'bad JSON', method: 'POST', path: '/xcron/createTask', body: '{"type": 1, "format": ', headers: JSON_CT, status: 400, code: 1000, message: /not valid JSON/ },
    { name: 'empty body', method: 'POST', path: '/xcron/createTask', body: '', headers: JSON_CT, status: 400, code: 1000, message: /empty/ },
    create('JSON array body', [periodic()], 400, 1000, /request body must be a JSON object, got an array/),
    create('JSON string body', 'hello', 400, 1000, /request body must be a JSON object, got the string "hello"/),
    create('JSON null body', null, 400, 1000, /request body must be a JSON object, got null/),
    // --- wrong JSON types ---
    create('type is a string', periodic({ type: '1' }), 400, 1000, /'type' must be an integer.*got the string "1"/),
    create('type is a fraction', periodic({ type: 1.5 }), 400, 1000, /'type' must be an integer.*got the number 1\.5/),
    create('format is a number', oneShot(nowS + 3600), 400, 1000, /'format' must be a string unix timestamp, got the number/),
    create('cron format is an array', periodic({ format: ['*', '*'] }), 400, 1000, /'format' must be a string cron expression, got an array/),
    create('callback is a string', periodic({ callback: url }), 400, 1000, /'callback' must be an object.*got the string/),
    create('callback.url is a number', periodic({ callback: { url: 42 } }), 400, 1003, /'callback\.url' must be a string URL, got the number 42/),
    create('callback.body is a string', withCallback({ body: 'hi' }), 400, 1000, /'callback\.body' must be a JSON object, got the string "hi"/),
    create('callback.body is an array', withCallback({ body: [1, 2] }), 400, 1000, /'callback\.body' must be a JSON object, got an array/),
    create('timeout_ms is a string', periodic({ timeout_ms: '1000' }), 400, 1000, /'timeout_ms' must be an integer, got the string "1000"/),
    create('retry is a number', periodic({ retry: 3 }), 400, 1000, /'retry' must be an object/),
    create('paused is a string', periodic({ paused: 'yes' }), 400, 1000, /'paused' must be true or false, got the string "yes"/),
    create('name is a number', periodic({ name: 42 }), 400, 1000, /'name' must be a string, got the number 42/),
    create('timezone is a number', periodic({ timezone: 8 }), 400, 1000, /'timezone' must be an IANA timezone name string, got the number 8/),
    create('callback.headers is an array', withCallback({ headers: ['X-A: 1'] }), 400, 1000, /'callback\.headers' must be an object/),
    create('callback header value is a number', withCallback({ headers: { 'X-Count': 3 } }), 400, 1000, /'callback\.headers\.X-Count' must be a string/),
    create('unknown top-level field', periodic({ cron: '* * * * *' }), 400, 1000, /unknown field 'cron'/),
    create('unknown callback field', withCallback({ uri: url }), 400, 1000, /unknown field 'callback\.uri'/),
    // --- type / format ---
    create('type 3', periodic({ type: 3 }), 400, 1020, /unsupported task 'type' 3/),
    create('type 0', periodic({ type: 0 }), 400, 1020, /unsupported task 'type' 0/),
    create('missing type', { format: '* * * * *', callback: { url } }, 400, 1000, /'type' is required/),
    create('missing format', { type: 1, callback: { url } }, 400, 1000, /'format' is required: a cron expression/),
    create('missing one-shot format', { type: 2, callback: { url } }, 400, 1000, /'format' is required: a unix timestamp/),
    create('one-shot timestamp in the past', oneShot(String(nowS - 3600)), 400, 1002, /in the past/),
    create('one-shot 9-digit timestamp', oneShot('170000000'), 400, 1001, /got 9 digits/),
    create('one-shot 11-digit timestamp', oneShot('17000000000'), 400, 1001, /got 11 digits/),
    create('one-shot 12-digit timestamp', oneShot('170000000000'), 400, 1001, /got 12 digits/),
    create('one-shot non-numeric timestamp', oneShot('tomorrow'), 400, 1001, /unix timestamp in seconds.*got "tomorrow"/),
    create('one-shot ISO date', oneShot('2030-01-01T00:00:00Z'), 400, 1001, /unix timestamp in seconds/),
    create('one-shot negative timestamp', oneShot(`-${nowS + 3600}`), 400, 1001, /unix timestamp in seconds/),
    create('one-shot fractional seconds', oneShot(`${nowS + 3600}.5`), 400, 1001, /unix timestamp in seconds/),
    create('cron with 4 fields', periodic({ format: '* * * *' }), 400, 1005, /invalid cron expression "\* \* \* \*".*expected 5, 6 or 7 .*got 4/),
    create('cron with 8 fields', periodic({ format: '0 * * * * * * *' }), 400, 1005, /expected 5, 6 or 7 .*got 8/),
    create('cron minute out of range', periodic({ format: '61 * * * *' }), 400, 1005, /invalid cron expression "61 \* \* \* \*".*minute.*61/),
    create('cron hour out of range', periodic({ format: '0 24 * * *' }), 400, 1005, /invalid cron expression .*hour.*24/),
    create('cron month out of range', periodic({ format: '0 0 1 13 *' }), 400, 1005, /invalid cron expression "0 0 1 13 \*"/),
    create('cron garbage', periodic({ format: 'every day at noon please' }), 400, 1005, /invalid cron expression "every day at noon please".*illegal characters/),
    create('cron empty string', periodic({ format: '' }), 400, 1005, /invalid cron expression ""/),
    create('cron that never fires (Feb 30)', periodic({ format: '0 0 30 2 *' }), 400, 1005, /never fires/),
    create('unknown nickname', periodic({ format: '@fortnightly' }), 400, 1005, /unknown nickname "@fortnightly"/),
    create('@every with a bad unit', periodic({ format: '@every 5x' }), 400, 1005, /cannot read duration "5x"/),
    create('@every without a duration', periodic({ format: '@every' }), 400, 1005, /'@every' needs a duration/),
    create('@every below one second', periodic({ format: '@every 500ms' }), 400, 1005, /at least 1s/),
    create('unknown timezone', periodic({ timezone: 'Mars/Olympus_Mons' }), 400, 1006, /unknown timezone "Mars\/Olympus_Mons"/),
    // --- callback ---
    create('missing callback', { type: 1, format: '* * * * *' }, 400, 1003, /'callback' is required/),
    create('missing callback.url', periodic({ callback: { body: {} } }), 400, 1003, /'callback\.url' is required/),
    create('relative callback url', periodic({ callback: { url: '/hooks/x' } }), 400, 1003, /not a valid absolute URL: "\/hooks\/x"/),
    create('ftp callback url', periodic({ callback: { url: 'ftp://example.com/x' } }), 400, 1003, /must use http or https, got "ftp"/),
    create('javascript: callback url', periodic({ callback: { url: 'javascript:alert(1)' } }), 400, 1003, /must use http or https, got "javascript"/),
    create('callback url with credentials', periodic({ callback: { url: 'http://user:secret@example.com/x' } }), 400, 1003, /must not carry credentials/),
    create('callback url over 2048 chars', periodic({ callback: { url: `http://example.com/${'a'.repeat(2100)}` } }), 400, 1003, /longer than 2048/),
    create('oversized callback body', withCallback({ body: { blob: 'x'.repeat(ctx.callbackBodyLimit + 10) } }), 413, 1008, new RegExp(`'callback\\.body' is \\d+ bytes, over the limit of ${ctx.callbackBodyLimit} bytes`)),
    create('reserved callback header Content-Type', withCallback({ headers: { 'Content-Type': 'text/plain' } }), 400, 1009, /header 'Content-Type' is set by xcron/),
    create('reserved callback header X-Xcron-Attempt', withCallback({ headers: { 'X-Xcron-Attempt': '9' } }), 400, 1009, /header 'X-Xcron-Attempt' is set by xcron/),
    create('reserved callback header Host', withCallback({ headers: { host: 'evil.example' } }), 400, 1009, /header 'host' is set by xcron/),
    create('callback header value with CRLF', withCallback({ headers: { 'X-A': 'a\r\nX-Injected: 1' } }), 400, 1009, /'callback\.headers\.X-A'.*CR, LF/),
    create('callback header name with a space', withCallback({ headers: { 'X A': '1' } }), 400, 1009, /"X A" is not a valid header name/),
    create('callback.method not allowed', withCallback({ method: 'FETCH' }), 400, 1009, /'callback\.method'.*"FETCH"/),
    // --- options ---
    create('retry.max_attempts 0', periodic({ retry: { max_attempts: 0 } }), 400, 1009, /'retry\.max_attempts'.*from 1 to 100, got 0/),
    create('retry.max_attempts fractional', periodic({ retry: { max_attempts: 2.5 } }), 400, 1009, /'retry\.max_attempts'.*got 2\.5/),
    create('retry.backoff_ms negative', periodic({ retry: { backoff_ms: -1 } }), 400, 1009, /'retry\.backoff_ms'.*got -1/),
    create('retry.max_backoff_ms below backoff_ms', periodic({ retry: { backoff_ms: 5000, max_backoff_ms: 100 } }), 400, 1009, /'retry\.max_backoff_ms'.*>= backoff_ms \(5000\), got 100/),
    create('retry.max_attempts is a string', periodic({ retry: { max_attempts: '3' } }), 400, 1000, /'retry\.max_attempts' must be an integer/),
    create('retry unknown field', periodic({ retry: { attempts: 3 } }), 400, 1000, /unknown field 'retry\.attempts'/),
    create('timeout_ms 0', periodic({ timeout_ms: 0 }), 400, 1009, /'timeout_ms'.*got 0/),
    create('timeout_ms too large', periodic({ timeout_ms: 10_000_000 }), 400, 1009, /'timeout_ms'.*from 1 to 300000, got 10000000/),
    create('misfire unknown', periodic({ misfire: 'sometimes' }), 400, 1009, /'misfire'.*"fire_once", "skip".*"sometimes"/),
    create('overlap unknown', periodic({ overlap: 'parallel' }), 400, 1009, /'overlap'.*"allow", "skip", "queue".*"parallel"/),
    create('misfire is a number', periodic({ misfire: 1 }), 400, 1000, /'misfire' must be one of/),
    create('empty name', periodic({ name: '' }), 400, 1009, /'name'.*1 to 200 characters, got 0/),
    create('idempotency_key too long', periodic({ idempotency_key: 'k'.repeat(201) }), 400, 1009, /'idempotency_key'.*1 to 200 characters, got 201/),
    // --- transport ---
    {
      name: 'oversized request body',
      method: 'POST',
      path: '/xcron/createTask',
      json: periodic({ name: 'n', callback: { url, body: { blob: 'y'.repeat(ctx.requestBodyLimit + 100) } } }),
      status: 413,
      code: 1008,
      message: new RegExp(`request body is over the limit of ${ctx.requestBodyLimit} bytes`),
    },
    { name: 'Content-Type text/plain', method: 'POST', path: '/xcron/createTask', body: JSON.stringify(periodic()), headers: { 'content-type': 'text/plain' }, status: 415, code: 1000, message: /must be JSON.*Content-Type.*"text\/plain"/ },
    {
      name: 'Content-Type form-urlencoded',
      method: 'POST',
      path: '/xcron/createTask',
      body: 'type=1&format=*',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      code: 1000,
      message: /Content-Type.*"application\/x-www-form-urlencoded".*-H 'Content-Type: application\/json'/,
    },
    // --- deleteTask / queryTask ---
    { name: 'deleteTask unknown task_id', method: 'POST', path: '/xcron/deleteTask', json: { task_id: 'no-such-task-000' }, status: 404, code: 1007, message: /task "no-such-task-000" not found/ },
    { name: 'queryTask unknown task_id', method: 'GET', path: '/xcron/queryTask?task_id=no-such-task-001', status: 404, code: 1007, message: /task "no-such-task-001" not found/ },
    { name: 'queryTask task_id with odd characters', method: 'GET', path: '/xcron/queryTask?task_id=..%2F..%2Fetc', status: 404, code: 1007, message: /not found/ },
    { name: 'deleteTask missing task_id', method: 'POST', path: '/xcron/deleteTask', json: {}, status: 400, code: 1000, message: /'task_id' is required/ },
    { name: 'deleteTask task_id is a number', method: 'POST', path: '/xcron/deleteTask', json: { task_id: 7 }, status: 400, code: 1000, message: /'task_id' must be a string, got the number 7/ },
    { name: 'deleteTask body is an array', method: 'POST', path: '/xcron/deleteTask', json: ['abc'], status: 400, code: 1000, message: /must be a JSON object \{"task_id": "\.\.\."\}, got an array/ },
    { name: 'deleteTask bad JSON', method: 'POST', path: '/xcron/deleteTask', body: '{task_id: abc}', headers: JSON_CT, status: 400, code: 1000, message: /not valid JSON/ },
    { name: 'queryTask missing task_id', method: 'GET', path: '/xcron/queryTask', status: 400, code: 1000, message: /'task_id' is required/ },
    // --- routing ---
    { name: 'GET createTask (wrong method)', method: 'GET', path: '/xcron/createTask', status: 405, code: 1013, message: /method GET is not allowed on \/xcron\/createTask; use POST/, allow: 'POST' },
    { name: 'DELETE queryTask (wrong method)', method: 'DELETE', path: '/xcron/queryTask', status: 405, code: 1013, message: /method DELETE is not allowed on \/xcron\/queryTask; use GET/, allow: 'GET' },
    { name: 'PUT deleteTask (wrong method)', method: 'PUT', path: '/xcron/deleteTask', json: { task_id: 'x' }, status: 405, code: 1013, message: /method PUT is not allowed/, allow: 'POST' },
    { name: 'unknown route', method: 'POST', path: '/xcron/createTaskz', json: periodic(), status: 404, code: 1012, message: /no such endpoint: POST \/xcron\/createTaskz/ },
    { name: 'unknown route outside /xcron', method: 'GET', path: '/admin', status: 404, code: 1012, message: /no such endpoint: GET \/admin/ },
  ];
}
