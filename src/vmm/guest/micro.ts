import { ordinaryLayout } from '../guest-memory.js';
import type { MachineConfig } from '../machine-config.js';
import { microBios } from './asm.js';

/** Linear address of the micro BIOS image (its 64 KiB end at 4 GiB). */
export const MICRO_BIOS_BASE = 0xffff_0000;

/**
 * A machine for a micro guest: `code` at offset 0 of a 64 KiB BIOS image (reached from the
 * reset vector in real mode, or entered directly in flat 32-bit mode at MICRO_BIOS_BASE),
 * 16 MiB of RAM and isa-debug-exit so the guest can end its run.
 */
export function microConfig(code: Uint8Array, options: { flat32?: boolean; data?: ReadonlyArray<{ offset: number; bytes: Uint8Array }> } & Partial<MachineConfig> = {}): MachineConfig {
  const image = microBios(code);
  for (const d of options.data ?? []) image.set(d.bytes, d.offset);
  const { flat32, data, ...rest } = options;
  void data;
  return {
    ram: ordinaryLayout(16n << 20n),
    firmware: { name: 'micro-guest', image },
    debugExit: true,
    ...(flat32 === true ? { start: { mode: 'flat32' as const, entry: MICRO_BIOS_BASE } } : {}),
    ...rest,
  };
}

/** Where flat32Tables puts its GDT, IDT and the two descriptors lgdt/lidt read, in the image. */
export const FLAT32_TABLES = { gdt: 0xf000, idt: 0xf100, gdtr: 0xf900, idtr: 0xf908 } as const;

/**
 * The descriptor tables a flat 32-bit micro guest with interrupts needs, as `data` for
 * microConfig: a GDT with flat code (0x08) and data (0x10) segments, an IDT with an interrupt
 * gate per entry of `gates` (vector -> code offset), and the descriptors for
 * `lgdt [MICRO_BIOS_BASE + FLAT32_TABLES.gdtr]` / `lidt [... + idtr]`.
 */
export function flat32Tables(gates: ReadonlyMap<number, number>): Array<{ offset: number; bytes: Uint8Array }> {
  const gdt = new Uint8Array(24);
  const gv = new DataView(gdt.buffer);
  // Accessed bits set: the GDT is in ROM, and a CPU setting one on a segment load would write there.
  gv.setBigUint64(8, 0x00cf9b000000ffffn, true);
  gv.setBigUint64(16, 0x00cf93000000ffffn, true);
  const idt = new Uint8Array(8 * 256);
  const iv = new DataView(idt.buffer);
  for (const [vector, offset] of gates) {
    const target = MICRO_BIOS_BASE + offset;
    iv.setUint16(vector * 8, target & 0xffff, true);
    iv.setUint16(vector * 8 + 2, 0x08, true);
    iv.setUint8(vector * 8 + 5, 0x8e); // present, DPL 0, 32-bit interrupt gate
    iv.setUint16(vector * 8 + 6, target >>> 16, true);
  }
  const desc = new Uint8Array(16);
  const dv = new DataView(desc.buffer);
  dv.setUint16(0, gdt.length - 1, true);
  dv.setUint32(2, MICRO_BIOS_BASE + FLAT32_TABLES.gdt, true);
  dv.setUint16(8, idt.length - 1, true);
  dv.setUint32(10, MICRO_BIOS_BASE + FLAT32_TABLES.idt, true);
  return [
    { offset: FLAT32_TABLES.gdt, bytes: gdt },
    { offset: FLAT32_TABLES.idt, bytes: idt },
    { offset: FLAT32_TABLES.gdtr, bytes: desc },
  ];
}
