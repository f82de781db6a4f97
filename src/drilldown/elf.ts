// The program interpreter of an ELF executable (PT_INTERP), which names the C library a
// dynamically linked program resolves names with. Pure: works on the file's first bytes.

export type LibcFromInterpreter = 'glibc' | 'musl' | 'static' | 'other';

const PT_INTERP = 3;

/**
 * The PT_INTERP path of an ELF file from its first bytes, null for a static executable, or
 * undefined when the bytes are no ELF file (or too short to tell).
 */
export function elfInterpreter(bytes: Uint8Array): string | null | undefined {
  if (
    bytes.length < 52 ||
    bytes[0] !== 0x7f ||
    bytes[1] !== 0x45 ||
    bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  )
    return undefined;
  const is64 = bytes[4] === 2;
  const little = bytes[5] === 1;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => v.getUint16(o, little);
  const u32 = (o: number) => v.getUint32(o, little);
  const word = (o: number) => (is64 ? Number(v.getBigUint64(o, little)) : u32(o));
  if (is64 && bytes.length < 64) return undefined;
  const phoff = word(is64 ? 32 : 28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phentsize < (is64 ? 56 : 32) || phnum > 512) return undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + phentsize > bytes.length) return undefined;
    if (u32(ph) !== PT_INTERP) continue;
    const offset = word(is64 ? ph + 8 : ph + 4);
    const size = word(is64 ? ph + 32 : ph + 16);
    if (size === 0 || size > 4096 || offset + size > bytes.length) return undefined;
    let end = offset + size;
    while (end > offset && bytes[end - 1] === 0) end--;
    return new TextDecoder().decode(bytes.subarray(offset, end));
  }
  return null;
}

export function libcOfInterpreter(interp: string | null): LibcFromInterpreter {
  if (interp === null) return 'static';
  if (/\/ld-musl-[^/]*\.so/.test(interp)) return 'musl';
  if (/\/ld-linux[^/]*\.so|\/ld64\.so|\/ld\.so/.test(interp)) return 'glibc';
  return 'other';
}
