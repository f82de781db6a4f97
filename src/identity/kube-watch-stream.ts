// Splits a Kubernetes watch response body into its events. The API server writes one JSON
// object per line ({"type": "ADDED", "object": {...}}, json.Encoder framing), but the network cuts
// the body into chunks anywhere: inside a line, inside a multi-byte character. Pure.
import { StringDecoder } from 'node:string_decoder';

export interface WatchEvent {
  /** ADDED, MODIFIED, DELETED, BOOKMARK, ERROR (whatever the server sends). */
  readonly type: string;
  /** The object, or a Status for ERROR; raw JSON, unchecked. */
  readonly object: unknown;
}

export type WatchLine =
  | { readonly kind: 'event'; readonly event: WatchEvent }
  /** A line that is no watch event; why, with the start of the line. */
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Bound on one buffered line. etcd refuses objects over 1.5 MiB, so a longer line is not an
 * event but a broken or hostile stream, and must not grow the heap without end.
 */
export const MAX_WATCH_LINE_CHARS = 16 * 1024 * 1024;

export class WatchStreamSplitter {
  readonly #decoder = new StringDecoder('utf8');
  readonly #maxLineChars: number;
  /** The unfinished line, in pieces: joining once per line keeps a long event linear to split. */
  #pieces: string[] = [];
  #partialChars = 0;

  constructor(maxLineChars = MAX_WATCH_LINE_CHARS) {
    this.#maxLineChars = maxLineChars;
  }

  /** The lines a chunk completes. Throws when a line outgrows maxLineChars. */
  push(chunk: Buffer | string): WatchLine[] {
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const lines = text.split('\n');
    const last = lines.pop() ?? '';
    if (lines.length > 0) {
      lines[0] = this.#pieces.join('') + lines[0];
      this.#pieces = [];
      this.#partialChars = 0;
    }
    this.#pieces.push(last);
    this.#partialChars += last.length;
    if (this.#partialChars > this.#maxLineChars)
      throw new Error(
        `watch event longer than ${this.#maxLineChars} characters without a newline: not a watch stream`,
      );
    return parseLines(lines);
  }

  /** At the end of the body: a last line the server did not end with a newline. */
  end(): WatchLine[] {
    const rest = this.#pieces.join('') + this.#decoder.end();
    this.#pieces = [];
    this.#partialChars = 0;
    return parseLines([rest]);
  }
}

function parseLines(lines: readonly string[]): WatchLine[] {
  const out: WatchLine[] = [];
  for (const raw of lines) {
    const line = raw.trim(); // also drops the \r of a CRLF proxy
    if (line === '') continue;
    out.push(parseWatchLine(line));
  }
  return out;
}

/** One line of a watch stream. */
export function parseWatchLine(line: string): WatchLine {
  const start = line.length > 80 ? `${line.slice(0, 80)}…` : line;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'malformed', reason: `not JSON: ${start}` };
  }
  const type = (value as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || typeof value !== 'object' || Array.isArray(value))
    return { kind: 'malformed', reason: `no event type: ${start}` };
  return { kind: 'event', event: { type, object: (value as { object?: unknown }).object } };
}
