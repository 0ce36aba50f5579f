import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  BadRequestError,
  ExpectationFailedError,
  HeadersTooLargeError,
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
    // Nothing can be answered on a connection that is gone or already answering.
    const answering = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || answering) {
      socket.destroy();
      return;
    }
    const error = fromParserError(err);
    const body = problemText(error);
    socket.end(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = new ExpectationFailedError(`Expect: ${JSON.stringify(req.headers.expect)} is not supported; only 100-continue is`);
    const body = problemText(error);
    res.writeHead(error.status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
}
