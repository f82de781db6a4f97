// Reads pinned maps for the exporter: through the pinned iterator of a map where the loader
// pinned one (a file of raw key and value records, bpf/iter_<map>.bpf.c), else with bpftool
// dumps, several in one process. Either way the entries come out decoded by map-layouts.ts.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Bpftool } from './bpftool.js';
import type { MapEntry, RawMapEntry } from './bpftool-output.js';
import { decodeRawEntries, MAP_LAYOUTS, sizeAndAlign } from './map-layouts.js';

/** An iterator's output: key and value bytes back to back, entry after entry. Pure. */
export function parseIteratorRecords(
  buf: Buffer,
  keySize: number,
  valueSize: number,
  what: string,
): RawMapEntry[] {
  const size = keySize + valueSize;
  if (buf.length % size !== 0)
    throw new Error(`${what}: ${buf.length} bytes is not a whole number of ${size}-byte entries`);
  const out: RawMapEntry[] = [];
  for (let at = 0; at < buf.length; at += size)
    out.push({
      key: buf.subarray(at, at + keySize),
      value: buf.subarray(at + keySize, at + size),
    });
  return out;
}

/** Reads a pinned iterator over the map named mapName (which must have a layout). */
export async function readIterator(path: string, mapName: string): Promise<MapEntry[]> {
  const layout = MAP_LAYOUTS[mapName];
  if (!layout) throw new Error(`no layout for map ${mapName} (src/bpf/map-layouts.ts)`);
  const what = `iterator ${path}`;
  const buf = await readFile(path);
  const records = parseIteratorRecords(
    buf,
    sizeAndAlign(layout.key).size,
    sizeAndAlign(layout.value).size,
    what,
  );
  return decodeRawEntries(records, mapName, what);
}

export class MapReader {
  /** iterators: map name -> pinned iterator (LoadedPrograms.iterators) */
  constructor(
    private readonly bpftool: Bpftool,
    private readonly iterators: Readonly<Record<string, string>>,
  ) {}

  async dump(pin: string): Promise<MapEntry[]> {
    return (await this.dumpMany([pin]))[0]!;
  }

  /** The maps in the order given: iterators read as files, the rest in one bpftool batch. */
  async dumpMany(pins: readonly string[]): Promise<MapEntry[][]> {
    const iter = pins.map((p) => this.iterators[basename(p)]);
    const rest = pins.filter((_, i) => iter[i] === undefined);
    const [fromIterators, dumped] = await Promise.all([
      Promise.all(pins.map((p, i) => (iter[i] ? readIterator(iter[i], basename(p)) : undefined))),
      rest.length > 0 ? this.bpftool.mapDumpMany(rest) : Promise.resolve([]),
    ]);
    let next = 0;
    return fromIterators.map((e) => e ?? dumped[next++]!);
  }
}
