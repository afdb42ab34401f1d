/**
 * Requests Node's HTTP parser refuses before any route sees them (a request line or headers over
 * the parser's limit, a malformed request, a header timeout) are answered in the API envelope
 * instead of Node's bare status line: `431` (code 1008) for a request line or header block over
 * the limit — a 100 KB query string lands here — `400` (code 1000) for a request that is not
 * HTTP, `408` for headers that did not arrive in time. A reset connection is just closed.
 */
import { randomUUID } from 'node:crypto';
import { maxHeaderSize } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Codes } from '../errors.js';

interface Answer {
  status: number;
  reason: string;
  code: number;
  message: string;
}

export function clientErrorAnswer(err: NodeJS.ErrnoException, limit: number = maxHeaderSize): Answer {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, reason: 'Request Header Fields Too Large', code: Codes.TOO_LARGE, message: `the request line and headers are over the limit of ${limit} bytes (a long query string counts too; send large input as a JSON body)` };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, reason: 'Payload Too Large', code: Codes.TOO_LARGE, message: 'chunk extensions of the request body are over the limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, reason: 'Request Timeout', code: Codes.BAD_JSON, message: 'the request did not arrive in time' };
    default:
      return { status: 400, reason: 'Bad Request', code: Codes.BAD_JSON, message: `malformed HTTP request (${err.code ?? 'parse error'})` };
  }
}

export interface ClientErrorOptions {
  log: Logger;
  /** Counts the answer like a request (route "other", method "OTHER"). */
  observe?: (status: number) => void;
}

/** Installs the 'clientError' handler on the API's HTTP server (replacing Node's bare answer). */
export function answerClientErrors(server: { on(event: 'clientError', listener: (err: NodeJS.ErrnoException, socket: Duplex) => void): unknown }, { log, observe }: ClientErrorOptions): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const a = clientErrorAnswer(err);
    const uuid = randomUUID();
    const body = JSON.stringify({ uuid, code: a.code, message: a.message, data: null });
    log.debug({ status: a.status, err_code: err.code, req_id: uuid }, 'request refused by the HTTP parser');
    observe?.(a.status);
    socket.end(
      `HTTP/1.1 ${a.status} ${a.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${uuid}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
