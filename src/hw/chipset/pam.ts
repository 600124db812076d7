/**
 * The i440FX's Programmable Attribute Map: registers 0x59-0x5F of the host bridge decide, for
 * each 16 KiB segment of 0xC0000-0xEFFFF and the 64 KiB at 0xF0000, whether reads and writes go
 * to RAM or to the PCI side (where the BIOS ROM's last 128 KiB is aliased at 0xE0000).
 */
export const PAM_FIRST_REGISTER = 0x59;
export const PAM_REGISTER_COUNT = 7;

export interface PamSegment {
  readonly base: number;
  readonly size: number;
  /** RAM serves reads. */
  readonly readRam: boolean;
  /** RAM takes writes. */
  readonly writeRam: boolean;
}

/** Decodes the seven PAM bytes into the 13 segments, lowest address first. */
export function decodePam(registers: Uint8Array): PamSegment[] {
  const segs: PamSegment[] = [];
  for (let i = 0; i < 12; i++) {
    const reg = registers[1 + (i >> 1)]!;
    const bits = i & 1 ? reg >> 4 : reg & 0x0f;
    segs.push({ base: 0xc0000 + i * 0x4000, size: 0x4000, readRam: (bits & 1) !== 0, writeRam: (bits & 2) !== 0 });
  }
  const f = registers[0]! >> 4;
  segs.push({ base: 0xf0000, size: 0x10000, readRam: (f & 1) !== 0, writeRam: (f & 2) !== 0 });
  return segs;
}
