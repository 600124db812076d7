import type { AccessSize } from '../io.js';
import type { PciFunction, RegisterDescriptor } from './function.js';
import { CAPABILITY_LIST, CONFIG_SIZE, EXT_CONFIG_SIZE, STATUS, STATUS_CAP_LIST } from './regs.js';

/** A capability found in a function's config space. */
export interface CapabilityInfo {
  readonly extended: boolean;
  readonly id: number;
  /** Extended capabilities carry a version in their header. */
  readonly version: number;
  readonly offset: number;
  /** Bytes that belong to it, from its ID's layout (clipped at the next capability). */
  readonly length: number;
  readonly name: string;
}

export type ChainProblemKind = 'loop' | 'into-header' | 'out-of-range' | 'too-many';

/** A malformed capability chain: where the walk stopped and why. */
export interface ChainProblem {
  readonly extended: boolean;
  readonly kind: ChainProblemKind;
  /** The offset of the capability whose `next` pointer is bad (or of the list head). */
  readonly at: number;
  readonly pointer: number;
  readonly message: string;
}

export interface CapabilityWalk {
  readonly caps: readonly CapabilityInfo[];
  readonly problems: readonly ChainProblem[];
}

// Standard capability IDs (PCI Code and ID Assignment).
export const CAP_PM = 0x01;
export const CAP_VPD = 0x03;
export const CAP_MSI = 0x05;
export const CAP_PCIX = 0x07;
export const CAP_HT = 0x08;
export const CAP_VENDOR = 0x09;
export const CAP_DEBUG_PORT = 0x0a;
export const CAP_SUBSYSTEM = 0x0d;
export const CAP_PCIE = 0x10;
export const CAP_MSIX = 0x11;
export const CAP_SATA = 0x12;
export const CAP_AF = 0x13;
export const CAP_EA = 0x14;

// Extended capability IDs.
export const ECAP_AER = 0x0001;
export const ECAP_VC = 0x0002;
export const ECAP_DSN = 0x0003;
export const ECAP_POWER_BUDGET = 0x0004;
export const ECAP_RCLINK = 0x0005;
export const ECAP_VC9 = 0x0009;
export const ECAP_VENDOR = 0x000b;
export const ECAP_ACS = 0x000d;
export const ECAP_ARI = 0x000e;
export const ECAP_ATS = 0x000f;
export const ECAP_SRIOV = 0x0010;
export const ECAP_MCAST = 0x0012;
export const ECAP_PRI = 0x0013;
export const ECAP_REBAR = 0x0015;
export const ECAP_DPA = 0x0016;
export const ECAP_TPH = 0x0017;
export const ECAP_LTR = 0x0018;
export const ECAP_SECPCIE = 0x0019;
export const ECAP_PASID = 0x001b;
export const ECAP_DPC = 0x001d;
export const ECAP_L1SS = 0x001e;
export const ECAP_PTM = 0x001f;
export const ECAP_DVSEC = 0x0023;
export const ECAP_DLF = 0x0025;
export const ECAP_PL16 = 0x0026;

/**
 * What hvmpt does with a capability it knows:
 * - `virtualize`: registers with guest-visible state are emulated (MSI, MSI-X, PM, PCIe);
 * - `pass`: read and written through, with its status bits handled as RW1C;
 * - `hide`: removed from the chain by default (the guest must not program it: SR-IOV, resizable BAR).
 * Anything not listed is "unknown" and follows the plan's policy.
 */
export type KnownHandling = 'virtualize' | 'pass' | 'hide';

interface KnownCap {
  readonly name: string;
  readonly handling: KnownHandling;
  /** Fixed length in bytes, or a function of the capability's own bytes. */
  readonly length: number | ((read: Reader, offset: number, headerType: number) => number);
}

type Reader = (offset: number, size: AccessSize) => number;

