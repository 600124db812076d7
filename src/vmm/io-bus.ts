import { allOnes, type AccessSize, type MmioHandler, type PortIoHandler } from '../hw/io.js';
import { HvmptError } from '../errors.js';
import { hex } from '../util/format.js';

/**
 * A guest write of `len` bytes at `view[at]` (little-endian), as the buses take it: 1, 2 or 4
 * bytes whole; 8 as two dwords, low half first; any other length byte by byte, up to 8. Both an
 * MMIO exit and a write KVM queued (src/vmm/coalesced.ts) carry their data this way.
 */
export function writeGuestBytes(bus: { write(address: number, size: AccessSize, value: number): void }, address: number, len: number, view: DataView, at: number): void {
  if (len === 1 || len === 2 || len === 4) {
    bus.write(address, len, len === 1 ? view.getUint8(at) : len === 2 ? view.getUint16(at, true) : view.getUint32(at, true));
    return;
  }
  const step: AccessSize = len === 8 ? 4 : 1;
  for (let o = 0; o < Math.min(len, 8); o += step) bus.write(address + o, step, step === 4 ? view.getUint32(at + o, true) : view.getUint8(at + o));
}

/** Ranges are named for their device, or `DEVICE BARn` for one of its BARs: a failed device fails them all. */
function ownedBy(range: string, device: string): boolean {
  return range === device || range.startsWith(`${device} `);
}

/** Two devices claimed the same port or address. */
export class IoConflictError extends HvmptError {}

/** A device that threw while handling an access: it is marked failed and the guest goes on. */
export interface DeviceFault {
  readonly device: string;
  readonly space: 'pio' | 'mmio';
  readonly address: number;
  readonly write: boolean;
  readonly message: string;
}

/** Accesses nobody claimed: reads see all ones, writes are dropped, and they are counted here. */
export interface Unclaimed {
  readonly space: 'pio' | 'mmio';
  readonly address: number;
  readonly size: AccessSize;
  readonly write: boolean;
  count: number;
}

const MAX_UNCLAIMED_KEYS = 4096;

/** Bookkeeping shared by both buses: unclaimed accesses and contained device faults. */
export class IoLedger {
  readonly unclaimed = new Map<string, Unclaimed>();
  /** Accesses not recorded individually once MAX_UNCLAIMED_KEYS distinct ones were seen. */
  unclaimedOverflow = 0;
  readonly faults: DeviceFault[] = [];
  onFault: (fault: DeviceFault) => void = () => {};
  private readonly buses: Array<{ markFailed(device: string): void }> = [];

  attach(bus: { markFailed(device: string): void }): void {
    this.buses.push(bus);
  }

  noteUnclaimed(space: 'pio' | 'mmio', address: number, size: AccessSize, write: boolean): void {
    const key = `${space}:${address}:${size}:${write ? 'w' : 'r'}`;
    const u = this.unclaimed.get(key);
    if (u !== undefined) u.count++;
    else if (this.unclaimed.size < MAX_UNCLAIMED_KEYS) this.unclaimed.set(key, { space, address, size, write, count: 1 });
    else this.unclaimedOverflow++;
  }

  /** A device threw: all its port and MMIO ranges on every bus fail together, since its state is no longer trustworthy. */
  noteFault(fault: DeviceFault): void {
    for (const bus of this.buses) bus.markFailed(fault.device);
    this.faults.push(fault);
    this.onFault(fault);
  }

  /** "pio 0x80 w1 x12" lines, most frequent first. */
  summary(limit = 50): string[] {
    const lines = [...this.unclaimed.values()]
      .sort((a, b) => b.count - a.count)
      .slice(0, limit)
      .map((u) => `${u.space} ${hex(u.address)} ${u.write ? 'w' : 'r'}${u.size} x${u.count}`);
    if (this.unclaimedOverflow > 0) lines.push(`(${this.unclaimedOverflow} more accesses at other addresses)`);
    return lines;
  }
}

interface PortEntry {
  readonly name: string;
  readonly first: number;
  readonly count: number;
  handler: PortIoHandler;
  failed: boolean;
}

/**
 * I/O port dispatch: a 64 Ki-entry table maps each port to its handler in one array load, the
 * cheapest lookup there is for the hot CF8/CFC path.
 */
export class PortBus {
  private readonly table = new Uint16Array(0x10000);
  private readonly entries: PortEntry[] = [];

  constructor(readonly ledger: IoLedger) {
    ledger.attach(this);
  }

  markFailed(device: string): void {
    for (const e of this.entries) if (ownedBy(e.name, device)) e.failed = true;
  }

  register(name: string, first: number, count: number, handler: PortIoHandler): void {
    if (first < 0 || count <= 0 || first + count > 0x10000) throw new IoConflictError(`bad port range ${hex(first)}+${count}`, { input: name });
    for (let p = first; p < first + count; p++) {
      const owner = this.table[p]!;
      if (owner !== 0) throw new IoConflictError(`port ${hex(p)} already belongs to ${this.entries[owner - 1]!.name}`, { input: name });
    }
    this.entries.push({ name, first, count, handler, failed: false });
    this.table.fill(this.entries.length, first, first + count);
  }

