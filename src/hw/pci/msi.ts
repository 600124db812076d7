/**
 * MSI and MSI-X as the guest programs them, turned into events.
 *
 * hvmpt emulates the guest-visible state of both capabilities (src/hw/pci/capabilities.ts
 * declares their registers emulated), so the guest's address/data pairs never reach a real
 * device: the monitor programs the host side (VFIO vectors, KVM routes) from these events, as
 * it maps BARs from `BarMappingEvent`s. An event carries the whole state of the capability; the
 * consumer diffs it against what it installed.
 */
import type { AccessSize } from '../io.js';
import { PciError } from './errors.js';
import type { PciFunction } from './function.js';

/** One vector as the guest programmed it. */
export interface MsiMessage {
  readonly address: bigint;
  readonly data: number;
  /** Masked by its own mask bit (MSI per-vector masking, MSI-X vector control). */
  readonly masked: boolean;
}

export interface MsiState {
  readonly kind: 'msi';
  readonly enabled: boolean;
  /** The vectors the guest enabled (Multiple Message Enable): their data differ in the low bits. */
  readonly vectors: readonly MsiMessage[];
}

export interface MsixState {
  readonly kind: 'msix';
  readonly enabled: boolean;
  /** Function Mask: every vector masked whatever its own bit says. */
  readonly functionMasked: boolean;
  /** Every table entry, in order. */
  readonly vectors: readonly MsiMessage[];
}

/** The guest changed how a function signals MSI or MSI-X. */
export interface InterruptConfigEvent {
  readonly fn: PciFunction;
  readonly state: MsiState | MsixState;
}

export type InterruptConfigListener = (event: InterruptConfigEvent) => void;

// MSI capability layout (PCI Local Bus 3.0, 6.8.1).
const MSI_CONTROL = 2;
const MSI_ADDRESS_LO = 4;
const MSI_CTRL_ENABLE = 0x0001;
const MSI_CTRL_MMC_SHIFT = 1;
const MSI_CTRL_MME_SHIFT = 4;
const MSI_CTRL_64BIT = 0x0080;
const MSI_CTRL_MASKABLE = 0x0100;

/** Where each MSI register is, from the capability's Message Control. */
export function msiLayout(control: number): { address64: boolean; dataOffset: number; maskOffset: number | undefined; capable: number } {
  const address64 = (control & MSI_CTRL_64BIT) !== 0;
  const dataOffset = address64 ? 0x0c : 0x08;
  return {
    address64,
    dataOffset,
    maskOffset: (control & MSI_CTRL_MASKABLE) !== 0 ? dataOffset + 4 : undefined,
    capable: 1 << ((control >>> MSI_CTRL_MMC_SHIFT) & 7),
  };
}

/** A function's MSI capability, watched: every guest write to it that changes the state is an event. */
export class MsiCapability {
  private last = '';

  constructor(
    readonly fn: PciFunction,
    /** Config offset of the capability header. */
    readonly offset: number,
    private readonly listener: InterruptConfigListener,
  ) {
    const layout = msiLayout(fn.read(offset + MSI_CONTROL, 2));
    fn.watch(offset + MSI_CONTROL, (layout.maskOffset ?? layout.dataOffset) + 4 - MSI_CONTROL, () => this.refresh());
    this.last = key(this.state());
  }

  state(): MsiState {
    const p = this.offset;
    const control = this.fn.read(p + MSI_CONTROL, 2);
    const layout = msiLayout(control);
    const enabled = (control & MSI_CTRL_ENABLE) !== 0;
    // More vectors than the device is capable of cannot be enabled; the spec leaves the result undefined, so take the smaller.
    const count = Math.min(1 << ((control >>> MSI_CTRL_MME_SHIFT) & 7), layout.capable);
    const lo = BigInt(this.fn.read(p + MSI_ADDRESS_LO, 4) >>> 0);
    const address = layout.address64 ? (BigInt(this.fn.read(p + 8, 4) >>> 0) << 32n) | lo : lo;
    const data = this.fn.read(p + layout.dataOffset, 2);
    const mask = layout.maskOffset === undefined ? 0 : this.fn.read(p + layout.maskOffset, 4);
    const vectors: MsiMessage[] = [];
    // Multiple messages: the device puts the vector number in the low bits the guest left free.
    for (let i = 0; i < (enabled ? count : 0); i++) vectors.push({ address, data: (data & ~(count - 1)) | i, masked: ((mask >>> i) & 1) === 1 });
    return { kind: 'msi', enabled, vectors };
  }

  /** Re-reads the capability (after a reset, say) and tells the listener when it changed. */
  refresh(): void {
    const s = this.state();
    const k = key(s);
    if (k === this.last) return;
    this.last = k;
    this.listener({ fn: this.fn, state: s });
  }
}

// MSI-X capability layout (PCI Local Bus 3.0, 6.8.2).
const MSIX_CONTROL = 2;
const MSIX_TABLE = 4;
const MSIX_PBA = 8;
const MSIX_CTRL_ENABLE = 0x8000;
const MSIX_CTRL_MASK = 0x4000;
const MSIX_CTRL_SIZE = 0x07ff;
const MSIX_BIR = 0x7;
const ENTRY_SIZE = 16;
const ENTRY_VECTOR_CONTROL = 12;
const VECTOR_MASKED = 1;

/** Where a BAR-resident structure is: BAR index, offset into it, bytes. */
export interface BarSpan {
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
}