const STANDARD: ReadonlyMap<number, KnownCap> = new Map<number, KnownCap>([
  [CAP_PM, { name: 'Power Management', handling: 'virtualize', length: 8 }],
  [0x02, { name: 'AGP', handling: 'pass', length: 8 }],
  [CAP_VPD, { name: 'Vital Product Data', handling: 'pass', length: 8 }],
  [0x04, { name: 'Slot Identification', handling: 'pass', length: 4 }],
  [0x06, { name: 'CompactPCI hot-swap', handling: 'pass', length: 4 }],
  [0x0c, { name: 'PCI Hot-plug', handling: 'pass', length: 8 }],
  [CAP_MSI, { name: 'MSI', handling: 'virtualize', length: msiLength }],
  [CAP_PCIX, { name: 'PCI-X', handling: 'pass', length: (_r, _o, ht) => (ht === 1 ? 16 : 8) }],
  [CAP_HT, { name: 'HyperTransport', handling: 'pass', length: 4 }],
  [CAP_VENDOR, { name: 'Vendor Specific', handling: 'pass', length: (r, o) => Math.max(3, r(o + 2, 1)) }],
  [CAP_DEBUG_PORT, { name: 'Debug port', handling: 'pass', length: 4 }],
  [CAP_SUBSYSTEM, { name: 'Subsystem', handling: 'pass', length: 8 }],
  [CAP_PCIE, { name: 'Express', handling: 'virtualize', length: (r, o) => ((r(o + 2, 2) & 0xf) >= 2 ? 0x3c : 0x24) }],
  [CAP_MSIX, { name: 'MSI-X', handling: 'virtualize', length: 12 }],
  [CAP_SATA, { name: 'SATA HBA', handling: 'pass', length: 8 }],
  [CAP_AF, { name: 'PCI Advanced Features', handling: 'pass', length: 6 }],
  [CAP_EA, { name: 'Enhanced Allocation', handling: 'hide', length: 4 }],
]);

const EXTENDED: ReadonlyMap<number, KnownCap> = new Map<number, KnownCap>([
  [ECAP_AER, { name: 'Advanced Error Reporting', handling: 'pass', length: 0x48 }],
  [ECAP_VC, { name: 'Virtual Channel', handling: 'pass', length: 0x10 }],
  [ECAP_DSN, { name: 'Device Serial Number', handling: 'pass', length: 0x0c }],
  [ECAP_POWER_BUDGET, { name: 'Power Budgeting', handling: 'pass', length: 0x10 }],
  [ECAP_RCLINK, { name: 'Root Complex Link', handling: 'pass', length: 0x10 }],
  [ECAP_VC9, { name: 'Virtual Channel', handling: 'pass', length: 0x10 }],
  [ECAP_VENDOR, { name: 'Vendor Specific Information', handling: 'pass', length: (r, o) => Math.max(8, r(o + 4, 4) >>> 20) }],
  [ECAP_ACS, { name: 'Access Control Services', handling: 'pass', length: 8 }],
  [ECAP_ARI, { name: 'Alternative Routing-ID Interpretation', handling: 'pass', length: 8 }],
  [ECAP_ATS, { name: 'Address Translation Service', handling: 'pass', length: 8 }],
  [ECAP_SRIOV, { name: 'Single Root I/O Virtualization', handling: 'hide', length: 0x40 }],
  [ECAP_MCAST, { name: 'Multicast', handling: 'pass', length: 0x30 }],
  [ECAP_PRI, { name: 'Page Request Interface', handling: 'pass', length: 0x10 }],
  [ECAP_REBAR, { name: 'Physical Resizable BAR', handling: 'hide', length: (r, o) => 4 + 8 * Math.max(1, (r(o + 8, 4) >>> 5) & 7) }],
  [ECAP_DPA, { name: 'Dynamic Power Allocation', handling: 'pass', length: 0x10 }],
  [ECAP_TPH, { name: 'Transaction Processing Hints', handling: 'pass', length: 0x0c }],
  [ECAP_LTR, { name: 'Latency Tolerance Reporting', handling: 'pass', length: 8 }],
  [ECAP_SECPCIE, { name: 'Secondary PCI Express', handling: 'pass', length: 0x0c }],
  [ECAP_PASID, { name: 'Process Address Space ID', handling: 'pass', length: 8 }],
  [ECAP_DPC, { name: 'Downstream Port Containment', handling: 'pass', length: 0x18 }],
  [ECAP_L1SS, { name: 'L1 PM Substates', handling: 'pass', length: 0x10 }],
  [ECAP_PTM, { name: 'Precision Time Measurement', handling: 'pass', length: 0x0c }],
  [ECAP_DVSEC, { name: 'Designated Vendor-Specific', handling: 'pass', length: (r, o) => Math.max(0x0c, r(o + 4, 4) >>> 20) }],
  [ECAP_DLF, { name: 'Data Link Feature', handling: 'pass', length: 0x0c }],
  [ECAP_PL16, { name: 'Physical Layer 16.0 GT/s', handling: 'pass', length: 0x20 }],
]);

