import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON when it is JSON, else undefined. */
  json: any;
}

/**
 * Sends bytes exactly as given on a fresh TCP connection and reads the answer until the
 * server closes the connection or a complete response (by Content-Length) has arrived: for
 * requests no HTTP client would send (no Content-Length on a POST, a malformed request line,
 * an unknown Expect, a `*` target).
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
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const body = split < 0 ? '' : text.slice(split + 4);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      let json: any;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body, json });
    };
    const complete = () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return false;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, split));
      return length !== null && Buffer.byteLength(text.slice(split + 4)) >= Number(length[1]);
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
