import type { AccessSize } from '../io.js';
import { BarSet, checkBarSize, type BarLayout } from './bars.js';
import { walkCapabilities, type CapabilityWalk } from './capabilities.js';
import { PciError } from './errors.js';
import { PciFunction, type ConfigWriteListener, type FunctionKind } from './function.js';
import { declareHeader } from './header.js';
import {
  CAPABILITY_LIST,
  CLASS_DEVICE,
  CLASS_PROG,
  COMMAND,
  CONFIG_SIZE,
  DEVICE_ID,
  EXT_CONFIG_SIZE,
  HEADER_TYPE,
  HEADER_TYPE_BRIDGE,
  INTERRUPT_PIN,
  IO_BASE,
  IO_LIMIT,
  PREF_MEMORY_BASE,
  PREF_MEMORY_LIMIT,
  PREF_RANGE_TYPE_64,
  REVISION_ID,
  ROM_BAR_INDEX,
  STATUS,
  STATUS_CAP_LIST,
  SUBSYSTEM_ID,
  SUBSYSTEM_VENDOR_ID,
  VENDOR_ID,
  barCount,
  barOffset,
} from './regs.js';

/** A BAR an emulated device decodes. */
export interface BarSpec {
  /** 0-5 (a 64-bit BAR also takes index + 1). */
  readonly index: number;
  readonly kind: 'mem32' | 'mem64' | 'io';
  /** Bytes, a power of two (at least 16 for memory, 4 for I/O). */
  readonly size: bigint | number;
  readonly prefetchable?: boolean;
}

/**
 * A device register in the emulated device's own storage. `writable` bits take the guest's
 * value, `rw1c` bits (a subset) clear on a write of 1; the rest are read-only. `onWrite` runs
 * after every guest write that overlaps the register, once the write has landed: read the new
 * value with `fn.getStored`.
 */
export interface RegisterSpec {
  readonly offset: number;
  readonly size: AccessSize;
  readonly value?: number;
  readonly writable?: number;
  readonly rw1c?: number;
  /** Value after a reset; defaults to `value`. */
  readonly reset?: number;
  readonly onWrite?: ConfigWriteListener;
}

/**
 * A capability of an emulated device. Its header (ID and next pointer, or the extended
 * header) is written by the builder; `registers` are relative to the capability's offset.
 */
export interface CapabilitySpec {
  readonly id: number;
  readonly extended?: boolean;
  /** Extended capability version (default 1). */
  readonly version?: number;
  /** Where it sits; by default after the previous one (standard from 0x40, extended from 0x100). */
  readonly offset?: number;
  /** Bytes including the header. */
  readonly length: number;
  readonly registers?: readonly RegisterSpec[];
}

/**
 * An emulated (or fake) PCI function, declared as data: the monitor's chipset, plug-in
 * devices and plan-made placeholders all use this. The builder turns it into a PciFunction
 * whose storage is the device's register file.
 */
export interface EmulatedFunctionSpec {
  /** Stable name for reports and events. */
  readonly id: string;
  /** `fake` for plan-made placeholders with no behaviour; default `emulated`. */
  readonly kind?: Exclude<FunctionKind, 'real'>;
  readonly vendorId: number;
  readonly deviceId: number;
  /** Class code, 24 bits: class << 16 | subclass << 8 | programming interface. */
  readonly classCode: number;
  readonly revision?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** 0 (endpoint, default) or 1 (PCI-to-PCI bridge). */
  readonly headerType?: 0 | 1;
  /** INTx pin: 0 none, 1-4 = INTA#-INTD#. */
  readonly interruptPin?: 0 | 1 | 2 | 3 | 4;
  /** Read-only Status bits the device reports (66 MHz, fast back-to-back, DEVSEL timing). */
  readonly status?: number;
  /** Command at power-on and after reset (default 0: decode off); a host bridge may answer 0x0006. */
  readonly command?: number;
  /** Set the multi-function bit even if the composed slot has no other function yet. */
  readonly multifunction?: boolean;
  /** 4 KiB config space (PCI Express); default: when any capability is extended. */
  readonly extendedConfig?: boolean;
  readonly bars?: readonly BarSpec[];
  /** Expansion ROM size in bytes (a power of two, at least 2 KiB). */
  readonly romSize?: bigint | number;
  readonly capabilities?: readonly CapabilitySpec[];
  readonly registers?: readonly RegisterSpec[];
  /** Runs after every guest write to this function, once it has landed. */
  readonly onWrite?: ConfigWriteListener;
  /** Bridges only: the windows' widths (default: 16-bit I/O, 64-bit prefetchable). */
  readonly bridge?: { readonly io32?: boolean; readonly pref64?: boolean };
}

