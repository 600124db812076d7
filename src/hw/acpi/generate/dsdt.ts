import * as b from '../aml/builder.js';
import type { Term } from '../aml/terms.js';
import { RegionSpace } from '../aml/terms.js';
import type { AddressSpaceResource, InterruptMode, Resource } from '../resources/types.js';
import { piixPirq, type PciDeviceFact, type ResolvedFacts, type WindowFact } from './facts.js';
import { pciIrqs } from './fixed.js';

/**
 * The guest's DSDT: \_PIC, \_S5, the vCPUs' processor devices, the host bridge \_SB.PCI0 with its
 * windows, _PRT and _OSC, the PIIX3 ISA bridge with its PIRQ route registers and legacy
 * devices (COM1, RTC, keyboard controller), the four PCI interrupt link devices, an object
 * per PCI function of the plan (_ADR, _SUN), and the motherboard resources Linux wants
 * reserved before it uses the ECAM window.
 *
 * Interrupts: hvmpt's monitor routes PCI INTx as PIIX3 does (a slot's pin to PIRQ A-D by the
 * swizzle, each PIRQ to the ISA IRQ its route register holds, which reaches both the 8259
 * and the IOAPIC pin of that number). In PIC mode the _PRT names the link devices, whose
 * _CRS/_SRS/_DIS read and write those route registers; in APIC mode it names GSIs, the IRQs
 * the facts route the PIRQs to, and \_PIC (1) writes that routing into the PIIX3 so it holds
 * whatever firmware left there.
 */

export const LINKS = ['LNKA', 'LNKB', 'LNKC', 'LNKD'] as const;
const PIRQ_FIELDS = ['PRQA', 'PRQB', 'PRQC', 'PRQD'] as const;
const ISA_PATH = '\\_SB.PCI0.ISA';

/** One _PRT entry as planned: a root slot's pin, its PIRQ, the GSI in APIC mode and the link in PIC mode. */
export interface PlannedRoute {
  readonly device: number;
  /** 0 INTA … 3 INTD, as _PRT writes it. */
  readonly pin: number;
  /** 0-3 for PIRQ A-D. */
  readonly pirq: number;
  readonly gsi: number;
  /** \_SB.LNKA … \_SB.LNKD. */
  readonly link: string;
}