function msiLength(read: Reader, offset: number): number {
  const ctrl = read(offset + 2, 2);
  const is64 = (ctrl & 0x80) !== 0;
  const maskable = (ctrl & 0x100) !== 0;
  return (is64 ? 0x0e : 0x0a) + (maskable ? 0x0a : 0);
}

export function knownCapability(extended: boolean, id: number): { name: string; handling: KnownHandling } | undefined {
  const k = (extended ? EXTENDED : STANDARD).get(id);
  return k === undefined ? undefined : { name: k.name, handling: k.handling };
}

export function capabilityName(extended: boolean, id: number): string {
  return knownCapability(extended, id)?.name ?? `${extended ? 'Extended capability' : 'Capability'} 0x${id.toString(16).padStart(extended ? 4 : 2, '0')}`;
}

/** Standard capability names as a plan may write them, for both lists. */
export const CAPABILITY_NAMES: ReadonlyMap<string, { extended: boolean; id: number }> = new Map([
  ['pm', { extended: false, id: CAP_PM }],
  ['vpd', { extended: false, id: CAP_VPD }],
  ['msi', { extended: false, id: CAP_MSI }],
  ['pcix', { extended: false, id: CAP_PCIX }],
  ['vendor', { extended: false, id: CAP_VENDOR }],
  ['subsystem', { extended: false, id: CAP_SUBSYSTEM }],
  ['pcie', { extended: false, id: CAP_PCIE }],
  ['msix', { extended: false, id: CAP_MSIX }],
  ['sata', { extended: false, id: CAP_SATA }],
  ['af', { extended: false, id: CAP_AF }],
  ['ea', { extended: false, id: CAP_EA }],
  ['aer', { extended: true, id: ECAP_AER }],
  ['vc', { extended: true, id: ECAP_VC }],
  ['dsn', { extended: true, id: ECAP_DSN }],
  ['vsec', { extended: true, id: ECAP_VENDOR }],
  ['acs', { extended: true, id: ECAP_ACS }],
  ['ari', { extended: true, id: ECAP_ARI }],
  ['ats', { extended: true, id: ECAP_ATS }],
  ['sriov', { extended: true, id: ECAP_SRIOV }],
  ['pri', { extended: true, id: ECAP_PRI }],
  ['rebar', { extended: true, id: ECAP_REBAR }],
  ['ltr', { extended: true, id: ECAP_LTR }],
  ['secpcie', { extended: true, id: ECAP_SECPCIE }],
  ['pasid', { extended: true, id: ECAP_PASID }],
  ['dpc', { extended: true, id: ECAP_DPC }],
  ['l1ss', { extended: true, id: ECAP_L1SS }],
  ['ptm', { extended: true, id: ECAP_PTM }],
  ['dvsec', { extended: true, id: ECAP_DVSEC }],
]);

/** Where the list head is: 0x34, or 0x14 in a CardBus bridge's header. */
export function capabilityListOffset(headerType: number): number {
  return (headerType & 0x7f) === 2 ? 0x14 : CAPABILITY_LIST;
}

/** At most this many capabilities in one list: more means a loop the visited set somehow missed. */
const MAX_CAPS = 64;

/**
 * Walks the standard and extended capability lists. Loops, pointers into the header and
 * pointers past the config space end the walk with a problem; they are never followed.
 */