export interface EmulatedFunction {
  readonly fn: PciFunction;
  readonly bars: BarSet;
  readonly capabilities: CapabilityWalk;
}

function u(n: number, bits: number, what: string, id: string): number {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** bits) throw new PciError(`${what} ${n} does not fit in ${bits} bits`, { input: id });
  return n;
}

/** Builds a function from a spec. Throws PciError (naming the function) on an inconsistent spec. */
export function buildEmulatedFunction(spec: EmulatedFunctionSpec): EmulatedFunction {
  const id = spec.id;
  const headerType = spec.headerType ?? 0;
  const caps = spec.capabilities ?? [];
  const extended = spec.extendedConfig ?? caps.some((c) => c.extended === true);
  const fn = new PciFunction({ id, kind: spec.kind ?? 'emulated', length: extended ? EXT_CONFIG_SIZE : CONFIG_SIZE });

  fn.setStored(VENDOR_ID, 2, u(spec.vendorId, 16, 'vendor ID', id));
  fn.setStored(DEVICE_ID, 2, u(spec.deviceId, 16, 'device ID', id));
  fn.setStored(REVISION_ID, 1, u(spec.revision ?? 0, 8, 'revision', id));
  fn.setStored(CLASS_PROG, 1, u(spec.classCode, 24, 'class code', id) & 0xff);
  fn.setStored(CLASS_DEVICE, 2, spec.classCode >>> 8);
  fn.setStored(HEADER_TYPE, 1, headerType | (spec.multifunction === true ? 0x80 : 0));
  fn.setStored(COMMAND, 2, u(spec.command ?? 0, 16, 'command', id));
  fn.setStored(STATUS, 2, u(spec.status ?? 0, 16, 'status', id) & ~STATUS_CAP_LIST);
  fn.setStored(INTERRUPT_PIN, 1, spec.interruptPin ?? 0);
  if (headerType === 0) {
    fn.setStored(SUBSYSTEM_VENDOR_ID, 2, u(spec.subsystemVendorId ?? 0, 16, 'subsystem vendor ID', id));
    fn.setStored(SUBSYSTEM_ID, 2, u(spec.subsystemId ?? 0, 16, 'subsystem ID', id));
  }
  if (headerType === HEADER_TYPE_BRIDGE) {
    const io32 = spec.bridge?.io32 === true ? 1 : 0;
    const pref64 = spec.bridge?.pref64 === false ? 0 : PREF_RANGE_TYPE_64;
    fn.setStored(IO_BASE, 1, 0xf0 | io32);
    fn.setStored(IO_LIMIT, 1, io32);
    fn.setStored(PREF_MEMORY_BASE, 2, 0xfff0 | pref64);
    fn.setStored(PREF_MEMORY_LIMIT, 2, pref64);
    fn.setStored(0x20, 2, 0xfff0);
  }
  declareHeader(fn, headerType);
  // A model's Command is what it declares, at power-on and after every reset.
  fn.captureResetValues(COMMAND, 2);

  const bars = buildBars(fn, spec, headerType);
  layoutCapabilities(fn, caps);

  for (const r of spec.registers ?? []) {
    if (r.offset < 0x40) {
      throw new PciError(`register at 0x${r.offset.toString(16)}: device registers start at 0x40 (the header comes from the spec's fields)`, { input: id });
    }
    declareRegister(fn, r, 0);
  }
  if (spec.onWrite !== undefined) fn.watch(0, fn.length, spec.onWrite);
  const capabilities = walkCapabilities((o, s) => fn.read(o, s), fn.length, headerType);
  fn.capabilities = capabilities;
  return { fn, bars, capabilities };
}

