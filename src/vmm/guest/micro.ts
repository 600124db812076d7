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
