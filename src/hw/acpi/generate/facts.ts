import { HvmptError } from '../../../errors.js';
import type { DefinitionBlock } from '../tables/definition-block.js';
import type { StatementSpec } from '../world/spec.js';

/**
 * What the guest's ACPI tables describe: the machine the monitor emulates. Everything has a
 * default matching hvmpt's monitor (an i440FX/PIIX3-class PC: PM block at 0x600, SCI on IRQ 9,
 * reset through 0xCF9, IOAPIC at 0xFEC00000, COM1, the PIIX3 PIRQ router), so the monitor
 * passes what it decides at run time (vCPUs, ECAM base, the composed PCI bus and its windows)
 * and a plan can override the rest. See docs/acpi.md ("Generating a guest's tables").
 */
export interface GuestAcpiFacts {
  /** OEM identity written in every table's header (default HVMPT / HVMPT). */
  readonly oem?: OemFacts;
  /** vCPUs: one enabled Local APIC each, processor UIDs 0..n-1. */
  readonly cpus: number;
  /** Their APIC IDs (default 0..cpus-1). */
  readonly apicIds?: readonly number[];
  readonly localApicAddress?: number;
  readonly ioApic?: { readonly id?: number; readonly address?: number; readonly gsiBase?: number };
  /** The ACPI PM block: PM1a event (status, enable) at base+0, control at +4, PM timer at +8. */
  readonly pm?: { readonly base?: number; readonly sciIrq?: number; readonly s5SleepType?: number };
  /** The reset register (an I/O port and the value written), or false for none. */
  readonly reset?: { readonly port?: number; readonly value?: number } | false;
  /** The CMOS RTC (PNP0B00 at 0x70, IRQ 8) and its century register, or false for none. */
  readonly rtc?: { readonly century?: number } | false;
  /** An i8042 keyboard controller (PNP0303 at 0x60/0x64, IRQ 1) and its mouse port (PNP0F13, IRQ 12). */
  readonly i8042?: boolean;
  /** A legacy VGA device; when false the FADT says VGA is not present. */
  readonly vga?: boolean;
  /** COM1 (PNP0501), or false for none. */
  readonly com1?: { readonly port?: number; readonly irq?: number } | false;
  /** An HPET block, when the platform has one (the monitor has none). */
  readonly hpet?: { readonly address: bigint; readonly eventTimerBlockId?: number; readonly minimumTick?: number };
  /** The PCI Express ECAM window, written as MCFG; absent for CF8/CFC only. */
  readonly ecam?: { readonly base: bigint; readonly segment?: number; readonly startBus?: number; readonly endBus?: number };
  readonly pci: PciFacts;
  readonly interrupts?: InterruptFacts;
  /** SSDTs to add after the generated tables: built tables, encoded ones, or specs. */
  readonly ssdts?: readonly SsdtFact[];
  /**
   * ACPI PCI hot-plug on the root bus, QEMU's PIIX4 kind (hw/chipset/pci-hotplug.ts): the PCIHP
   * register block, the GPE0 block the FADT points at, and the root slots that take a device
   * live (each gets _EJ0; the GPE's _E01 notifies them).
   */
  readonly hotplug?: { readonly base?: number; readonly gpeBase?: number; readonly slots: readonly number[] };
  /** Where the tables go in guest memory, for the RSDP/RSDT/XSDT and FADT addresses. */
  readonly layout?: { readonly tablesAddress?: bigint; readonly rsdpAddress?: bigint };
}

export interface OemFacts {
  readonly oemId?: string;
  readonly oemTableId?: string;
  /** For the DSDT alone (default: oemTableId). Linux upgrades a table from an initrd only when signature, OEM ID and table ID match. */
  readonly dsdtTableId?: string;
  readonly oemRevision?: number;
  readonly creatorId?: string;
  readonly creatorRevision?: number;
}

export type SsdtFact =
  | DefinitionBlock
  | Uint8Array
  | { readonly kind: 'spec'; readonly oemTableId?: string; readonly body: readonly StatementSpec[]; readonly path?: string };