function declareRegister(fn: PciFunction, r: RegisterSpec, base: number): void {
  const offset = base + r.offset;
  if (offset < 0 || offset + r.size > fn.length) {
    throw new PciError(`register at 0x${offset.toString(16)} (${r.size} bytes) is outside the ${fn.length}-byte config space`, { input: fn.id });
  }
  const value = r.value ?? 0;
  fn.declare({ offset, size: r.size, emulated: 0xffff_ffff, writable: r.writable ?? 0, rw1c: r.rw1c ?? 0, value, reset: r.reset ?? value });
  if (r.onWrite !== undefined) fn.watch(offset, r.size, r.onWrite);
}

function buildBars(fn: PciFunction, spec: EmulatedFunctionSpec, headerType: number): BarSet {
  const count = barCount(headerType);
  const used = new Set<number>();
  const layouts: BarLayout[] = [];
  for (const b of spec.bars ?? []) {
    const size = BigInt(b.size);
    const last = b.kind === 'mem64' ? b.index + 1 : b.index;
    if (!Number.isInteger(b.index) || b.index < 0 || last >= count) {
      throw new PciError(`BAR ${b.index} (${b.kind}) does not fit a header type ${headerType} function (${count} BAR registers)`, { input: fn.id });
    }
    if (used.has(b.index) || used.has(last)) throw new PciError(`BAR ${b.index} is declared twice (or overlaps a 64-bit BAR)`, { input: fn.id });
    used.add(b.index).add(last);
    const problem = checkBarSize(b.kind, size);
    if (problem !== undefined) throw new PciError(`BAR ${b.index}: ${problem}`, { input: fn.id });
    layouts.push({
      index: b.index,
      kind: b.kind,
      prefetchable: b.prefetchable === true,
      size,
      sizeSource: 'model',
      offset: barOffset(b.index, headerType),
    });
  }
  if (spec.romSize !== undefined) {
    const size = BigInt(spec.romSize);
    const problem = checkBarSize('rom', size);
    if (problem !== undefined) throw new PciError(`expansion ROM: ${problem}`, { input: fn.id });
    layouts.push({ index: ROM_BAR_INDEX, kind: 'rom', prefetchable: false, size, sizeSource: 'model', offset: barOffset(ROM_BAR_INDEX, headerType) });
  }
  return new BarSet(fn, headerType, layouts, new Map());
}