  /** Removes the ranges `name` registered (only the one starting at `first`, when given). */
  unregister(name: string, first?: number): void {
    this.entries.forEach((e, i) => {
      if (e.name !== name || (first !== undefined && e.first !== first)) return;
      for (let p = e.first; p < e.first + e.count; p++) if (this.table[p] === i + 1) this.table[p] = 0;
    });
  }

  owner(port: number): string | undefined {
    const i = this.table[port & 0xffff]!;
    return i === 0 ? undefined : this.entries[i - 1]!.name;
  }

  read(port: number, size: AccessSize): number {
    const i = this.table[port]!;
    if (i === 0) {
      this.ledger.noteUnclaimed('pio', port, size, false);
      return allOnes(size);
    }
    const e = this.entries[i - 1]!;
    if (e.failed) return allOnes(size);
    try {
      return e.handler.readPort(port, size);
    } catch (err) {
      this.fail(e, port, false, err);
      return allOnes(size);
    }
  }

  write(port: number, size: AccessSize, value: number): void {
    const i = this.table[port]!;
    if (i === 0) {
      this.ledger.noteUnclaimed('pio', port, size, true);
      return;
    }
    const e = this.entries[i - 1]!;
    if (e.failed) return;
    try {
      e.handler.writePort(port, size, value);
    } catch (err) {
      this.fail(e, port, true, err);
    }
  }

  private fail(e: PortEntry, port: number, write: boolean, err: unknown): void {
    this.ledger.noteFault({ device: e.name, space: 'pio', address: port, write, message: err instanceof Error ? err.message : String(err) });
  }
}

interface MmioEntry {
  readonly name: string;
  readonly base: number;
  readonly end: number;
  handler: MmioHandler;
  failed: boolean;
}

/**
 * MMIO dispatch over sorted, non-overlapping ranges: the last range hit is tried first (guests
 * hammer one device at a time), then a binary search.
 */
export class MmioBus {
  private entries: MmioEntry[] = [];
  private last: MmioEntry | undefined;

  constructor(readonly ledger: IoLedger) {
    ledger.attach(this);
  }

  markFailed(device: string): void {
    for (const e of this.entries) if (ownedBy(e.name, device)) e.failed = true;
  }

  register(name: string, base: number, size: number, handler: MmioHandler): void {
    const end = base + size;
    if (!(size > 0) || !Number.isSafeInteger(end)) throw new IoConflictError(`bad MMIO range ${hex(base)}+${hex(size)}`, { input: name });
    const clash = this.entries.find((e) => base < e.end && e.base < end);
    if (clash !== undefined) throw new IoConflictError(`MMIO ${hex(base)}-${hex(end - 1)} overlaps ${clash.name} at ${hex(clash.base)}`, { input: name });
    this.entries = [...this.entries, { name, base, end, handler, failed: false }].sort((a, b) => a.base - b.base);
  }

  /** Removes the range at `base` registered by `name` (a BAR that moved or was disabled). */
  unregister(name: string, base?: number): void {
    this.entries = this.entries.filter((e) => !(e.name === name && (base === undefined || e.base === base)));
    this.last = undefined;
  }

  ranges(): ReadonlyArray<{ readonly name: string; readonly base: number; readonly end: number }> {
    return this.entries;
  }

  private find(address: number): MmioEntry | undefined {
    const last = this.last;
    if (last !== undefined && address >= last.base && address < last.end) return last;
    let lo = 0;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.entries[mid]!;
      if (address < e.base) hi = mid - 1;
      else if (address >= e.end) lo = mid + 1;
      else {
        this.last = e;
        return e;
      }
    }
    return undefined;
  }

  read(address: number, size: AccessSize): number {
    const e = this.find(address);
    if (e === undefined) {
      this.ledger.noteUnclaimed('mmio', address, size, false);
      return allOnes(size);
    }
    if (e.failed) return allOnes(size);
    try {
      return e.handler.readMmio(address - e.base, size);
    } catch (err) {
      this.fail(e, address, false, err);
      return allOnes(size);
    }
  }

  write(address: number, size: AccessSize, value: number): void {
    const e = this.find(address);
    if (e === undefined) {
      this.ledger.noteUnclaimed('mmio', address, size, true);
      return;
    }
    if (e.failed) return;
    try {
      e.handler.writeMmio(address - e.base, size, value);
    } catch (err) {
      this.fail(e, address, true, err);
    }
  }

  private fail(e: MmioEntry, address: number, write: boolean, err: unknown): void {
    this.ledger.noteFault({ device: e.name, space: 'mmio', address, write, message: err instanceof Error ? err.message : String(err) });
  }
}
