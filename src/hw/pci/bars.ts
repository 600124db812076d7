import type { Bdf } from './address.js';
import { PciError } from './errors.js';
import type { PciFunction } from './function.js';
import {
  BAR_IO_MASK,
  BAR_MEM_MASK,
  BAR_MEM_PREFETCH,
  BAR_MEM_TYPE_64,
  BAR_MEM_TYPE_MASK,
  BAR_SPACE_IO,
  CMD_IO,
  CMD_MEMORY,
  COMMAND,
  ROM_ADDRESS_MASK,
  ROM_BAR_INDEX,
  ROM_ENABLE,
  barCount,
  barOffset,
} from './regs.js';

export type BarKind = 'mem32' | 'mem64' | 'io' | 'rom';

/** Where a BAR's size came from; `unknown` means the register is fixed at its captured value. */
export type BarSizeSource = 'model' | 'backend' | 'plan' | 'alignment' | 'unknown';

/** One implemented BAR of a function. A 64-bit BAR takes registers `index` and `index + 1`. */
export interface BarLayout {
  /** 0-5, or 6 for the expansion ROM. */
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  /** Bytes decoded, a power of two; undefined when nobody knows (a hex dump with no sizes). */
  readonly size: bigint | undefined;
  readonly sizeSource: BarSizeSource;
  /** Config offset of the BAR register (the low half of a 64-bit BAR). */
  readonly offset: number;
}

export interface BarMapping {
  readonly address: bigint;
  readonly size: bigint;
}

/**
 * An update-mapping event: the effective decoded mapping of one BAR changed. `old` is what
 * the monitor must unmap (null when nothing was mapped), `new` what it must map (null when
 * decode is now off). Emitted exactly when the pair differs: an address written while decode
 * is on, Command IO/MEM toggled, or the ROM enable bit toggled.
 */
export interface BarMappingEvent {
  readonly fn: PciFunction;
  /** The function's address when the event was emitted. */
  readonly bdf: Bdf;
  readonly bar: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  readonly old: BarMapping | null;
  readonly new: BarMapping | null;
}

const MIN_SIZE: Record<BarKind, bigint> = { io: 4n, mem32: 16n, mem64: 16n, rom: 2048n };
const MAX_SIZE: Record<BarKind, bigint> = { io: 1n << 16n, mem32: 1n << 31n, mem64: 1n << 63n, rom: 1n << 31n };

/** Checks a BAR size against what its kind can encode; returns a message or undefined. */
export function checkBarSize(kind: BarKind, size: bigint): string | undefined {
  if (size <= 0n || (size & (size - 1n)) !== 0n) return `size ${size} is not a power of two`;
  if (size < MIN_SIZE[kind]) return `size ${size} is below the ${MIN_SIZE[kind]} bytes a ${kind} BAR decodes at least`;
  if (size > MAX_SIZE[kind]) return `size 0x${size.toString(16)} is more than a ${kind} BAR can decode`;
  return undefined;
}

/** What a capture says about one BAR register: the flag bits and the address it held. */
export interface CapturedBar {
  readonly index: number;
  readonly kind: BarKind;
  readonly prefetchable: boolean;
  /** The low flag bits as captured (I/O bit, memory type, prefetchable). */
  readonly flags: number;
  readonly address: bigint;
}

/**
 * Reads the BAR registers of a captured header. A register of 0 is taken as unimplemented
 * (unless `known` says the backend has a size for it, in which case it is a 32-bit memory BAR
 * that was never assigned).
 */
export function decodeCapturedBars(
  read32: (offset: number) => number,
  headerType: number,
  known: (index: number) => boolean,
): CapturedBar[] {
  const out: CapturedBar[] = [];
  const count = barCount(headerType);
  for (let i = 0; i < count; i++) {
    const off = barOffset(i, headerType);
    const v = read32(off);
    if ((v === 0 && !known(i)) || v === 0xffff_ffff) continue;
    if (v & BAR_SPACE_IO) {
      out.push({ index: i, kind: 'io', prefetchable: false, flags: v & 0x3, address: BigInt((v & BAR_IO_MASK) >>> 0) });
      continue;
    }
    const prefetchable = (v & BAR_MEM_PREFETCH) !== 0;
    if ((v & BAR_MEM_TYPE_MASK) === BAR_MEM_TYPE_64 && i + 1 < count) {
      const hi = read32(off + 4);
      out.push({
        index: i,
        kind: 'mem64',
        prefetchable,
        flags: v & 0xf,
        address: (BigInt(hi >>> 0) << 32n) | BigInt((v & BAR_MEM_MASK) >>> 0),
      });
      i++;
      continue;
    }
    out.push({ index: i, kind: 'mem32', prefetchable, flags: v & 0xf & ~BAR_MEM_TYPE_64, address: BigInt((v & BAR_MEM_MASK) >>> 0) });
  }
  const romOff = barOffset(ROM_BAR_INDEX, headerType);
  if (headerType <= 1) {
    const rom = read32(romOff);
    const addr = rom & ROM_ADDRESS_MASK;
    if ((addr !== 0 || known(ROM_BAR_INDEX)) && rom !== 0xffff_ffff) {
      out.push({ index: ROM_BAR_INDEX, kind: 'rom', prefetchable: false, flags: rom & ROM_ENABLE, address: BigInt(addr >>> 0) });
    }
  }
  return out;
}

