import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lowercase names; a header sent more than once has its values joined with ", ". */
  headers: Record<string, string>;
  /** The body as text, unchunked when it came chunked. */
  body: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: any;
}

/** The payload of a chunked body (extensions and trailers dropped); what is cut short stays cut. */
function dechunk(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(bytes.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** The bytes after any interim (1xx) responses, such as the 100 Continue an Expect asks for. */
function finalResponse(bytes: Buffer): Buffer {
  let at = 0;
  while (/^HTTP\/\d\.\d 1\d\d /.test(bytes.subarray(at, at + 13).toString('latin1'))) {
    const end = bytes.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    at = end + 4;
  }
  return bytes.subarray(at);
}

/**
 * Sends bytes exactly as given on a fresh TCP connection and reads the answer until the
 * server closes the connection or a complete response (by Content-Length, or the last chunk
 * of a chunked body) has arrived: for requests no HTTP client would send (no Content-Length on
 * a POST, a malformed request line, an unknown Expect, a `*` target).
 */
export function rawRequest(url: string, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const bytes = finalResponse(Buffer.concat(chunks));
      const split = bytes.indexOf('\r\n\r\n');
      const head = (split < 0 ? bytes : bytes.subarray(0, split)).toString('latin1');
      const rest = split < 0 ? Buffer.alloc(0) : bytes.subarray(split + 4);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        const value = line.slice(i + 1).trim();
        headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
      }
      const body = (/chunked/i.test(headers['transfer-encoding'] ?? '') ? dechunk(rest) : rest).toString('utf8');
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body, json });
    };
    const complete = () => {
      const bytes = finalResponse(Buffer.concat(chunks));
      const split = bytes.indexOf('\r\n\r\n');
      if (split < 0 || /^HTTP\/\d\.\d 1\d\d /.test(bytes.toString('latin1', 0, 13))) return false;
      const head = bytes.subarray(0, split).toString('latin1');
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) return bytes.subarray(split + 4).includes('0\r\n\r\n');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      return length !== null && bytes.length - (split + 4) >= Number(length[1]);
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (complete()) finish();
    });
    socket.on('end', finish);
    socket.on('error', (err) => {
      if (chunks.length > 0) finish();
      else {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.write(request);
  });
}
