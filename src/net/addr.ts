// 16-byte addresses as the BPF maps store them (IPv4 as ::ffff:a.b.c.d) to text. Pure.

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

export function addrFromBytes(bytes: readonly number[] | Uint8Array): string {
  if (bytes.length !== 16) throw new Error(`address must be 16 bytes, got ${bytes.length}`);
  const b = Array.from(bytes);
  if (V4_MAPPED_PREFIX.every((v, i) => b[i] === v)) return b.slice(12).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  // RFC 5952: compress the longest run (of two or more) of zero groups, the first one on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