/** The largest power of two dividing the address: an upper bound on the size, used only when a plan opts in. */
export function alignmentOf(address: bigint): bigint | undefined {
  if (address === 0n) return undefined;
  return address & -address;
}

function low32(v: bigint): number {
  return Number(v & 0xffff_ffffn) >>> 0;
}

/**
 * The BARs of one function: their registers' masks (which is all the sizing protocol needs:
 * writing ones reads back the size mask), and the update-mapping events when their effective
 * decoded mapping changes.
 */
export class BarSet {
  readonly layouts: readonly BarLayout[];
  private readonly fn: PciFunction;
  private readonly current: (BarMapping | null)[];
  /**
   * What the mappings were last worked out from: Command's decode bits, then each BAR
   * register's dwords. A Command write that changes no decode bit (a driver masking INTx, on
   * every interrupt) then costs a few compares, not the BigInt work of every BAR.
   */
  private readonly inputs: Uint32Array;

  /**
   * Declares the BAR registers on `fn` and starts watching Command and the BAR registers.
   * `initial` gives the register values to start from (the capture's, or a model's flags).
   */
  constructor(fn: PciFunction, headerType: number, layouts: readonly BarLayout[], initial: ReadonlyMap<number, number>) {
    this.fn = fn;
    this.layouts = layouts;
    const count = barCount(headerType);
    // Every BAR register is emulated: unimplemented ones keep their captured value (0 for a
    // model) and ignore writes, so sizing them reads back no size.
    const offsets = Array.from({ length: count }, (_, i) => barOffset(i, headerType));
    if (headerType <= 1) offsets.push(barOffset(ROM_BAR_INDEX, headerType));
    for (const offset of offsets) {
      fn.declare({ offset, size: 4, emulated: 0xffff_ffff, writable: 0, value: initial.get(offset) ?? 0, reset: 0 });
    }
    for (const b of layouts) declareBar(fn, b, initial);
    this.inputs = new Uint32Array(1 + layouts.reduce((n, b) => n + dwordsOf(b), 0));
    this.inputsChanged();
    this.current = layouts.map((b) => this.effective(b));
    fn.bars = this;
    fn.watch(COMMAND, 2, () => this.update());
    for (const b of layouts) fn.watch(b.offset, b.kind === 'mem64' ? 8 : 4, () => this.update());
  }

  layout(index: number): BarLayout | undefined {
    return this.layouts.find((b) => b.index === index);
  }

  /** The effective mapping of each BAR now, in layout order. */
  mappings(): ReadonlyArray<{ layout: BarLayout; mapping: BarMapping | null }> {
    return this.layouts.map((layout, i) => ({ layout, mapping: this.current[i] ?? null }));
  }

  /** The address programmed in a BAR's register(s), decoded or not. */
  address(b: BarLayout): bigint {
    const lo = this.fn.getStored(b.offset, 4);
    if (b.kind === 'io') return BigInt((lo & BAR_IO_MASK) >>> 0);
    if (b.kind === 'rom') return BigInt((lo & ROM_ADDRESS_MASK) >>> 0);
    const base = BigInt((lo & BAR_MEM_MASK) >>> 0);
    return b.kind === 'mem64' ? (BigInt(this.fn.getStored(b.offset + 4, 4)) << 32n) | base : base;
  }

  /** Programs a BAR's address as firmware would (device side: no events until decode is re-evaluated). */
  setAddress(b: BarLayout, address: bigint): void {
    const lo = this.fn.getStored(b.offset, 4);
    const flagMask = b.kind === 'io' ? ~BAR_IO_MASK : b.kind === 'rom' ? ~ROM_ADDRESS_MASK : ~BAR_MEM_MASK;
    this.fn.setStored(b.offset, 4, ((lo & flagMask) | (low32(address) & ~flagMask)) >>> 0);
    if (b.kind === 'mem64') this.fn.setStored(b.offset + 4, 4, low32(address >> 32n));
    this.update();
  }