export function walkCapabilities(read: Reader, length: number, headerType: number): CapabilityWalk {
  const found: Array<{ extended: boolean; id: number; version: number; offset: number }> = [];
  const problems: ChainProblem[] = [];
  const problem = (extended: boolean, kind: ChainProblemKind, at: number, pointer: number, message: string): void => {
    problems.push({ extended, kind, at, pointer, message });
  };

  if ((read(STATUS, 2) & STATUS_CAP_LIST) !== 0) {
    const seen = new Set<number>();
    let at = capabilityListOffset(headerType);
    let ptr = read(at, 1) & 0xfc;
    while (ptr !== 0) {
      if (ptr < 0x40) {
        problem(false, 'into-header', at, ptr, `capability pointer 0x${ptr.toString(16)} points into the header`);
        break;
      }
      if (ptr + 2 > Math.min(length, CONFIG_SIZE)) {
        problem(false, 'out-of-range', at, ptr, `capability pointer 0x${ptr.toString(16)} is past the config space`);
        break;
      }
      if (seen.has(ptr)) {
        problem(false, 'loop', at, ptr, `capability list loops back to 0x${ptr.toString(16)}`);
        break;
      }
      if (seen.size >= MAX_CAPS) {
        problem(false, 'too-many', at, ptr, `more than ${MAX_CAPS} capabilities`);
        break;
      }
      seen.add(ptr);
      found.push({ extended: false, id: read(ptr, 1), version: 0, offset: ptr });
      at = ptr + 1;
      ptr = read(ptr + 1, 1) & 0xfc;
    }
  }

  // Only PCI Express and PCI-X 2.0 functions have extended space; elsewhere 0x100 and up is
  // undefined (often an alias of the first 256 bytes) and must not be read as capabilities.
  const express = found.some((c) => c.id === CAP_PCIE || c.id === CAP_PCIX);
  if (length > CONFIG_SIZE && express) {
    const seen = new Set<number>();
    let ptr = CONFIG_SIZE;
    let at = CONFIG_SIZE;
    while (ptr !== 0) {
      const header = read(ptr, 4);
      // No extended capabilities at all reads as 0 (or ones on a function that has no extended space).
      if (header === 0 || header === 0xffff_ffff) {
        if (ptr !== CONFIG_SIZE) problem(true, 'out-of-range', at, ptr, `extended capability at 0x${ptr.toString(16)} reads as 0x${header.toString(16)}`);
        break;
      }
      if (seen.has(ptr)) {
        problem(true, 'loop', at, ptr, `extended capability list loops back to 0x${ptr.toString(16)}`);
        break;
      }
      if (seen.size >= MAX_CAPS) {
        problem(true, 'too-many', at, ptr, `more than ${MAX_CAPS} extended capabilities`);
        break;
      }
      seen.add(ptr);
      found.push({ extended: true, id: header & 0xffff, version: (header >>> 16) & 0xf, offset: ptr });
      const next = (header >>> 20) & 0xffc;
      if (next !== 0 && next < CONFIG_SIZE) {
        problem(true, 'into-header', ptr, next, `extended capability at 0x${ptr.toString(16)} points to 0x${next.toString(16)}, below 0x100`);
        break;
      }
      if (next + 4 > length) {
        problem(true, 'out-of-range', ptr, next, `extended capability pointer 0x${next.toString(16)} is past the config space`);
        break;
      }
      at = ptr;
      ptr = next;
    }
  }

  const caps = found.map((c) => ({ ...c, length: capabilityLength(read, c, found, length, headerType), name: capabilityName(c.extended, c.id) }));
  return { caps, problems };
}

function capabilityLength(
  read: Reader,
  c: { extended: boolean; id: number; offset: number },
  all: ReadonlyArray<{ extended: boolean; offset: number }>,
  length: number,
  headerType: number,
): number {
  const end = c.extended ? Math.min(length, EXT_CONFIG_SIZE) : Math.min(length, CONFIG_SIZE);
  // The next capability of the same list by address bounds this one.
  let limit = end;
  for (const o of all) if (o.extended === c.extended && o.offset > c.offset && o.offset < limit) limit = o.offset;
  const k = (c.extended ? EXTENDED : STANDARD).get(c.id);
  const minimum = c.extended ? 4 : 2;
  const want = k === undefined ? limit - c.offset : typeof k.length === 'number' ? k.length : k.length(read, c.offset, headerType);
  return Math.max(minimum, Math.min(want, limit - c.offset));
}

