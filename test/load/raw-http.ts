// A raw HTTP/1.1 client for hostile requests that fetch() refuses to send (bad methods,
// control bytes, lying lengths, partial headers): writes bytes, reads until the server
// closes or `timeoutMs` passes, and reports the status line it got, if any.
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface RawResponse {
  /** HTTP status, or undefined when the server closed (or never answered) without one. */
  status: number | undefined;
  headers: Record<string, string>;
  body: Buffer;
  /** The server closed the connection (else we gave up at timeoutMs). */
  closed: boolean;
  ms: number;
  error?: string;
}

/** Status, headers and body of the first response in `raw` (latin1 headers). */
export function parseResponse(raw: Buffer): Pick<RawResponse, 'status' | 'headers' | 'body'> {
  const end = raw.indexOf('\r\n\r\n');
  const head = (end < 0 ? raw : raw.subarray(0, end)).toString('latin1');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return {
    status: m ? Number(m[1]) : undefined,
    headers,
    body: end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4),
  };
}

export function rawRequest(
  host: string,
  port: number,
  request: Buffer | string,
  timeoutMs = 5_000,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const start = performance.now();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const socket = net.connect(port, host);
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        ...parseResponse(Buffer.concat(chunks)),
        closed,
        ms: performance.now() - start,
        ...(error ? { error } : {}),
      });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    // The server may close while we still write (a refused body): that is an answer, not a failure.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') error = e.message;
      finish(true);
    });
    socket.on('close', () => finish(true));
    socket.write(request);
  });
}

/** Opens a connection and sends `head` without ever finishing it; resolves when the server closes. */
export function partialRequest(
  host: string,
  port: number,
  head: string,
  trickleEveryMs = 0,
  giveUpMs = 60_000,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const start = performance.now();
    const chunks: Buffer[] = [];
    const socket = net.connect(port, host, () => socket.write(head));
    const trickle =
      trickleEveryMs > 0
        ? setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), trickleEveryMs)
        : undefined;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearInterval(trickle);
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks)), closed, ms: performance.now() - start });
    };
    const timer = setTimeout(() => finish(false), giveUpMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}
