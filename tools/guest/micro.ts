import { ordinaryLayout } from '../../src/hw/mem/ram-layout.js';
import type { MachineConfig } from '../../src/platform/machine-config.js';
import { Asm, microBios } from './asm.js';

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

/** Where `wakeOtherCpus` starts the other vCPUs: SIPI vector 0xF8, 0xF8000, the ROM alias of image offset 0x8000. */
export const AP_SIPI_VECTOR = 0xf8;
export const AP_CODE_OFFSET = 0x8000;

/**
 * Emits what firmware does to start the other processors, through the x2APIC MSRs (usable from
 * real mode, unlike the xAPIC page at 0xFEE00000): x2APIC on, APIC software-enabled, INIT to
 * all but self, then two SIPIs with vector AP_SIPI_VECTOR. KVM's in-kernel LAPIC (and QEMU's
 * on KVM) does the rest; each AP starts in real mode at F800:0000, image offset AP_CODE_OFFSET.
 */
export function wakeOtherCpus(a: Asm): Asm {
  const wrmsr = (msr: number, low: number): Asm => a.movImm('ecx', msr, 4).movImm('edx', 0, 4).movImm('eax', low, 4).wrmsr();
  a.movImm('ecx', 0x1b, 4).rdmsr().orEax(0xc00).wrmsr(); // IA32_APIC_BASE: xAPIC and x2APIC enable
  wrmsr(0x80f, 0x1ff); // spurious-interrupt vector register: APIC on
  wrmsr(0x830, 0x000c_4500); // ICR: INIT, all excluding self
  wrmsr(0x830, 0x000c_4600 | AP_SIPI_VECTOR);
  return wrmsr(0x830, 0x000c_4600 | AP_SIPI_VECTOR);
}

/** Emits "out 0xCF8, eax; in eax, 0xCFC" (a config-space round trip, two port exits) `iterations` times, then isa-debug-exit. */
export function configLoop(a: Asm, iterations: number): Asm {
  a.movImm('ecx', iterations, 4).label('top');
  a.movImm('edx', 0xcf8, 2).movImm('eax', 0x8000_0000, 4).outDx(4);
  a.movImm('edx', 0xcfc, 2).inDx(4);
  a.decEcx().jnz('top');
  return a.movImm('edx', 0xf4, 2).movImm('eax', 0, 1).outDx(1).cli().hlt();
}

/**
 * A two-vCPU image: the config-space loop runs on the boot vCPU (`on: 'boot'`) or on the other
 * one (`on: 'ap'`), woken by `wakeOtherCpus`; the idle one halts with interrupts off, so only a
 * kick brings its thread back to user space.
 */
export function smpLoopImage(iterations: number, on: 'boot' | 'ap'): Uint8Array {
  const park = (a: Asm): Asm => a.cli().label('park').hlt().jmp('park');
  const boot = wakeOtherCpus(new Asm(16));
  const image = microBios((on === 'boot' ? configLoop(boot, iterations) : park(boot)).bytes());
  image.set((on === 'ap' ? configLoop(new Asm(16), iterations) : park(new Asm(16))).bytes(), AP_CODE_OFFSET);
  return image;
}