// ---------------------------------------------------------------------------------------------
// Virtualization: register descriptors for the capabilities hvmpt emulates.

const R = (offset: number, size: AccessSize, emulated: number, writable: number, rw1c = 0, reset?: number): RegisterDescriptor =>
  reset === undefined ? { offset, size, emulated, writable, rw1c } : { offset, size, emulated, writable, rw1c, reset };

/**
 * Descriptors for one capability of a real function. The guest-visible state of MSI and
 * MSI-X is emulated (the monitor programs the host side); PM's power state is emulated so a
 * guest cannot power the host device down; in PCI Express, link disable/retrain and FLR are
 * blocked and slot/link control is read-only. Status bits are RW1C everywhere.
 */
export function capabilityDescriptors(cap: CapabilityInfo, read: Reader): RegisterDescriptor[] {
  const p = cap.offset;
  if (!cap.extended) {
    switch (cap.id) {
      case CAP_PM:
        // PMCSR: power state (1:0) emulated, reset to D0; PME_En passes; PME_Status is RW1C.
        return [R(p + 2, 2, 0, 0), R(p + 4, 2, 0x0003, 0x8103, 0x8000, 0), R(p + 6, 2, 0, 0)];
      case CAP_MSI: {
        const ctrl = read(p + 2, 2);
        const is64 = (ctrl & 0x80) !== 0;
        const maskable = (ctrl & 0x100) !== 0;
        const data = is64 ? p + 0x0c : p + 0x08;
        const out = [
          R(p + 2, 2, 0xffff, 0x0071, 0, ctrl & ~0x0071),
          R(p + 4, 4, 0xffff_ffff, 0xffff_fffc, 0, 0),
          R(data, 2, 0xffff, 0xffff, 0, 0),
        ];
        if (is64) out.push(R(p + 8, 4, 0xffff_ffff, 0xffff_ffff, 0, 0));
        if (maskable) out.push(R(data + 4, 4, 0xffff_ffff, 0xffff_ffff, 0, 0), R(data + 8, 4, 0, 0));
        return out;
      }
      case CAP_MSIX: {
        const ctrl = read(p + 2, 2);
        return [R(p + 2, 2, 0xffff, 0xc000, 0, ctrl & 0x07ff), R(p + 4, 4, 0, 0), R(p + 8, 4, 0, 0)];
      }
      case CAP_PCIE:
        return pcieDescriptors(p, cap.length);
      default:
        return [];
    }
  }
  switch (cap.id) {
    case ECAP_AER:
      // Uncorrectable status, correctable status, root error status: RW1C.
      return [R(p + 0x04, 4, 0, 0xffff_ffff, 0xffff_ffff), R(p + 0x10, 4, 0, 0xffff_ffff, 0xffff_ffff), ...(cap.length >= 0x34 ? [R(p + 0x30, 4, 0, 0x7f, 0x7f)] : [])];
    default:
      return [];
  }
}

function pcieDescriptors(p: number, length: number): RegisterDescriptor[] {
  const out: RegisterDescriptor[] = [
    R(p + 0x02, 2, 0, 0), // capabilities register
    R(p + 0x04, 4, 0, 0), // DevCap
    R(p + 0x08, 2, 0x8000, 0x7fff, 0, 0), // DevCtl: FLR (bit 15) blocked, reads 0
    R(p + 0x0a, 2, 0, 0x000f, 0x000f), // DevSta: error bits RW1C
    R(p + 0x0c, 4, 0, 0), // LnkCap
    R(p + 0x10, 2, 0x0030, 0x0fcb, 0, 0), // LnkCtl: link disable (4) and retrain (5) blocked
    R(p + 0x12, 2, 0, 0xc000, 0xc000), // LnkSta: bandwidth status bits RW1C
  ];
  if (length >= 0x24) {
    out.push(R(p + 0x14, 4, 0, 0), R(p + 0x18, 2, 0, 0), R(p + 0x1a, 2, 0, 0x011f, 0x011f)); // slot: read-only control
    out.push(R(p + 0x1c, 2, 0, 0), R(p + 0x1e, 2, 0, 0), R(p + 0x20, 4, 0, 0x0001_0000, 0x0001_0000)); // root
  }
  if (length >= 0x3c) {
    out.push(R(p + 0x24, 4, 0, 0), R(p + 0x2c, 4, 0, 0), R(p + 0x30, 2, 0, 0), R(p + 0x32, 2, 0, 0), R(p + 0x34, 4, 0, 0), R(p + 0x38, 4, 0, 0));
  }
  return out;
}