/** A window the host bridge decodes for its devices (inclusive bounds). */
export interface WindowFact {
  readonly base: bigint;
  readonly limit: bigint;
}

export interface PciFacts {
  readonly segment?: number;
  /** The buses behind the host bridge (default 0-255, or the ECAM's). */
  readonly busRange?: { readonly start: number; readonly end: number };
  /** The host bridge's windows: I/O (besides the legacy 0-0xCF7), 32-bit and 64-bit memory. */
  readonly windows?: { readonly io?: WindowFact; readonly mem32?: WindowFact; readonly mem64?: WindowFact };
  /** The functions on the root bus (with what is behind bridges), as the PCI core composed them. */
  readonly devices: readonly PciDeviceFact[];
  /**
   * The INTx pins in use at the root bus, after the bridge swizzle (the PCI core's intxRoutes:
   * rootDevice, rootPin): each becomes a _PRT entry.
   */
  readonly routes: readonly PciRouteFact[];
}

export interface PciDeviceFact {
  readonly device: number;
  readonly fn: number;
  /** host-bridge: 00:00.0 itself (described by \_SB.PCI0); isa-bridge: the PIIX3 (\_SB.PCI0.ISA, with the PIRQ registers). */
  readonly kind?: 'host-bridge' | 'isa-bridge' | 'bridge' | 'device';
  /** _SUN, the slot number an OS shows (default: the device number, for plan devices on the root bus). */
  readonly slot?: number | false;
  /** A name for the report (the plan's device name). */
  readonly name?: string;
  /** Behind a bridge: its functions (device, fn on its secondary bus). */
  readonly children?: readonly PciDeviceFact[];
}

export interface PciRouteFact {
  readonly device: number;
  /** 1 INTA … 4 INTD, as the PCI core's IntxPin. */
  readonly pin: 1 | 2 | 3 | 4;
}

export interface InterruptFacts {
  /**
   * The ISA IRQ each PIRQ line (A-D) is routed to: the GSI an APIC-mode _PRT gives, and what the
   * DSDT's _PIC programs into the PIIX3 when the OS picks the APIC model (default SeaBIOS's 10, 10, 11, 11).
   */
  readonly pirqIrqs?: readonly [number, number, number, number];
  /** The IRQs a link device offers in PIC mode (_PRS; default QEMU's 5, 10, 11). */
  readonly linkIrqs?: readonly number[];
}

/** Facts that cannot describe a machine; `where.at` is the facts path (`pci.routes[3].pin`). */
export class GuestFactsError extends HvmptError {
  constructor(message: string, at: string, input = 'guest ACPI facts') {
    super(message, { input, at });
  }
}

export interface ResolvedFacts {
  readonly oem: Required<OemFacts>;
  readonly cpus: number;
  readonly apicIds: readonly number[];
  readonly localApicAddress: number;
  readonly ioApic: { readonly id: number; readonly address: number; readonly gsiBase: number };
  readonly pm: { readonly base: number; readonly sciIrq: number; readonly s5SleepType: number };
  readonly reset: { readonly port: number; readonly value: number } | undefined;
  readonly rtc: { readonly century: number } | undefined;
  readonly i8042: boolean;
  readonly vga: boolean;
  readonly com1: { readonly port: number; readonly irq: number } | undefined;
  readonly hpet: { readonly address: bigint; readonly eventTimerBlockId: number; readonly minimumTick: number } | undefined;
  readonly ecam: { readonly base: bigint; readonly segment: number; readonly startBus: number; readonly endBus: number } | undefined;
  readonly pci: {
    readonly segment: number;
    readonly busRange: { readonly start: number; readonly end: number };
    readonly windows: { readonly io: WindowFact | undefined; readonly mem32: WindowFact; readonly mem64: WindowFact | undefined };
    readonly devices: readonly PciDeviceFact[];
    readonly routes: readonly PciRouteFact[];
    /** The ISA bridge's place on the root bus. */
    readonly isa: { readonly device: number; readonly fn: number };
  };
  readonly pirqIrqs: readonly [number, number, number, number];
  readonly linkIrqs: readonly number[];
  readonly ssdts: readonly SsdtFact[];
  readonly hotplug: { readonly base: number; readonly gpeBase: number; readonly slots: readonly number[] } | undefined;
  readonly tablesAddress: bigint;
  readonly rsdpAddress: bigint;
}