  /** Re-evaluates every BAR and emits an event for each whose effective mapping changed. */
  update(): void {
    // The mappings are a function of these registers alone (and the layouts' fixed sizes).
    if (!this.inputsChanged()) return;
    for (let i = 0; i < this.layouts.length; i++) {
      const b = this.layouts[i]!;
      const now = this.effective(b);
      const before = this.current[i] ?? null;
      if (sameMapping(before, now)) continue;
      this.current[i] = now;
      const host = this.fn.attached;
      if (host === null) continue;
      host.mappingChanged({
        fn: this.fn,
        bdf: this.fn.address,
        bar: b.index,
        kind: b.kind,
        prefetchable: b.prefetchable,
        old: before,
        new: now,
      });
    }
  }

  /** Records the registers the mappings follow; whether any differs from the last record. */
  private inputsChanged(): boolean {
    const v = this.inputs;
    let changed = false;
    const decode = this.fn.getStored(COMMAND, 2) & (CMD_IO | CMD_MEMORY);
    if (v[0] !== decode) {
      v[0] = decode;
      changed = true;
    }
    let k = 1;
    for (const b of this.layouts) {
      for (let d = 0; d < dwordsOf(b); d++, k++) {
        const x = this.fn.getStored(b.offset + 4 * d, 4) >>> 0;
        if (v[k] !== x) {
          v[k] = x;
          changed = true;
        }
      }
    }
    return changed;
  }

  private effective(b: BarLayout): BarMapping | null {
    if (b.size === undefined) return null;
    const cmd = this.fn.getStored(COMMAND, 2);
    if (b.kind === 'io') {
      if ((cmd & CMD_IO) === 0) return null;
      const address = this.address(b);
      // x86 has 64 KiB of port space: an I/O BAR programmed above it decodes nothing reachable.
      return address + b.size > 0x10000n ? null : { address, size: b.size };
    }
    if ((cmd & CMD_MEMORY) === 0) return null;
    if (b.kind === 'rom' && (this.fn.getStored(b.offset, 4) & ROM_ENABLE) === 0) return null;
    return { address: this.address(b), size: b.size };
  }
}

/** The register dwords a BAR's address takes: two for a 64-bit memory BAR. */
const dwordsOf = (b: BarLayout): number => (b.kind === 'mem64' ? 2 : 1);

function sameMapping(a: BarMapping | null, b: BarMapping | null): boolean {
  if (a === null || b === null) return a === b;
  return a.address === b.address && a.size === b.size;
}

function declareBar(fn: PciFunction, b: BarLayout, initial: ReadonlyMap<number, number>): void {
  const size = b.size;
  if (size !== undefined) {
    const problem = checkBarSize(b.kind, size);
    if (problem !== undefined) throw new PciError(`BAR ${b.index}: ${problem}`, { input: fn.id });
  }
  const sizeMask = size === undefined ? 0n : ~(size - 1n) & 0xffff_ffff_ffff_ffffn;
  const fixed = size === undefined;
  const captured = initial.get(b.offset);
  switch (b.kind) {
    case 'io': {
      // A capture keeps its exact bits (a mirror must read back unchanged); a model gets the I/O flag.
      const flags = captured === undefined ? BAR_SPACE_IO : captured & 0x3;
      const writable = fixed ? 0 : low32(sizeMask) & BAR_IO_MASK;
      fn.declare({ offset: b.offset, size: 4, emulated: 0xffff_ffff, writable, value: captured ?? flags, reset: flags });
      break;
    }
    case 'mem32':
    case 'mem64': {
      const modelFlags = (b.kind === 'mem64' ? BAR_MEM_TYPE_64 : 0) | (b.prefetchable ? BAR_MEM_PREFETCH : 0);
      const flags = captured === undefined ? modelFlags : captured & 0xf;
      const writable = fixed ? 0 : low32(sizeMask) & BAR_MEM_MASK;
      fn.declare({ offset: b.offset, size: 4, emulated: 0xffff_ffff, writable, value: captured ?? flags, reset: flags });
      if (b.kind === 'mem64') {
        const hi = fixed ? 0 : low32(sizeMask >> 32n);
        fn.declare({ offset: b.offset + 4, size: 4, emulated: 0xffff_ffff, writable: hi, value: initial.get(b.offset + 4) ?? 0, reset: 0 });
      }
      break;
    }
    case 'rom': {
      const writable = fixed ? 0 : (low32(sizeMask) & ROM_ADDRESS_MASK) | ROM_ENABLE;
      fn.declare({ offset: b.offset, size: 4, emulated: 0xffff_ffff, writable, value: captured ?? 0, reset: 0 });
      break;
    }
  }
}
