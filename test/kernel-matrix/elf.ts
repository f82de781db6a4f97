// Minimal ELF checks for the lane's prerequisites. Pure.

export function isElf(head: Uint8Array): boolean {
  return head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/**
 * Whether a 64-bit little-endian ELF executable asks for a program interpreter (PT_INTERP),
 * i.e. is dynamically linked: the initramfs has no libc, so its busybox must be static.
 */
export function hasInterpreter(elf: Uint8Array, what = 'ELF file'): boolean {
  if (!isElf(elf) || elf[4] !== 2 || elf[5] !== 1) {
    throw new Error(`${what} is not a 64-bit little-endian ELF file`);
  }
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > elf.length) throw new Error(`${what}: program header ${i} is truncated`);
    if (view.getUint32(at, true) === 3 /* PT_INTERP */) return true;
  }
  return false;
}