function layoutCapabilities(fn: PciFunction, caps: readonly CapabilitySpec[]): void {
  const placed: Array<{ spec: CapabilitySpec; offset: number }> = [];
  let nextStd = 0x40;
  let nextExt = CONFIG_SIZE;
  const taken: Array<[number, number]> = [];
  for (const c of caps) {
    const ext = c.extended === true;
    const minimum = ext ? 4 : 2;
    if (!Number.isInteger(c.length) || c.length < minimum) throw new PciError(`capability 0x${c.id.toString(16)}: length ${c.length} below its ${minimum}-byte header`, { input: fn.id });
    const offset = c.offset ?? (ext ? nextExt : nextStd);
    const [lo, hi] = ext ? [CONFIG_SIZE, fn.length] : [0x40, CONFIG_SIZE];
    if (offset % 4 !== 0 || offset < lo || offset + c.length > hi) {
      throw new PciError(`capability 0x${c.id.toString(16)} at 0x${offset.toString(16)} (${c.length} bytes) must be dword-aligned within 0x${lo.toString(16)}-0x${(hi - 1).toString(16)}`, { input: fn.id });
    }
    for (const [a, b] of taken) {
      if (offset < b && a < offset + c.length) throw new PciError(`capability 0x${c.id.toString(16)} at 0x${offset.toString(16)} overlaps another at 0x${a.toString(16)}`, { input: fn.id });
    }
    taken.push([offset, offset + c.length]);
    placed.push({ spec: c, offset });
    const end = (offset + c.length + 3) & ~3;
    if (ext) nextExt = Math.max(nextExt, end);
    else nextStd = Math.max(nextStd, end);
  }
  const std = placed.filter((p) => p.spec.extended !== true);
  const ext = placed.filter((p) => p.spec.extended === true);
  if (std.length > 0) {
    fn.declare({ offset: CAPABILITY_LIST, size: 1, emulated: 0xff, writable: 0, value: std[0]!.offset });
    fn.declare({ offset: STATUS, size: 2, emulated: 0xffff, writable: 0xf900, rw1c: 0xf900, value: fn.getStored(STATUS, 2) | STATUS_CAP_LIST });
  }
  std.forEach((p, i) => {
    fn.declare({ offset: p.offset, size: 2, emulated: 0xffff, writable: 0, value: (p.spec.id & 0xff) | ((std[i + 1]?.offset ?? 0) << 8) });
  });
  ext.forEach((p, i) => {
    const header = ((p.spec.id & 0xffff) | (((p.spec.version ?? 1) & 0xf) << 16) | ((ext[i + 1]?.offset ?? 0) << 20)) >>> 0;
    fn.declare({ offset: p.offset, size: 4, emulated: 0xffff_ffff, writable: 0, value: header });
  });
  if (ext.length > 0 && ext[0]!.offset !== CONFIG_SIZE) {
    // The extended list starts at 0x100: a null header there points at the first one.
    fn.declare({ offset: CONFIG_SIZE, size: 4, emulated: 0xffff_ffff, writable: 0, value: (ext[0]!.offset << 20) >>> 0 });
  }
  for (const p of placed) for (const r of p.spec.registers ?? []) declareRegister(fn, r, p.offset);
}

// ---------------------------------------------------------------------------------------------
// Standard capabilities an emulated device can declare.

/** MSI with `vectors` (1-32, a power of two) messages, 64-bit address and per-vector masking if asked. */
export function msiCapability(o: { vectors?: number; address64?: boolean; maskable?: boolean; onWrite?: ConfigWriteListener } = {}): CapabilitySpec {
  const vectors = o.vectors ?? 1;
  const mmc = Math.log2(vectors);
  if (!Number.isInteger(mmc) || mmc < 0 || mmc > 5) throw new PciError(`MSI vectors ${vectors}: must be 1, 2, 4, 8, 16 or 32`);
  const is64 = o.address64 !== false;
  const maskable = o.maskable === true;
  const data = is64 ? 0x0c : 0x08;
  const regs: RegisterSpec[] = [
    { offset: 2, size: 2, value: (mmc << 1) | (is64 ? 0x80 : 0) | (maskable ? 0x100 : 0), writable: 0x0071, ...(o.onWrite ? { onWrite: o.onWrite } : {}) },
    { offset: 4, size: 4, writable: 0xffff_fffc, ...(o.onWrite ? { onWrite: o.onWrite } : {}) },
    { offset: data, size: 2, writable: 0xffff, ...(o.onWrite ? { onWrite: o.onWrite } : {}) },
  ];
  if (is64) regs.push({ offset: 8, size: 4, writable: 0xffff_ffff, ...(o.onWrite ? { onWrite: o.onWrite } : {}) });
  if (maskable) {
    const used = vectors === 32 ? 0xffff_ffff : (1 << vectors) - 1;
    regs.push({ offset: data + 4, size: 4, writable: used, ...(o.onWrite ? { onWrite: o.onWrite } : {}) });
  }
  return { id: 0x05, length: maskable ? data + 12 : data + 2, registers: regs };
}

