import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  BadRequestError,
  ExpectationFailedError,
  HeadersTooLargeError,
  MethodNotAllowedError,
  RequestTimeoutError,
  toProblem,
  type RelayError,
} from '../errors.js';

/**
 * Answers that Node's HTTP server gives before Express runs (a header section over the limit,
 * a malformed request, a request that did not arrive in time, an `Expect` it does not know),
 * as problem+json like every other error, instead of Node's bare status lines.
 */

function problemText(error: RelayError): string {
  return JSON.stringify(toProblem(error));
}

/**
 * Answers on the raw socket, then closes it: Node has no response object for these. The
 * answer to a HEAD carries the problem's headers and no body (RFC 9110 9.3.2), as Node's own
 * responses to HEAD do.
 */
function answerRaw(socket: Duplex, error: RelayError, head = false): void {
  const body = problemText(error);
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      (head ? '' : body),
  );
}

/** Whether the bytes the parser failed on begin a HEAD request (the request line is all it read of them). */
function isHead(err: NodeJS.ErrnoException & { rawPacket?: Buffer }): boolean {
  return err.rawPacket?.toString('latin1', 0, 5) === 'HEAD ';
}

function fromParserError(err: NodeJS.ErrnoException): RelayError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HeadersTooLargeError('the request header section is over the server\'s limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RequestTimeoutError('the request was not received in time');
    default:
      return new BadRequestError('the request is not valid HTTP/1.1');
  }
}

export function answerNodeErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Bytes that follow a complete request (a stray byte after its body) are a malformed next
    // request; the request before them is answered first, then the connection closes, so that
    // a client is never left without the answer to what the server did.
    const current = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (current && !current.writableFinished && current.req.complete) {
      current.shouldKeepAlive = false;
      current.once('finish', () => socket.end());
      current.once('close', () => socket.destroy());
      return;
    }
    // An answer already under way cannot be followed by another.
    if (current?.headersSent) return void socket.destroy();
    answerRaw(socket, fromParserError(err), isHead(err));
  });
  // CONNECT (a proxy's method) would otherwise be closed without an answer.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    answerRaw(socket, new MethodNotAllowedError('CONNECT is not a method of the relay API'));
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = new ExpectationFailedError(`Expect: ${JSON.stringify(req.headers.expect)} is not supported; only 100-continue is`);
    const body = problemText(error);
    res.writeHead(error.status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
}