/**
 * The RW1C bits a captured device has in its standard places (Status, Secondary Status, PM,
 * PCI Express, AER): a replayed device clears them on a write of 1 as the real one would.
 */
export function standardRw1cMask(read: Reader, length: number, headerType: number): Uint8Array {
  const mask = new Uint8Array(length);
  const set = (offset: number, size: number, bits: number): void => {
    for (let j = 0; j < size; j++) if (offset + j < length) mask[offset + j]! |= (bits >>> (8 * j)) & 0xff;
  };
  set(STATUS, 2, 0xf900);
  if (headerType === 1) set(0x1e, 2, 0xf900);
  for (const cap of walkCapabilities(read, length, headerType).caps) {
    for (const d of capabilityDescriptors(cap, read)) if (d.rw1c) set(d.offset, d.size, d.rw1c);
  }
  return mask;
}

// ---------------------------------------------------------------------------------------------
// Hiding: drop capabilities from the chains and relink what remains.

/**
 * Removes `hidden` capabilities from the guest's view of `fn`: their bytes read as 0 and
 * ignore writes, the kept ones are relinked (the list head at 0x34 and every `next` pointer
 * become emulated), Status.CAP_LIST is cleared when no standard capability remains, and an
 * extended list whose head at 0x100 is hidden gets a null header pointing at the first kept one.
 */
export function hideCapabilities(fn: PciFunction, walk: CapabilityWalk, hidden: ReadonlySet<CapabilityInfo>): void {
  if (hidden.size === 0) return;
  for (const c of hidden) zeroRange(fn, c.offset, c.length);

  const std = walk.caps.filter((c) => !c.extended);
  if (std.some((c) => hidden.has(c))) {
    const kept = std.filter((c) => !hidden.has(c));
    fn.declare({ offset: capabilityListOffset(fn.getStored(0x0e, 1)), size: 1, emulated: 0xff, writable: 0, value: kept[0]?.offset ?? 0 });
    kept.forEach((c, i) => fn.declare({ offset: c.offset + 1, size: 1, emulated: 0xff, writable: 0, value: kept[i + 1]?.offset ?? 0 }));
    const status = fn.read(STATUS, 2);
    fn.declare({ offset: STATUS, size: 1, emulated: STATUS_CAP_LIST, writable: 0, value: kept.length > 0 ? status & 0xff : status & 0xff & ~STATUS_CAP_LIST });
  }

  const ext = walk.caps.filter((c) => c.extended);
  if (ext.some((c) => hidden.has(c))) {
    const kept = ext.filter((c) => !hidden.has(c));
    kept.forEach((c, i) => {
      const next = kept[i + 1]?.offset ?? 0;
      const header = fn.read(c.offset, 4);
      fn.declare({ offset: c.offset, size: 4, emulated: 0xfff0_0000, writable: 0, value: ((header & 0x000f_ffff) | (next << 20)) >>> 0 });
    });
    const head = ext[0];
    if (head !== undefined && head.offset === CONFIG_SIZE && hidden.has(head)) {
      fn.declare({ offset: CONFIG_SIZE, size: 4, emulated: 0xffff_ffff, writable: 0, value: ((kept[0]?.offset ?? 0) << 20) >>> 0 });
    }
  }
}

function zeroRange(fn: PciFunction, offset: number, length: number): void {
  for (let o = offset; o < offset + length; o++) fn.declare({ offset: o, size: 1, emulated: 0xff, writable: 0, value: 0 });
}