/** MSI-X with a table and PBA in the function's BARs. */
export function msixCapability(o: {
  tableSize: number;
  table: { bar: number; offset: number };
  pba: { bar: number; offset: number };
  onWrite?: ConfigWriteListener;
}): CapabilitySpec {
  if (!Number.isInteger(o.tableSize) || o.tableSize < 1 || o.tableSize > 2048) throw new PciError(`MSI-X table size ${o.tableSize}: must be 1-2048`);
  for (const [what, loc] of [['table', o.table], ['PBA', o.pba]] as const) {
    if (loc.bar < 0 || loc.bar > 5 || loc.offset % 8 !== 0) throw new PciError(`MSI-X ${what}: BAR ${loc.bar} offset 0x${loc.offset.toString(16)} (BAR 0-5, offset 8-byte aligned)`);
  }
  return {
    id: 0x11,
    length: 12,
    registers: [
      { offset: 2, size: 2, value: o.tableSize - 1, writable: 0xc000, ...(o.onWrite ? { onWrite: o.onWrite } : {}) },
      { offset: 4, size: 4, value: (o.table.offset | o.table.bar) >>> 0 },
      { offset: 8, size: 4, value: (o.pba.offset | o.pba.bar) >>> 0 },
    ],
  };
}

/** Power management, version 3, D0 and D3hot, no PME. */
export function pmCapability(o: { onWrite?: ConfigWriteListener } = {}): CapabilitySpec {
  return {
    id: 0x01,
    length: 8,
    registers: [
      { offset: 2, size: 2, value: 0x0003 },
      { offset: 4, size: 2, value: 0x0008, writable: 0x0003, ...(o.onWrite ? { onWrite: o.onWrite } : {}) },
    ],
  };
}

export type PcieDeviceType = 'endpoint' | 'legacy-endpoint' | 'root-port' | 'upstream' | 'downstream' | 'pcie-to-pci' | 'rc-integrated';

const PCIE_TYPE: Record<PcieDeviceType, number> = {
  endpoint: 0,
  'legacy-endpoint': 1,
  'root-port': 4,
  upstream: 5,
  downstream: 6,
  'pcie-to-pci': 7,
  'rc-integrated': 9,
};

/** A PCI Express capability (version 2) for a device of `type`, link x1 at 2.5 GT/s. */
export function pcieCapability(o: { type?: PcieDeviceType } = {}): CapabilitySpec {
  const type = PCIE_TYPE[o.type ?? 'endpoint'];
  const hasLink = type !== 9;
  return {
    id: 0x10,
    length: 0x3c,
    registers: [
      { offset: 0x02, size: 2, value: 0x0002 | (type << 4) },
      { offset: 0x04, size: 4, value: 0x0000_8000 }, // DevCap: role-based error reporting
      { offset: 0x08, size: 2, value: 0x2810, writable: 0x7fff }, // DevCtl: MPS 128, MRRS 512, relaxed ordering
      { offset: 0x0a, size: 2, writable: 0x000f, rw1c: 0x000f },
      { offset: 0x0c, size: 4, value: hasLink ? 0x0000_0011 : 0 }, // LnkCap: 2.5 GT/s x1
      { offset: 0x10, size: 2, writable: hasLink ? 0x0fcb : 0 },
      { offset: 0x12, size: 2, value: hasLink ? 0x0011 : 0, writable: 0xc000, rw1c: 0xc000 },
      { offset: 0x28, size: 2, writable: 0xffff }, // DevCtl2
      { offset: 0x2c, size: 4, value: hasLink ? 0x0000_0002 : 0 }, // LnkCap2: 2.5 GT/s
      { offset: 0x30, size: 2, value: hasLink ? 0x0001 : 0, writable: hasLink ? 0x000f : 0 },
    ],
  };
}

/** The default IDs of a fake PCI-to-PCI bridge: Red Hat's QEMU PCI-PCI bridge, which guests know. */
export const FAKE_BRIDGE_IDS = { vendorId: 0x1b36, deviceId: 0x0001 } as const;

/** A plan-made PCI-to-PCI bridge: standard type-1 header, 16-bit I/O and 64-bit prefetchable windows, no capabilities. */
export function fakeBridgeSpec(o: { id: string; vendorId?: number; deviceId?: number; subsystemVendorId?: number; subsystemId?: number }): EmulatedFunctionSpec {
  return {
    id: o.id,
    kind: 'fake',
    vendorId: o.vendorId ?? FAKE_BRIDGE_IDS.vendorId,
    deviceId: o.deviceId ?? FAKE_BRIDGE_IDS.deviceId,
    classCode: 0x060400,
    headerType: 1,
    bridge: { io32: false, pref64: true },
  };
}
