import { PAM_FIRST_REGISTER, PAM_REGISTER_COUNT } from '../hw/chipset/pam.js';
import type { PlacedEmulated } from '../hw/pci/compose.js';
import type { EmulatedFunctionSpec } from '../hw/pci/emulated.js';

/** Red Hat / "QEMU virtual machine": SeaBIOS turns on fw_cfg only when 00:00.0 carries these. */
const QEMU_SUBSYSTEM_VENDOR = 0x1af4;
const QEMU_SUBSYSTEM = 0x1100;
const SMRAM = 0x72;
const PIRQ_FIRST = 0x60;
const PIRQ_COUNT = 4;

export interface ChipsetHooks {
  /** The seven PAM bytes (0x59-0x5F) after a guest write that touched any of them. */
  pamChanged(registers: Uint8Array): void;
  /** A PIRQ route register (0-3 for PIRQA-D) after a guest write. */
  pirqChanged(pirq: number, value: number): void;
}

/**
 * The i440FX host bridge (8086:1237) as SeaBIOS and GRUB see it under QEMU: the PAM registers
 * that decide whether 0xC0000-0xFFFFF is RAM or ROM, SMRAM, and the subsystem IDs that tell
 * SeaBIOS it may use fw_cfg.
 */
export function i440fxSpec(hooks: ChipsetHooks): EmulatedFunctionSpec {
  const pamEnd = PAM_FIRST_REGISTER + PAM_REGISTER_COUNT;
  return {
    id: 'i440fx',
    vendorId: 0x8086,
    deviceId: 0x1237,
    classCode: 0x060000,
    revision: 0x02,
    subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
    subsystemId: QEMU_SUBSYSTEM,
    command: 0x0006,
    registers: [
      ...Array.from({ length: PAM_REGISTER_COUNT }, (_, i) => ({ offset: PAM_FIRST_REGISTER + i, size: 1 as const, value: 0, writable: i === 0 ? 0x30 : 0x33 })),
      { offset: SMRAM, size: 1, value: 0x02, writable: 0x78 },
    ],
    // One callback per guest write (a dword write at 0x58 touches three PAM bytes).
    onWrite: (e) => {
      if (e.offset < pamEnd && e.offset + e.size > PAM_FIRST_REGISTER) hooks.pamChanged(e.fn.getStoredBytes(PAM_FIRST_REGISTER, PAM_REGISTER_COUNT));
    },
  };
}

/**
 * The PIIX3 PCI-to-ISA bridge (8086:7000): its PIRQ route registers 0x60-0x63 (bit 7 disables,
 * bits 3:0 name the ISA IRQ) drive the PIRQ router; SeaBIOS programs them and Linux reads them
 * through the DSDT's link devices.
 */
export function piix3Spec(hooks: ChipsetHooks): EmulatedFunctionSpec {
  return {
    id: 'piix3',
    vendorId: 0x8086,
    deviceId: 0x7000,
    classCode: 0x060100,
    subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
    subsystemId: QEMU_SUBSYSTEM,
    command: 0x0007,
    registers: Array.from({ length: PIRQ_COUNT }, (_, i) => ({ offset: PIRQ_FIRST + i, size: 1 as const, value: 0x80, writable: 0x8f })),
    onWrite: (e) => {
      for (let r = Math.max(e.offset, PIRQ_FIRST); r < Math.min(e.offset + e.size, PIRQ_FIRST + PIRQ_COUNT); r++) hooks.pirqChanged(r - PIRQ_FIRST, e.fn.getStored(r, 1));
    },
  };
}

/** Both, at the slots QEMU's pc machine uses (00:00.0 and 00:01.0). */
export function placedChipset(hooks: ChipsetHooks): PlacedEmulated[] {
  return [
    { name: 'i440fx', at: { kind: 'root', segment: 0, bus: 0, device: 0, fn: 0 }, spec: i440fxSpec(hooks), path: 'chipset (00:00.0 host bridge)' },
    { name: 'piix3', at: { kind: 'root', segment: 0, bus: 0, device: 1, fn: 0 }, spec: piix3Spec(hooks), path: 'chipset (00:01.0 ISA bridge)' },
  ];
}