/** The routing the DSDT's _PRT gives: one entry per root slot and pin in use, in slot order. */
export function plannedRoutes(f: ResolvedFacts): PlannedRoute[] {
  const seen = new Set<string>();
  const out: PlannedRoute[] = [];
  for (const r of f.pci.routes) {
    const key = `${r.device}/${r.pin}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pirq = piixPirq(r.device, r.pin);
    out.push({ device: r.device, pin: r.pin - 1, pirq, gsi: f.ioApic.gsiBase + f.pirqIrqs[pirq]!, link: `\\_SB_.${LINKS[pirq]}` });
  }
  return out.sort((a, b2) => a.device - b2.device || a.pin - b2.pin);
}

const PCI_LEVEL_LOW: InterruptMode = { edge: false, activeLow: true, shared: true, wake: false };

function space(width: 16 | 32 | 64, kind: AddressSpaceResource['space'], min: bigint, max: bigint): AddressSpaceResource {
  return {
    type: 'AddressSpace',
    width,
    space: kind,
    producer: true,
    subtractive: false,
    minFixed: true,
    maxFixed: true,
    granularity: 0n,
    min,
    max,
    translation: 0n,
    length: max - min + 1n,
  };
}

const IO_SPACE = { kind: 'io', ranges: 'entire', typeTranslation: false, sparse: false } as const;
const memSpace = (caching: 'cacheable' | 'noncacheable' | 'prefetchable') => ({ kind: 'memory', writable: true, caching, rangeType: 'memory', typeTranslation: false }) as const;

/** The host bridge's _CRS: its buses, the CF8 ports, legacy I/O, its I/O window, VGA memory, the 32-bit and 64-bit windows. */
export function hostBridgeResources(f: ResolvedFacts): Resource[] {
  const { busRange, windows } = f.pci;
  const out: Resource[] = [
    space(16, { kind: 'bus' }, BigInt(busRange.start), BigInt(busRange.end)),
    { type: 'Io', decode16: true, min: 0xcf8, max: 0xcf8, alignment: 1, length: 8 },
    space(16, IO_SPACE, 0n, 0xcf7n),
  ];
  const io: WindowFact | undefined = windows.io;
  if (io !== undefined && io.limit >= 0xd00n) out.push(space(16, IO_SPACE, io.base < 0xd00n ? 0xd00n : io.base, io.limit));
  out.push(space(32, memSpace('cacheable'), 0xa_0000n, 0xb_ffffn));
  out.push(space(32, memSpace('noncacheable'), windows.mem32.base, windows.mem32.limit));
  if (windows.mem64 !== undefined) out.push(space(64, memSpace('prefetchable'), windows.mem64.base, windows.mem64.limit));
  return out;
}

function prtPackage(routes: readonly PlannedRoute[], apic: boolean): Term {
  return b.pkg(...routes.map((r) => b.pkg(b.int(((r.device << 16) | 0xffff) >>> 0), r.pin, apic ? 0 : b.ref(LINKS[r.pirq]!), apic ? r.gsi : 0)));
}

/** The PCI Firmware Specification's _OSC UUID for PCI host bridges. */
const PCI_OSC_UUID = '33DB4D5B-1FF7-401C-9657-7441C03DD766';

/** ToUUID: the mixed-endian byte order ACPI uses for GUIDs. */
export function uuidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, '');
  const bytes = Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  return Uint8Array.from(order.map((i) => bytes[i]!));
}

/**
 * _OSC for the host bridge, as QEMU's q35 writes it: the OS gets PME, AER and the PCI Express
 * capability structure (no native hot plug: the monitor has none); an unknown UUID or revision
 * is reported in the first dword.
 */
function oscMethod(): Term {
  const cdw1 = b.ref('CDW1');
  const cdw3 = b.ref('CDW3');
  return b.method('_OSC', 4, [
    b.createDWordField(b.arg(3), 0, 'CDW1'),
    b.ifElse(
      b.lEqual(b.arg(0), b.buffer(uuidBytes(PCI_OSC_UUID))),
      [
        b.createDWordField(b.arg(3), 8, 'CDW3'),
        b.store(cdw3, b.local(0)),
        b.and(b.local(0), 0x1c, b.local(0)),
        b.ifElse(b.lNotEqual(b.arg(1), 1), [b.or(cdw1, 0x08, cdw1)]),
        b.ifElse(b.lNotEqual(cdw3, b.local(0)), [b.or(cdw1, 0x10, cdw1)]),
        b.store(b.local(0), cdw3),
      ],
      [b.or(cdw1, 0x04, cdw1)],
    ),
    b.ret(b.arg(3)),
  ]);
}

function linkDevice(f: ResolvedFacts, n: number): Term {
  const reg = b.ref(`${ISA_PATH}.${PIRQ_FIELDS[n]}`);
  const disabled = b.and(reg, 0x80);
  return b.device(LINKS[n]!, [
    b.name('_HID', b.eisaId('PNP0C0F')),
    b.name('_UID', n + 1),
    b.name('_PRS', b.resourceTemplate([{ type: 'Irq', interrupts: f.linkIrqs, mode: PCI_LEVEL_LOW }])),
    b.method('_STA', 0, [b.ifElse(disabled, [b.ret(0x09)]), b.ret(0x0b)]),
    // In APIC mode the _PRT names GSIs and _PIC has routed the PIRQs to them: the routing is
    // the platform's then, and Linux disabling every link it scans must not cut it off.
    b.method('_DIS', 0, [b.ifElse(b.lNot(b.ref('\\PICM')), [b.or(reg, 0x80, reg)])]),
    b.method('_CRS', 0, [
      b.name('BUF0', b.resourceTemplate([{ type: 'Irq', interrupts: [], mode: PCI_LEVEL_LOW }])),
      b.createWordField(b.ref('BUF0'), 1, 'IRQW'),
      b.ifElse(b.lNot(disabled), [b.shiftLeft(1, b.and(reg, 0x0f), b.ref('IRQW'))]),
      b.ret(b.ref('BUF0')),
    ]),
    b.method('_SRS', 1, [
      b.createWordField(b.arg(0), 1, 'IRQW'),
      { kind: 'FindSetRightBit', operand: b.ref('IRQW'), target: b.local(0) },
      b.ifElse(b.local(0), [b.subtract(b.local(0), 1, reg)], [b.store(0x80, reg)]),
    ]),
  ]);
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/** `S18` for 03.0: S and the devfn in hex, as QEMU names slots. */
export function slotName(device: number, fn: number): string {
  return `S${hex2((device << 3) | fn)}`;
}

function functionObject(d: PciDeviceFact, rootBus: boolean, ejectable = false): Term {
  const body: Term[] = [b.name('_ADR', ((d.device << 16) | d.fn) >>> 0)];
  const sun = d.slot ?? (rootBus ? d.device : false);
  if (sun !== false) body.push(b.name('_SUN', sun));
  if (ejectable) body.push(ejectMethod(d.device));
  for (const c of d.children ?? []) body.push(functionObject(c, false));
  return b.device(slotName(d.device, d.fn), body);
}

/** _EJ0 of a hot-plug slot: the slot's bit written to the PCIHP block's EJ register (QEMU's PCEJ). */
function ejectMethod(slot: number): Term {
  return b.method('_EJ0', 1, [b.call('PCEJ', b.ref('BSEL'), slot)]);
}

/**
 * ACPI PCI hot-plug as QEMU's PIIX4 DSDT has it (hw/i386/acpi-build.c, hw/acpi/pcihp.c), for
 * Linux's acpiphp: the PCIHP registers as fields, PCEJ (bus select, then the slot's bit to
 * EJ), an object with _ADR, _SUN and _EJ0 for each empty hot-plug slot, and PCNT, which \_GPE._E01
 * runs: Notify(slot, 1) (Device Check: scan it) for each UP bit, Notify(slot, 3) (Eject
 * Request: unbind, then _EJ0) for each DOWN bit. No slot has a _STA: Linux's acpiphp takes a
 * slot whose _STA says absent at boot for one that never holds a device, while without _STA it
 * reads the slot's vendor ID, which the monitor answers from the bus as composed now.
 */
function hotplugTerms(f: ResolvedFacts, occupied: ReadonlySet<number>): Term[] {
  const h = f.hotplug!;
  const dword = { access: b.FieldAccess.DWord, update: b.FieldUpdate.WriteAsZeros };
  const slotDevice = (s: number): string => slotName(s, 0);
  return [
    b.operationRegion('PCST', RegionSpace.SystemIO, h.base, 0x08),
    b.field('PCST', [['PCIU', 32], ['PCID', 32]], dword),
    b.operationRegion('SEJ_', RegionSpace.SystemIO, h.base + 0x08, 0x04),
    b.field('SEJ_', [['B0EJ', 32]], dword),
    b.operationRegion('BNMR', RegionSpace.SystemIO, h.base + 0x10, 0x04),
    b.field('BNMR', [['BNUM', 32]], dword),
    b.mutex('BLCK', 0),
    b.name('BSEL', 0),
    b.method('PCEJ', 2, [
      { kind: 'Acquire', mutex: b.ref('BLCK'), timeout: 0xffff },
      b.store(b.arg(0), b.ref('BNUM')),
      b.shiftLeft(1, b.arg(1), b.ref('B0EJ')),
      { kind: 'Release', operand: b.ref('BLCK') },
      b.ret(0),
    ]),
    ...h.slots.filter((s) => !occupied.has(s)).map((s) => b.device(slotDevice(s), [b.name('_ADR', (s << 16) >>> 0), b.name('_SUN', s), ejectMethod(s)])),
    b.method('DVNT', 2, h.slots.map((s) => b.ifElse(b.and(b.arg(0), b.int((1 << s) >>> 0)), [b.notify(b.ref(slotDevice(s)), b.arg(1))]))),
    b.method('PCNT', 0, [b.store(0, b.ref('BNUM')), b.call('DVNT', b.ref('PCIU'), 1), b.call('DVNT', b.ref('PCID'), 3)]),
  ];
}

/** \_GPE._E01, the PCI hot-plug event: PCNT under the hot-plug lock. */
function hotplugGpe(): Term {
  return b.scope('\\_GPE', [
    b.method('_E01', 0, [
      { kind: 'Acquire', mutex: b.ref('\\_SB.PCI0.BLCK'), timeout: 0xffff },
      b.call('\\_SB.PCI0.PCNT'),
      { kind: 'Release', operand: b.ref('\\_SB.PCI0.BLCK') },
    ]),
  ]);
}

function isaDevices(f: ResolvedFacts): Term[] {
  const out: Term[] = [];
  if (f.com1 !== undefined) {
    out.push(
      b.device('COM1', [
        b.name('_HID', b.eisaId('PNP0501')),
        b.name('_UID', 1),
        b.name('_CRS', b.resourceTemplate([{ type: 'Io', decode16: true, min: f.com1.port, max: f.com1.port, alignment: 0, length: 8 }, { type: 'Irq', interrupts: [f.com1.irq] }])),
      ]),
    );
  }
  if (f.rtc !== undefined) {
    out.push(b.device('RTC', [b.name('_HID', b.eisaId('PNP0B00')), b.name('_CRS', b.resourceTemplate([{ type: 'Io', decode16: true, min: 0x70, max: 0x70, alignment: 0, length: 2 }, { type: 'Irq', interrupts: [8] }]))]));
  }
  if (f.i8042) {
    out.push(
      b.device('KBD', [
        b.name('_HID', b.eisaId('PNP0303')),
        b.name('_CRS', b.resourceTemplate([{ type: 'Io', decode16: true, min: 0x60, max: 0x60, alignment: 0, length: 1 }, { type: 'Io', decode16: true, min: 0x64, max: 0x64, alignment: 0, length: 1 }, { type: 'Irq', interrupts: [1] }])),
      ]),
      // The i8042's auxiliary (PS/2 mouse) port: without it Linux's PNP probe of the i8042
      // warns that the AUX port is disabled.
      b.device('MOU', [b.name('_HID', b.eisaId('PNP0F13')), b.name('_CRS', b.resourceTemplate([{ type: 'Irq', interrupts: [12] }]))]),
    );
  }
  return out;
}

/**
 * Motherboard resources (PNP0C02) holding the ECAM window: Linux uses MMCONFIG only when the
 * window is reserved there (or in the E820). The PM block needs no entry: the FADT reserves it.
 */
function motherboardResources(f: ResolvedFacts): Term[] {
  const e = f.ecam;
  if (e === undefined) return [];
  const size = BigInt(e.endBus - e.startBus + 1) << 20n;
  const base = e.base + (BigInt(e.startBus) << 20n);
  const window: Resource =
    base + size <= 1n << 32n
      ? { type: 'FixedMemory32', writable: false, base: Number(base), length: Number(size) }
      : { ...space(64, memSpace('noncacheable'), base, base + size - 1n), producer: false };
  return [b.device('MRES', [b.name('_HID', b.eisaId('PNP0C02')), b.name('_UID', 1), b.name('_CRS', b.resourceTemplate([window]))])];
}

export function buildDsdtTerms(f: ResolvedFacts): Term[] {
  const routes = plannedRoutes(f);
  const isa = f.pci.isa;
  const isaReg = (n: number): Term => b.ref(`${ISA_PATH}.${PIRQ_FIELDS[n]}`);
  const pciFunctions = f.pci.devices.filter((d) => d.kind !== 'host-bridge' && d.kind !== 'isa-bridge');
  const hotSlots = new Set(f.hotplug?.slots ?? []);
  const pci0: Term[] = [
    b.name('_HID', b.eisaId('PNP0A08')),
    b.name('_CID', b.eisaId('PNP0A03')),
    b.name('_SEG', f.pci.segment),
    b.name('_BBN', f.pci.busRange.start),
    b.name('_UID', 0),
    b.name('_CRS', b.resourceTemplate(hostBridgeResources(f))),
    oscMethod(),
    b.name('PRTA', prtPackage(routes, true)),
    b.name('PRTP', prtPackage(routes, false)),
    b.method('_PRT', 0, [b.ifElse(b.ref('\\PICM'), [b.ret(b.ref('PRTA'))], [b.ret(b.ref('PRTP'))])]),
    b.device('ISA', [
      b.name('_ADR', ((isa.device << 16) | isa.fn) >>> 0),
      b.operationRegion('PIRQ', RegionSpace.PCI_Config, 0x60, 4),
      b.field('PIRQ', PIRQ_FIELDS.map((n) => [n, 8] as const), { access: b.FieldAccess.Byte }),
      ...isaDevices(f),
    ]),
    ...pciFunctions.map((d) => functionObject(d, true, hotSlots.has(d.device) && d.fn === 0)),
    ...(f.hotplug === undefined ? [] : hotplugTerms(f, new Set(pciFunctions.map((d) => d.device)))),
  ];
  const sb: Term[] = [
    ...f.apicIds.map((_, i) => b.device(`C${i.toString(16).toUpperCase().padStart(3, '0')}`, [b.name('_HID', 'ACPI0007'), b.name('_UID', i)])),
    b.device('PCI0', pci0),
    ...LINKS.map((_, n) => linkDevice(f, n)),
    ...motherboardResources(f),
  ];
  if (f.hpet !== undefined) {
    sb.push(
      b.device('HPET', [
        b.name('_HID', b.eisaId('PNP0103')),
        b.name('_UID', 0),
        b.name('_CRS', b.resourceTemplate([{ type: 'FixedMemory32', writable: false, base: Number(f.hpet.address), length: 0x400 }])),
      ]),
    );
  }
  return [
    b.name('PICM', 0),
    // In APIC mode the _PRT names GSIs, which are the IRQs the PIRQs are routed to: make the
    // PIIX3 route them so whatever firmware left there.
    b.method('_PIC', 1, [b.store(b.arg(0), b.ref('PICM')), b.ifElse(b.arg(0), f.pirqIrqs.map((irq, n) => b.store(irq, isaReg(n))))]),
    b.name('_S5', b.pkg(f.pm.s5SleepType, f.pm.s5SleepType, 0, 0)),
    b.scope('\\_SB', sb),
    ...(f.hotplug === undefined ? [] : [hotplugGpe()]),
  ];
}

/** The IRQs (ISA) the PCI links may hold, for the report. */
export { pciIrqs };
