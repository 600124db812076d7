import { e820Code, type E820Entry } from '../hw/mem/e820.js';
import type { Grant } from '../hw/mem/protection.js';
import type { RamLayout, RamRange } from '../hw/mem/ram-layout.js';
import type { PciMachineConfig } from './pci-platform.js';

/**
 * Everything the vCPU thread needs to build a machine: plain data (structured-clonable), so it
 * crosses into the worker unchanged. The plan compiler produces it; tests and benchmarks write
 * it directly.
 */
export interface MachineConfig {
  /**
   * vCPUs (default 1): one thread each, the cores of one package (`cpuTopology`); fw_cfg's CPU
   * counts, the CMOS and CPUID say the same, and the MADT and SMBIOS must (compose makes them).
   */
  readonly cpus?: number;
  readonly ram: RamLayout;
  /** The BIOS image (multiple of 64 KiB), mapped read-only below 4 GiB with its last 128 KiB at 0xE0000. */
  readonly firmware: { readonly name: string; readonly image: Uint8Array };
  /**
   * Where the CPU starts: the x86 reset vector (default) or, for micro guests that need 32-bit
   * addresses, flat unpaged protected mode at a linear entry address.
   */
  readonly start?: { readonly mode: 'reset' } | { readonly mode: 'flat32'; readonly entry: number };
  /** A Linux boot-protocol image handed to the linuxboot_dma option ROM through fw_cfg. */
  readonly linuxBoot?: {
    readonly name: string;
    readonly kernel: Uint8Array;
    readonly initrd?: Uint8Array;
    readonly cmdline: string;
    readonly optionRom: Uint8Array;
  };
  /**
   * Extra fw_cfg files: the guest's ACPI tables as `linkAcpiTables` lays them out
   * (etc/acpi/tables, etc/acpi/rsdp, etc/table-loader), option ROMs as genroms/NAME.
   */
  readonly fwCfgFiles?: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array; readonly writable?: boolean }>;
  /** The guest's E820 (etc/e820, from the memory layer's plan); defaults to the RAM ranges. */
  readonly e820?: readonly E820Entry[];
  /** OpenFirmware device paths for the bootorder file; linuxboot is put first when present. */
  readonly bootOrder?: readonly string[];
  /** The PCI bus: plan section, host capture, ECAM base, ROM images (default: the chipset alone). */
  readonly pci?: PciMachineConfig;
  /**
   * Identity layouts: the RAM ranges at the host's own addresses (mapped from /dev/mem, not
   * anonymous memory); the rest of `ram` (private low memory) is the monitor's own.
   */
  readonly identityRam?: readonly RamRange[];
  /** Identity layouts: what the guest may map (the memory layer's protection grants); RAM and BARs are checked against it. */
  readonly protection?: readonly Grant[];
  /** Attach isa-debug-exit at 0xF4 (micro guests end their run through it). */
  readonly debugExit?: boolean;
  /** Base port of the ACPI PM1a block (the FADT must declare the same). */
  readonly acpiPmBase?: number;
  /** SLP_TYP of \_S5 in the guest's DSDT. */
  readonly s5SleepType?: number;
  /**
   * ACPI PCI hot-plug as the guest's DSDT declares it: the PCIHP and GPE0 blocks' ports, the
   * root slots that take a device live, and the SCI's IRQ (hw/chipset/pci-hotplug.ts).
   */
  readonly hotplug?: { readonly base: number; readonly gpeBase: number; readonly slots: readonly number[]; readonly sciIrq: number };
  /** GPE blocks of a host's FADT the guest keeps: served with no event raised (hw/chipset/quiet-gpe.ts). */
  readonly quietGpe?: ReadonlyArray<{ readonly base: number; readonly length: number }>;
  /**
   * Eventfds (process-wide fd numbers) that inject interrupts without a trip through the vCPU
   * thread: KVM_IRQFD on `gsi`, level-triggered with a resample fd when given. A `msi` entry
   * routes the GSI to that MSI message (KVM_SET_GSI_ROUTING) first.
   */
  readonly interruptFds?: ReadonlyArray<{ readonly gsi: number; readonly fd: number; readonly resampleFd?: number; readonly msi?: { readonly address: bigint; readonly data: number } }>;
  /** Guest writes to these ports signal the eventfd inside KVM, with no exit (KVM_IOEVENTFD). */
  readonly ioEventFds?: ReadonlyArray<{ readonly port: number; readonly length: 1 | 2 | 4; readonly fd: number; readonly datamatch?: number }>;
}

/** The E820 the guest gets when the plan gives none: its RAM ranges, nothing else. */
export function defaultE820(ram: RamLayout): E820Entry[] {
  return ram.ranges.map((r) => ({ start: r.start, end: r.end, type: 'usable' as const }));
}

/**
 * etc/e820 as QEMU writes it: packed {u64 address, u64 length, u32 type}. SeaBIOS takes only
 * RAM (1) and reserved (2) entries from it and drops the rest, so every non-RAM range (ACPI
 * data, NVS, hvmpt's `1:1`, unknown types) goes out as reserved: the guest keeps the hole
 * instead of losing it.
 */
export function encodeE820(entries: readonly E820Entry[]): Uint8Array {
  const buf = new Uint8Array(entries.length * 20);
  const v = new DataView(buf.buffer);
  entries.forEach((e, i) => {
    v.setBigUint64(i * 20, e.start, true);
    v.setBigUint64(i * 20 + 8, e.end - e.start, true);
    v.setUint32(i * 20 + 16, e820Code(e.type) === 1 ? 1 : 2, true);
  });
  return buf;
}