/**
 * A function's MSI-X table and Pending Bit Array, emulated: the guest reads and writes the
 * table through the monitor (the pages that hold it are trapped), the capability's Enable and
 * Function Mask are watched in config space, and each change of state is an event. Pending
 * bits are set by the monitor for vectors that fired while masked.
 */
export class MsixTable {
  readonly size: number;
  readonly table: BarSpan;
  readonly pba: BarSpan;
  private readonly entries: Uint32Array;
  private readonly pending: Uint32Array;
  private last = '';

  constructor(
    readonly fn: PciFunction,
    readonly offset: number,
    private readonly listener: InterruptConfigListener,
  ) {
    const control = fn.read(offset + MSIX_CONTROL, 2);
    this.size = (control & MSIX_CTRL_SIZE) + 1;
    const t = fn.read(offset + MSIX_TABLE, 4) >>> 0;
    const p = fn.read(offset + MSIX_PBA, 4) >>> 0;
    this.table = { bar: t & MSIX_BIR, offset: t & ~MSIX_BIR, length: this.size * ENTRY_SIZE };
    this.pba = { bar: p & MSIX_BIR, offset: p & ~MSIX_BIR, length: Math.ceil(this.size / 64) * 8 };
    if (this.table.bar > 5 || this.pba.bar > 5) throw new PciError(`MSI-X table or PBA in BAR ${Math.max(this.table.bar, this.pba.bar)}, which does not exist`, { input: fn.id, at: `capability at 0x${offset.toString(16)}` });
    this.entries = new Uint32Array(this.size * 4);
    this.pending = new Uint32Array(Math.ceil(this.size / 32));
    this.reset();
    fn.watch(offset + MSIX_CONTROL, 2, () => this.refresh());
  }

  /** Power-on state: every vector masked, addresses and data zero, nothing pending. */
  reset(): void {
    this.entries.fill(0);
    for (let i = 0; i < this.size; i++) this.entries[i * 4 + 3] = VECTOR_MASKED;
    this.pending.fill(0);
    this.last = key(this.state());
  }

  state(): MsixState {
    const control = this.fn.read(this.offset + MSIX_CONTROL, 2);
    const vectors: MsiMessage[] = [];
    for (let i = 0; i < this.size; i++) {
      const e = i * 4;
      vectors.push({ address: (BigInt(this.entries[e + 1]!) << 32n) | BigInt(this.entries[e]!), data: this.entries[e + 2]!, masked: (this.entries[e + 3]! & VECTOR_MASKED) !== 0 });
    }
    return { kind: 'msix', enabled: (control & MSIX_CTRL_ENABLE) !== 0, functionMasked: (control & MSIX_CTRL_MASK) !== 0, vectors };
  }

  /** A guest read of the table, at an offset into it. */
  readTable(offset: number, size: AccessSize): number {
    if (offset < 0 || offset + size > this.table.length) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    const word = this.entries[offset >>> 2]!;
    const shift = (offset & 3) * 8;
    return size === 4 && shift === 0 ? word : (word >>> shift) & ((1 << (8 * size)) - 1);
  }

  /** A guest write to the table. Only the vector control's mask bit is writable in that dword. */
  writeTable(offset: number, size: AccessSize, value: number): void {
    if (offset < 0 || offset + size > this.table.length) return;
    const i = offset >>> 2;
    const shift = (offset & 3) * 8;
    const mask = size === 4 ? 0xffff_ffff : ((1 << (8 * size)) - 1) << shift;
    let word = ((this.entries[i]! & ~mask) | ((value << shift) & mask)) >>> 0;
    if ((i & 3) === 3) word &= VECTOR_MASKED;
    // Message Address is dword aligned: its two low bits are read-only zero.
    if ((i & 3) === 0) word &= ~3;
    this.entries[i] = word >>> 0;
    this.refresh();
  }

  /** A guest read of the Pending Bit Array. */
  readPba(offset: number, size: AccessSize): number {
    if (offset < 0 || offset + size > this.pba.length) return 0;
    const word = this.pending[offset >>> 2] ?? 0;
    const shift = (offset & 3) * 8;
    return size === 4 && shift === 0 ? word : (word >>> shift) & ((1 << (8 * size)) - 1);
  }

  setPending(vector: number, on: boolean): void {
    if (vector < 0 || vector >= this.size) return;
    const bit = 1 << (vector & 31);
    const w = vector >>> 5;
    this.pending[w] = on ? (this.pending[w]! | bit) >>> 0 : (this.pending[w]! & ~bit) >>> 0;
  }

  isPending(vector: number): boolean {
    return vector >= 0 && vector < this.size && ((this.pending[vector >>> 5]! >>> (vector & 31)) & 1) === 1;
  }

  refresh(): void {
    const s = this.state();
    const k = key(s);
    if (k === this.last) return;
    this.last = k;
    this.listener({ fn: this.fn, state: s });
  }
}

function key(s: MsiState | MsixState): string {
  const head = s.kind === 'msix' ? `${s.enabled}/${s.functionMasked}` : `${s.enabled}`;
  return `${head}|${s.vectors.map((v) => `${v.address.toString(16)}:${v.data}:${v.masked ? 1 : 0}`).join(',')}`;
}

/** Whether a vector may be delivered: enabled, and masked neither by itself nor (MSI-X) by the function. */
export function deliverable(state: MsiState | MsixState, vector: number): boolean {
  const v = state.vectors[vector];
  if (!state.enabled || v === undefined || v.masked) return false;
  return state.kind === 'msi' || !state.functionMasked;
}