/** hvmpt's monitor: QEMU's PIIX4 PM base once tables come from fw_cfg (acpi-pm.ts), SCI on 9. */
export const DEFAULT_PM = { base: 0x600, sciIrq: 9, s5SleepType: 0 } as const;
/** QEMU's PIIX4 PCI hot-plug block and GPE0 block (hw/chipset/pci-hotplug.ts has the same). */
export const DEFAULT_HOTPLUG = { base: 0xae00, gpeBase: 0xafe0 } as const;
/** PIIX3's reset control register: SYS_RST | RST_CPU, a hard reset (reset-control.ts). */
export const DEFAULT_RESET = { port: 0xcf9, value: 0x06 } as const;
export const DEFAULT_IOAPIC = { id: 0, address: 0xfec0_0000, gsiBase: 0 } as const;
export const DEFAULT_LOCAL_APIC = 0xfee0_0000;
/** What SeaBIOS programs into PIIX3's PIRQ A-D route registers. */
export const DEFAULT_PIRQ_IRQS: readonly [number, number, number, number] = [10, 10, 11, 11];
export const DEFAULT_LINK_IRQS: readonly number[] = [5, 10, 11];
/** The 32-bit PCI hole SeaBIOS uses on i440FX (the PCI core's DEFAULT_WINDOWS). */
export const DEFAULT_MEM32: WindowFact = { base: 0xc000_0000n, limit: 0xfebf_ffffn };
export const DEFAULT_IO: WindowFact = { base: 0xc000n, limit: 0xffffn };
/** Below the BIOS F-segment; the RSDP goes in it, where an OS's legacy scan finds it. */
export const DEFAULT_TABLES_ADDRESS = 0x000e_0000n;
export const DEFAULT_RSDP_ADDRESS = 0x000f_0000n;

function check(cond: boolean, message: string, at: string): void {
  if (!cond) throw new GuestFactsError(message, at);
}

function byteInt(v: number, max: number, at: string): void {
  check(Number.isInteger(v) && v >= 0 && v <= max, `${v} is not an integer from 0 to 0x${max.toString(16)}`, at);
}

function oemText(v: string, len: number, at: string): void {
  check(v.length <= len && [...v].every((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) < 0x7f), `"${v}" is not at most ${len} printable ASCII characters`, at);
}

function checkDevices(list: readonly PciDeviceFact[], at: string): void {
  const seen = new Set<string>();
  list.forEach((d, i) => {
    const p = `${at}[${i}]`;
    byteInt(d.device, 31, `${p}.device`);
    byteInt(d.fn, 7, `${p}.fn`);
    const key = `${d.device}.${d.fn}`;
    check(!seen.has(key), `two functions at ${d.device.toString(16).padStart(2, '0')}.${d.fn}`, p);
    seen.add(key);
    if (d.slot !== undefined && d.slot !== false) byteInt(d.slot, 0xffff_ffff, `${p}.slot`);
    if (d.children !== undefined) checkDevices(d.children, `${p}.children`);
  });
}

