import { describe, expect, it } from 'vitest';
import {
  parseWatchLine,
  WatchStreamSplitter,
  type WatchLine,
} from '../../src/identity/kube-watch-stream.js';

const pod = (rv: string, name = 'web-a') => ({
  kind: 'Pod',
  metadata: { name, namespace: 'default', resourceVersion: rv },
});
const ADDED = JSON.stringify({ type: 'ADDED', object: pod('1001') });
const BOOKMARK = JSON.stringify({
  type: 'BOOKMARK',
  object: { kind: 'Pod', metadata: { resourceVersion: '1005' } },
});
const GONE = JSON.stringify({
  type: 'ERROR',
  object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 },
});
const body = `${ADDED}\n${BOOKMARK}\n${GONE}\n`;

/** Feeds chunks; returns every line the splitter gives, end() included. */
function split(chunks: ReadonlyArray<Buffer | string>): WatchLine[] {
  const splitter = new WatchStreamSplitter();
  return [...chunks.flatMap((c) => splitter.push(c)), ...splitter.end()];
}

const events = (lines: WatchLine[]) =>
  lines.map((l) => (l.kind === 'event' ? l.event : { malformed: l.reason }));

const WANT = [
  { type: 'ADDED', object: pod('1001') },
  { type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '1005' } } },
  {
    type: 'ERROR',
    object: { kind: 'Status', status: 'Failure', reason: 'Expired', code: 410 },
  },
];

describe('WatchStreamSplitter', () => {
  it.each<[string, string[]]>([
    ['one chunk', [body]],
    ['one chunk a line', [`${ADDED}\n`, `${BOOKMARK}\n`, `${GONE}\n`]],
    [
      'cuts inside lines',
      [
        ADDED.slice(0, 7),
        `${ADDED.slice(7)}\n${BOOKMARK.slice(0, 30)}`,
        `${BOOKMARK.slice(30)}\n${GONE}\n`,
      ],
    ],
    ['cuts right before each newline', [ADDED, `\n${BOOKMARK}`, `\n${GONE}`, '\n']],
    ['single bytes', [...body]],
    ['CRLF and blank lines (a proxy)', [`${ADDED}\r\n\r\n${BOOKMARK}\r\n`, `${GONE}\r\n`]],
    ['no newline after the last event', [`${ADDED}\n${BOOKMARK}\n${GONE}`]],
  ])('gives the events, bookmark and 410 ERROR of a stream cut as %s', (_how, chunks) => {
    expect(events(split(chunks))).toEqual(WANT);
  });

  it('keeps a multi-byte character cut between two chunks', () => {
    const line = `${JSON.stringify({ type: 'ADDED', object: pod('7', 'café-☕') })}\n`;
    const bytes = Buffer.from(line);
    const at = bytes.indexOf(Buffer.from('☕')) + 1; // inside the 3-byte character
    expect(events(split([bytes.subarray(0, at), bytes.subarray(at)]))).toEqual([
      { type: 'ADDED', object: pod('7', 'café-☕') },
    ]);
  });

  it('gives nothing for a chunk that completes no line', () => {
    const splitter = new WatchStreamSplitter();
    expect(splitter.push(ADDED.slice(0, 20))).toEqual([]);
    expect(splitter.push(ADDED.slice(20))).toEqual([]);
    expect(events(splitter.push('\n'))).toEqual([WANT[0]]);
    expect(splitter.end()).toEqual([]);
  });

  it('reports lines that are no events and goes on', () => {
    expect(events(split([`<html>\n${ADDED}\n["ADDED"]\n{"object":{}}\nnull\n`]))).toEqual([
      { malformed: 'not JSON: <html>' },
      WANT[0],
      { malformed: 'no event type: ["ADDED"]' },
      { malformed: 'no event type: {"object":{}}' },
      { malformed: 'no event type: null' },
    ]);
  });

  it('throws on a line longer than its bound instead of buffering without end', () => {
    const splitter = new WatchStreamSplitter(100);
    expect(splitter.push('x'.repeat(60))).toEqual([]);
    expect(() => splitter.push('x'.repeat(60))).toThrow(
      'watch event longer than 100 characters without a newline: not a watch stream',
    );
  });

  it('does not count completed lines against the bound', () => {
    const splitter = new WatchStreamSplitter(ADDED.length + 1);
    for (let i = 0; i < 5; i++) expect(events(splitter.push(`${ADDED}\n`))).toEqual([WANT[0]]);
  });
});

describe('parseWatchLine', () => {
  it('shortens the line it quotes', () => {
    const got = parseWatchLine(`{${'x'.repeat(200)}`);
    expect(got).toEqual({ kind: 'malformed', reason: `not JSON: {${'x'.repeat(79)}…` });
  });
});
