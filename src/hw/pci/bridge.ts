import type { PciFunction } from './function.js';
import {
  IO_BASE,
  IO_BASE_UPPER16,
  IO_LIMIT,
  IO_LIMIT_UPPER16,
  IO_RANGE_TYPE_32,
  IO_RANGE_TYPE_MASK,
  MEMORY_BASE,
  MEMORY_LIMIT,
  PREF_BASE_UPPER32,
  PREF_LIMIT_UPPER32,
  PREF_MEMORY_BASE,
  PREF_MEMORY_LIMIT,
  PREF_RANGE_TYPE_64,
  PREF_RANGE_TYPE_MASK,
} from './regs.js';

/** An address range, both ends inclusive (bridge windows are written as base and limit). */
export interface Window {
  readonly base: bigint;
  readonly limit: bigint;
}

/** The three forwarding windows of a PCI-to-PCI bridge; null where the window is closed (base above limit). */
export interface BridgeWindows {
  readonly io: Window | null;
  readonly mem: Window | null;
  readonly pref: Window | null;
  /** What the bridge implements: 32-bit I/O addressing, 64-bit prefetchable window. */
  readonly io32: boolean;
  readonly pref64: boolean;
}

/** Reads a bridge's windows from its (emulated) registers. */
export function bridgeWindows(fn: PciFunction): BridgeWindows {
  const ioBase = fn.getStored(IO_BASE, 1);
  const ioLimit = fn.getStored(IO_LIMIT, 1);
  const io32 = (ioBase & IO_RANGE_TYPE_MASK) === IO_RANGE_TYPE_32;
  let ioB = BigInt((ioBase & 0xf0) << 8);
  let ioL = BigInt(((ioLimit & 0xf0) << 8) | 0xfff);
  if (io32) {
    ioB |= BigInt(fn.getStored(IO_BASE_UPPER16, 2)) << 16n;
    ioL |= BigInt(fn.getStored(IO_LIMIT_UPPER16, 2)) << 16n;
  }
  const memB = BigInt((fn.getStored(MEMORY_BASE, 2) & 0xfff0) << 16 >>> 0);
  const memL = BigInt((((fn.getStored(MEMORY_LIMIT, 2) & 0xfff0) << 16) | 0xfffff) >>> 0);
  const prefBase = fn.getStored(PREF_MEMORY_BASE, 2);
  const pref64 = (prefBase & PREF_RANGE_TYPE_MASK) === PREF_RANGE_TYPE_64;
  let pB = BigInt(((prefBase & 0xfff0) << 16) >>> 0);
  let pL = BigInt((((fn.getStored(PREF_MEMORY_LIMIT, 2) & 0xfff0) << 16) | 0xfffff) >>> 0);
  if (pref64) {
    pB |= BigInt(fn.getStored(PREF_BASE_UPPER32, 4)) << 32n;
    pL |= BigInt(fn.getStored(PREF_LIMIT_UPPER32, 4)) << 32n;
  }
  return {
    io: ioB <= ioL ? { base: ioB, limit: ioL } : null,
    mem: memB <= memL ? { base: memB, limit: memL } : null,
    pref: pB <= pL ? { base: pB, limit: pL } : null,
    io32,
    pref64,
  };
}

/** Programs a bridge's windows device-side, as firmware does (null closes a window). */
export function setBridgeWindows(fn: PciFunction, w: { io: Window | null; mem: Window | null; pref: Window | null }): void {
  const cur = bridgeWindows(fn);
  const ioType = fn.getStored(IO_BASE, 1) & IO_RANGE_TYPE_MASK;
  const prefType = fn.getStored(PREF_MEMORY_BASE, 1) & PREF_RANGE_TYPE_MASK;
  if (w.io === null) {
    fn.setStored(IO_BASE, 1, 0xf0 | ioType);
    fn.setStored(IO_LIMIT, 1, ioType);
    if (cur.io32) fn.setStored(IO_BASE_UPPER16, 4, 0);
  } else {
    fn.setStored(IO_BASE, 1, (Number((w.io.base >> 8n) & 0xf0n)) | ioType);
    fn.setStored(IO_LIMIT, 1, (Number((w.io.limit >> 8n) & 0xf0n)) | ioType);
    if (cur.io32) {
      fn.setStored(IO_BASE_UPPER16, 2, Number((w.io.base >> 16n) & 0xffffn));
      fn.setStored(IO_LIMIT_UPPER16, 2, Number((w.io.limit >> 16n) & 0xffffn));
    }
  }
  if (w.mem === null) {
    fn.setStored(MEMORY_BASE, 2, 0xfff0);
    fn.setStored(MEMORY_LIMIT, 2, 0);
  } else {
    fn.setStored(MEMORY_BASE, 2, Number((w.mem.base >> 16n) & 0xfff0n));
    fn.setStored(MEMORY_LIMIT, 2, Number((w.mem.limit >> 16n) & 0xfff0n));
  }
  if (w.pref === null) {
    fn.setStored(PREF_MEMORY_BASE, 2, 0xfff0 | prefType);
    fn.setStored(PREF_MEMORY_LIMIT, 2, prefType);
    if (cur.pref64) {
      fn.setStored(PREF_BASE_UPPER32, 4, 0);
      fn.setStored(PREF_LIMIT_UPPER32, 4, 0);
    }
  } else {
    fn.setStored(PREF_MEMORY_BASE, 2, Number((w.pref.base >> 16n) & 0xfff0n) | prefType);
    fn.setStored(PREF_MEMORY_LIMIT, 2, Number((w.pref.limit >> 16n) & 0xfff0n) | prefType);
    if (cur.pref64) {
      fn.setStored(PREF_BASE_UPPER32, 4, Number((w.pref.base >> 32n) & 0xffff_ffffn));
      fn.setStored(PREF_LIMIT_UPPER32, 4, Number((w.pref.limit >> 32n) & 0xffff_ffffn));
    }
  }
}