/** Fills in the defaults and checks every value; errors name the facts path. */
export function resolveFacts(f: GuestAcpiFacts): ResolvedFacts {
  check(Number.isInteger(f.cpus) && f.cpus >= 1 && f.cpus <= 255, `${f.cpus} vCPUs: give 1 to 255 (xAPIC IDs)`, 'cpus');
  const apicIds = f.apicIds ?? Array.from({ length: f.cpus }, (_, i) => i);
  check(apicIds.length === f.cpus, `${apicIds.length} APIC IDs for ${f.cpus} vCPUs`, 'apicIds');
  apicIds.forEach((id, i) => byteInt(id, 0xfe, `apicIds[${i}]`));
  check(new Set(apicIds).size === apicIds.length, 'APIC IDs repeat', 'apicIds');
  const oem = {
    oemId: f.oem?.oemId ?? 'HVMPT',
    oemTableId: f.oem?.oemTableId ?? 'HVMPT',
    dsdtTableId: f.oem?.dsdtTableId ?? f.oem?.oemTableId ?? 'HVMPT',
    oemRevision: f.oem?.oemRevision ?? 1,
    creatorId: f.oem?.creatorId ?? 'HVMP',
    creatorRevision: f.oem?.creatorRevision ?? 1,
  };
  oemText(oem.oemId, 6, 'oem.oemId');
  oemText(oem.oemTableId, 8, 'oem.oemTableId');
  oemText(oem.dsdtTableId, 8, 'oem.dsdtTableId');
  oemText(oem.creatorId, 4, 'oem.creatorId');
  const ioApic = { ...DEFAULT_IOAPIC, ...f.ioApic };
  byteInt(ioApic.id, 0xff, 'ioApic.id');
  byteInt(ioApic.address, 0xffff_ffff, 'ioApic.address');
  const pm = { ...DEFAULT_PM, ...f.pm };
  byteInt(pm.base, 0xfff0, 'pm.base');
  byteInt(pm.sciIrq, 15, 'pm.sciIrq');
  byteInt(pm.s5SleepType, 7, 'pm.s5SleepType');
  const reset = f.reset === false ? undefined : { ...DEFAULT_RESET, ...f.reset };
  if (reset !== undefined) {
    byteInt(reset.port, 0xffff, 'reset.port');
    byteInt(reset.value, 0xff, 'reset.value');
  }
  const rtc = f.rtc === false ? undefined : { century: f.rtc?.century ?? 0x32 };
  if (rtc !== undefined) byteInt(rtc.century, 0x7f, 'rtc.century');
  const com1 = f.com1 === false ? undefined : { port: f.com1?.port ?? 0x3f8, irq: f.com1?.irq ?? 4 };
  if (com1 !== undefined) {
    byteInt(com1.port, 0xfff8, 'com1.port');
    byteInt(com1.irq, 15, 'com1.irq');
  }
  const hpet = f.hpet === undefined ? undefined : { address: f.hpet.address, eventTimerBlockId: f.hpet.eventTimerBlockId ?? 0x8086a201, minimumTick: f.hpet.minimumTick ?? 0x80 };
  const ecam = f.ecam === undefined ? undefined : { base: f.ecam.base, segment: f.ecam.segment ?? 0, startBus: f.ecam.startBus ?? 0, endBus: f.ecam.endBus ?? 255 };
  if (ecam !== undefined) {
    check(ecam.base % 0x10_0000n === 0n && ecam.base >= 0n, 'the ECAM base must be 1 MiB aligned', 'ecam.base');
    byteInt(ecam.startBus, 255, 'ecam.startBus');
    byteInt(ecam.endBus, 255, 'ecam.endBus');
    check(ecam.endBus >= ecam.startBus, 'endBus is below startBus', 'ecam.endBus');
  }
  const segment = f.pci.segment ?? ecam?.segment ?? 0;
  const busRange = f.pci.busRange ?? (ecam === undefined ? { start: 0, end: 255 } : { start: ecam.startBus, end: ecam.endBus });
  byteInt(busRange.start, 255, 'pci.busRange.start');
  byteInt(busRange.end, 255, 'pci.busRange.end');
  check(busRange.end >= busRange.start, 'end is below start', 'pci.busRange.end');
  const windows = { io: f.pci.windows?.io ?? DEFAULT_IO, mem32: f.pci.windows?.mem32 ?? DEFAULT_MEM32, mem64: f.pci.windows?.mem64 };
  const win = (w: WindowFact | undefined, max: bigint, at: string): void => {
    if (w === undefined) return;
    check(w.base <= w.limit, 'the window ends before it starts', at);
    check(w.limit <= max, `the window passes 0x${max.toString(16)}`, at);
  };
  win(windows.io, 0xffffn, 'pci.windows.io');
  win(windows.mem32, 0xffff_ffffn, 'pci.windows.mem32');
  win(windows.mem64, (1n << 64n) - 1n, 'pci.windows.mem64');
  checkDevices(f.pci.devices, 'pci.devices');
  const routes = f.pci.routes;
  routes.forEach((r, i) => {
    byteInt(r.device, 31, `pci.routes[${i}].device`);
    check([1, 2, 3, 4].includes(r.pin), `pin ${r.pin} is not 1-4 (INTA-INTD)`, `pci.routes[${i}].pin`);
  });
  const isaFact = f.pci.devices.find((d) => d.kind === 'isa-bridge');
  const pirqIrqs = f.interrupts?.pirqIrqs ?? DEFAULT_PIRQ_IRQS;
  check(pirqIrqs.length === 4, 'four IRQs, for PIRQ A-D', 'interrupts.pirqIrqs');
  pirqIrqs.forEach((irq, i) => check([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15].includes(irq), `IRQ ${irq} cannot take a PIRQ on PIIX3 (3-7, 9-12, 14, 15)`, `interrupts.pirqIrqs[${i}]`));
  const linkIrqs = f.interrupts?.linkIrqs ?? DEFAULT_LINK_IRQS;
  linkIrqs.forEach((irq, i) => check([3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15].includes(irq), `IRQ ${irq} cannot take a PIRQ on PIIX3`, `interrupts.linkIrqs[${i}]`));
  if (com1 !== undefined) pirqIrqs.forEach((irq, i) => check(irq !== com1.irq, `IRQ ${irq} is COM1's`, `interrupts.pirqIrqs[${i}]`));
  const hotplug = f.hotplug === undefined ? undefined : { base: f.hotplug.base ?? DEFAULT_HOTPLUG.base, gpeBase: f.hotplug.gpeBase ?? DEFAULT_HOTPLUG.gpeBase, slots: [...f.hotplug.slots].sort((a, b) => a - b) };
  if (hotplug !== undefined) {
    byteInt(hotplug.base, 0xffec, 'hotplug.base');
    byteInt(hotplug.gpeBase, 0xfffc, 'hotplug.gpeBase');
    hotplug.slots.forEach((s, i) => byteInt(s, 31, `hotplug.slots[${i}]`));
    check(new Set(hotplug.slots).size === hotplug.slots.length, 'slots repeat', 'hotplug.slots');
    hotplug.slots.forEach((s, i) => check(s !== 0 && s !== (isaFact?.device ?? 1), `slot ${s} holds the host bridge or the ISA bridge`, `hotplug.slots[${i}]`));
  }
  const tablesAddress = f.layout?.tablesAddress ?? DEFAULT_TABLES_ADDRESS;
  const rsdpAddress = f.layout?.rsdpAddress ?? DEFAULT_RSDP_ADDRESS;
  check(rsdpAddress % 16n === 0n, 'the RSDP must be 16-byte aligned', 'layout.rsdpAddress');
  check(tablesAddress % 64n === 0n && tablesAddress + 0x1_0000n <= 1n << 32n, 'tables go 64-byte aligned below 4 GiB', 'layout.tablesAddress');
  return {
    oem,
    cpus: f.cpus,
    apicIds,
    localApicAddress: f.localApicAddress ?? DEFAULT_LOCAL_APIC,
    ioApic,
    pm,
    reset,
    rtc,
    i8042: f.i8042 ?? true,
    vga: f.vga ?? false,
    com1,
    hpet,
    ecam,
    pci: { segment, busRange, windows, devices: f.pci.devices, routes, isa: isaFact === undefined ? { device: 1, fn: 0 } : { device: isaFact.device, fn: isaFact.fn } },
    pirqIrqs,
    linkIrqs,
    ssdts: f.ssdts ?? [],
    hotplug,
    tablesAddress,
    rsdpAddress,
  };
}

/** PIIX3's PIRQ for a root slot's pin: slot 1 INTA is PIRQB, as the monitor's PirqRouter.pirqOf and SeaBIOS have it. */
export function piixPirq(device: number, pin: 1 | 2 | 3 | 4): number {
  return (device - 1 + (pin - 1)) & 3;
}
