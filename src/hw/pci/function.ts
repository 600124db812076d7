import type { AccessSize } from '../io.js';
import type { Bdf } from './address.js';
import type { ConfigBackend } from './backend.js';
import type { BarMappingEvent, BarSet } from './bars.js';
import type { CapabilityWalk } from './capabilities.js';
import { assertLittleEndian, readLE } from './endian.js';
import { PciError } from './errors.js';
import { EXT_CONFIG_SIZE } from './regs.js';

assertLittleEndian();

/** Where a function's config space comes from. */
export type FunctionKind =
  /** A real device (or its replay): unclaimed bytes pass through to a ConfigBackend. */
  | 'real'
  /** A device model: every byte lives in hvmpt's storage. */
  | 'emulated'
  /** A plan-made placeholder (a bridge, a dummy device): emulated, with no behaviour beyond the header. */
  | 'fake';

/**
 * One register (or a few bytes of one) and how each bit behaves. Masks are per bit, over
 * `size` bytes at `offset`:
 * - emulated bits are served from hvmpt's storage; the others pass through to the backend;
 * - writable bits take the guest's value (into storage, or forwarded to the backend);
 * - rw1c bits (a subset of writable) are cleared by writing 1 and kept by writing 0.
 * Bits neither emulated nor writable are "reserved-preserve": they read from the backend and
 * a write sends the backend its own current value. Emulated, non-writable bits with value 0
 * are "reserved-zero".
 */
export interface RegisterDescriptor {
  readonly offset: number;
  readonly size: AccessSize;
  readonly emulated: number;
  readonly writable: number;
  readonly rw1c?: number;
  /** Initial value of the emulated bits; when absent they start from the backend's value (or 0). */
  readonly value?: number;
  /** Value of the emulated bits after a reset; when absent, `value` (or the initial value). */
  readonly reset?: number;
}

/** A guest write that has landed, handed to whoever watches the register it touched. */
export interface ConfigWriteEvent {
  readonly fn: PciFunction;
  readonly offset: number;
  readonly size: AccessSize;
  /** The value the guest wrote (before masks). Read the register for its new state. */
  readonly value: number;
}

export type ConfigWriteListener = (event: ConfigWriteEvent) => void;

interface WriteWatch {
  readonly start: number;
  readonly end: number;
  readonly listener: ConfigWriteListener;
}

/** What a function reports to the topology it is attached to. */
export interface FunctionHost {
  /** The bus number the function currently answers on. */
  busNumberOf(fn: PciFunction): number;
  readonly segment: number;
  /** A bridge's bus numbers changed: config routing must be recomputed. */
  routingChanged(): void;
  /** A BAR's effective decoded mapping changed. */
  mappingChanged(event: BarMappingEvent): void;
}

const KIND_EMU = 0;
const KIND_PASS = 1;
const KIND_MIXED = 2;

const ONES = 0xffff_ffff;

function maskOf(size: AccessSize): number {
  return size === 4 ? ONES : size === 2 ? 0xffff : 0xff;
}

/**
 * A function as the guest sees it: 4 KiB of config space composed, per bit, from hvmpt's
 * storage and a backend, under register descriptors.
 *
 * Reads are the hot path (a guest's enumeration and drivers read far more than they write):
 * per-dword kinds in a typed array pick storage, backend or a masked mix with no allocation.
 * Writes go byte by byte through the masks, then to the backend with the access's own offset
 * and size (so bytes outside the access are never touched), then to the watchers.
 */
export class PciFunction {
  /** A stable name: the plan's name, or the BDF the function had in its capture. */
  readonly id: string;
  readonly kind: FunctionKind;
  readonly backend: ConfigBackend | null;
  /** Bytes of config space the guest sees; reads past it return ones and writes are dropped. */
  readonly length: number;
  /** The guest may not see or reach this function by any path. Set by composition. */
  hidden = false;
  /**
   * This function answers even though function 0 of its slot is absent. Only for captures
   * that recorded a lone function (e.g. `lspci -s 00:02.1 -xxx`): the real slot had a function 0.
   */
  visibleWithoutFunction0 = false;
  /** Device number on the bus the function sits on, and function number. */
  device = 0;
  fn = 0;
  /** The function's BARs, once a builder has declared them. */
  bars: BarSet | null = null;
  /** The capabilities the builder found (before any were hidden). */
  capabilities: CapabilityWalk | null = null;

  private readonly storage: Uint8Array;
  private readonly storage32: Uint32Array;
  private readonly emu: Uint8Array;
  private readonly emu32: Uint32Array;
  private readonly wmask: Uint8Array;
  private readonly w1c: Uint8Array;
  private readonly resetValue: Uint8Array;
  private readonly dwordKind: Uint8Array;
  private readonly watched: Uint8Array;
  /**
   * Replaced, never changed in place: a listener may add or remove watches while notify walks
   * the list as it was, and a write on the exit path then needs no copy of it.
   */
  private watches: readonly WriteWatch[] = [];
  private host: FunctionHost | null = null;

  constructor(options: { id: string; kind: FunctionKind; backend?: ConfigBackend | null; length?: number }) {
    this.id = options.id;
    this.kind = options.kind;
    this.backend = options.backend ?? null;
    const length = options.length ?? this.backend?.length ?? EXT_CONFIG_SIZE;
    if (length < 0x40 || length > EXT_CONFIG_SIZE) {
      throw new PciError(`config space length ${length} outside 64..4096`, { input: options.id });
    }
    if (this.kind === 'real' && this.backend === null) {
      throw new PciError('a real function needs a backend', { input: options.id });
    }
    this.length = length;
    this.storage32 = new Uint32Array(EXT_CONFIG_SIZE / 4);
    this.storage = new Uint8Array(this.storage32.buffer);
    this.emu32 = new Uint32Array(EXT_CONFIG_SIZE / 4);
    this.emu = new Uint8Array(this.emu32.buffer);
    this.wmask = new Uint8Array(EXT_CONFIG_SIZE);
    this.w1c = new Uint8Array(EXT_CONFIG_SIZE);
    this.resetValue = new Uint8Array(EXT_CONFIG_SIZE);
    this.dwordKind = new Uint8Array(EXT_CONFIG_SIZE / 4);
    this.watched = new Uint8Array(EXT_CONFIG_SIZE / 4);
    if (this.backend === null) {
      // No backend: every byte is storage; undeclared bytes are reserved-zero.
      this.emu.fill(0xff);
    } else {
      // Unclaimed bytes pass through, writable: the device decides what its own registers do.
      this.wmask.fill(0xff, 0, length);
    }
    // Past the visible length: emulated ones, read-only.
    this.emu.fill(0xff, length);
    this.storage.fill(0xff, length);
    this.resetValue.fill(0xff, length);
    this.refreshKinds(0, EXT_CONFIG_SIZE);
  }

  // ---------------------------------------------------------------- guest access

  /** A guest read of `size` bytes at `offset` (any alignment; past the length reads ones). */
  read(offset: number, size: AccessSize): number {
    if ((offset & 3) === 0 && size === 4) return this.read32(offset);
    const shift = (offset & 3) * 8;
    if (shift + size * 8 <= 32) return this.readWithin(offset, size, shift);
    // Crosses a dword boundary (only ECAM can ask for this): assemble from two dwords.
    const lo = this.read32(offset & ~3) >>> shift;
    const hi = (offset & ~3) + 4 < EXT_CONFIG_SIZE ? this.read32((offset & ~3) + 4) : ONES;
    return ((lo | (hi << (32 - shift))) & maskOf(size)) >>> 0;
  }

  /**
   * A read of 1 or 2 bytes inside one dword. Only the bytes asked for reach the device, as the
   * guest asked for them: a driver reading Command alone is answered from what the back-end
   * keeps (VFIO keeps Command, and a read it cannot serve is a system call), and no neighbouring
   * register is read on the guest's behalf.
   */
  private readWithin(offset: number, size: AccessSize, shift: number): number {
    const i = offset >>> 2;
    const mask = maskOf(size);
    const stored = (this.storage32[i]! >>> shift) & mask;
    if (this.dwordKind[i] === KIND_EMU) return stored >>> 0;
    const e = (this.emu32[i]! >>> shift) & mask;
    if (e === mask) return stored >>> 0;
    const dev = this.backend!.read(offset, size);
    return ((stored & e) | (dev & ~e & mask)) >>> 0;
  }

  /** A dword read at a dword-aligned offset below 4096: the fast path. */
  read32(offset: number): number {
    const i = offset >>> 2;
    const k = this.dwordKind[i];
    if (k === KIND_EMU) return this.storage32[i]!;
    const dev = this.backend!.read(offset, 4);
    if (k === KIND_PASS) return dev;
    const e = this.emu32[i]!;
    return ((this.storage32[i]! & e) | (dev & ~e)) >>> 0;
  }

  /** A guest write. Bytes past the visible length are dropped. */
  write(offset: number, size: AccessSize, value: number): void {
    if (offset < 0 || offset >= this.length) return;
    let pass = false;
    let needDevice = false;
    for (let j = 0; j < size; j++) {
      const o = offset + j;
      if (o >= this.length) break;
      const v = (value >>> (8 * j)) & 0xff;
      const e = this.emu[o]!;
      const w = this.wmask[o]!;
      const c = this.w1c[o]!;
      const setBits = e & w & ~c;
      const clearBits = e & w & c & v;
      this.storage[o] = ((this.storage[o]! & ~setBits & ~clearBits) | (v & setBits)) & 0xff;
      const p = ~e & 0xff;
      // Only an access that carries guest-writable pass-through bits goes to the device: writing
      // a device its own values back could still clear bits hvmpt does not know are RW1C.
      if ((w & p) !== 0) pass = true;
      // Bits neither forwarded from the guest nor RW1C carry the device's own value back.
      if (p !== 0 && (~(w & p) & ~c & 0xff) !== 0) needDevice = true;
    }
    if (pass && this.backend !== null) this.forward(offset, size, value, needDevice);
    if (this.watchedRange(offset, size)) this.notify(offset, size, value);
  }

  private forward(offset: number, size: AccessSize, value: number, needDevice: boolean): void {
    const backend = this.backend!;
    const span = Math.min(size, this.length - offset);
    if (span <= 0) return;
    // A backend serves 1, 2 or 4 bytes; a 3-byte tail (an access cut by the length) goes bytewise.
    if (span === 3) {
      for (let j = 0; j < 3; j++) this.forward(offset + j, 1, value >>> (8 * j), needDevice);
      return;
    }
    const n = span as AccessSize;
    const cur = needDevice ? backend.read(offset, n) : 0;
    let out = 0;
    for (let j = n - 1; j >= 0; j--) {
      const o = offset + j;
      const v = (value >>> (8 * j)) & 0xff;
      const e = this.emu[o]!;
      const w = this.wmask[o]!;
      const c = this.w1c[o]!;
      const fromGuest = w & ~e & 0xff;
      // RW1C bits the guest did not write through get 0, so nothing unrelated is cleared.
      const keep = ~fromGuest & ~c & 0xff;
      const d = (cur >>> (8 * j)) & 0xff;
      out = (out << 8) | (v & fromGuest) | (d & keep);
    }
    backend.write(offset, n, out >>> 0);
  }

  // ---------------------------------------------------------------- declaration

  /** Applies a register descriptor. Later descriptors override earlier ones bit by bit. */
  declare(d: RegisterDescriptor): void {
    if (d.offset < 0 || d.offset + d.size > EXT_CONFIG_SIZE) {
      throw new PciError(`register at 0x${d.offset.toString(16)} (${d.size} bytes) outside config space`, {
        input: this.id,
      });
    }
    const rw1c = d.rw1c ?? 0;
    const initial = d.value ?? (this.backend !== null ? this.backend.read(d.offset, d.size) : this.getStored(d.offset, d.size));
    const reset = d.reset ?? initial;
    for (let j = 0; j < d.size; j++) {
      const o = d.offset + j;
      if (o >= this.length) break;
      const sh = 8 * j;
      // With no backend there is nowhere to pass through to: every bit lives in storage.
      const e = this.backend === null ? 0xff : (d.emulated >>> sh) & 0xff;
      const w = (d.writable >>> sh) & 0xff;
      const c = (rw1c >>> sh) & 0xff & w;
      // Bits no longer emulated lose their stored value; bits newly emulated take the initial one.
      this.emu[o] = e;
      this.wmask[o] = w;
      this.w1c[o] = c;
      this.storage[o] = ((initial >>> sh) & e) & 0xff;
      this.resetValue[o] = ((reset >>> sh) & e) & 0xff;
    }
    this.refreshKinds(d.offset, d.offset + d.size);
  }

  /** Changes only the guest-writable and RW1C masks of emulated or passed-through bits (e.g. a lock bit took effect). */
  setWritable(offset: number, size: AccessSize, writable: number, rw1c = 0): void {
    for (let j = 0; j < size; j++) {
      const o = offset + j;
      if (o >= this.length) break;
      this.wmask[o] = (writable >>> (8 * j)) & 0xff;
      this.w1c[o] = (rw1c >>> (8 * j)) & 0xff & this.wmask[o]!;
    }
  }

  /**
   * Device-side access to hvmpt's storage, ignoring guest masks: a model reads its registers
   * and updates status bits here. Only emulated bits change; pass-through bits are the backend's.
   */
  getStored(offset: number, size: AccessSize): number {
    return readLE(this.storage, offset, size, 0);
  }

  /** A copy of `length` stored bytes (a model's register block, such as the seven PAM registers). */
  getStoredBytes(offset: number, length: number): Uint8Array {
    return this.storage.slice(offset, offset + length);
  }

  setStored(offset: number, size: AccessSize, value: number): void {
    for (let j = 0; j < size; j++) {
      const o = offset + j;
      if (o >= this.length) break;
      const e = this.emu[o]!;
      this.storage[o] = ((this.storage[o]! & ~e) | ((value >>> (8 * j)) & e)) & 0xff;
    }
  }

  /** Per-byte masks at an offset, for reports and tests. */
  masksAt(offset: number): { emulated: number; writable: number; rw1c: number } {
    return { emulated: this.emu[offset]!, writable: this.wmask[offset]!, rw1c: this.w1c[offset]! };
  }

  /** Puts every emulated bit back to its reset value (power-on, or a bus reset). */
  resetRegisters(): void {
    for (let o = 0; o < EXT_CONFIG_SIZE; o++) {
      const e = this.emu[o]!;
      this.storage[o] = ((this.storage[o]! & ~e) | (this.resetValue[o]! & e)) & 0xff;
    }
  }

  /** Makes the current value of the emulated bits in a range the value a reset returns to. */
  captureResetValues(offset: number, size: number): void {
    for (let o = offset; o < offset + size && o < EXT_CONFIG_SIZE; o++) {
      this.resetValue[o] = this.storage[o]! & this.emu[o]!;
    }
  }

  private refreshKinds(start: number, end: number): void {
    for (let i = start >>> 2; i < (end + 3) >>> 2 && i < EXT_CONFIG_SIZE / 4; i++) {
      const e = this.emu32[i]!;
      this.dwordKind[i] = e === ONES || this.backend === null ? KIND_EMU : e === 0 ? KIND_PASS : KIND_MIXED;
    }
  }

  // ---------------------------------------------------------------- watchers

  /**
   * Calls `listener` after every guest write that overlaps `[offset, offset + size)`, once the
   * write has landed in storage and backend. Returns a function that removes the watch.
   */
  watch(offset: number, size: number, listener: ConfigWriteListener): () => void {
    const w: WriteWatch = { start: offset, end: offset + size, listener };
    this.watches = [...this.watches, w];
    this.refreshWatched();
    return () => {
      this.watches = this.watches.filter((x) => x !== w);
      this.refreshWatched();
    };
  }

  private refreshWatched(): void {
    this.watched.fill(0);
    for (const w of this.watches) {
      for (let i = w.start >>> 2; i < (w.end + 3) >>> 2 && i < this.watched.length; i++) this.watched[i] = 1;
    }
  }

  private watchedRange(offset: number, size: number): boolean {
    const last = (offset + size - 1) >>> 2;
    for (let i = offset >>> 2; i <= last && i < this.watched.length; i++) if (this.watched[i] === 1) return true;
    return false;
  }

  private notify(offset: number, size: AccessSize, value: number): void {
    const end = offset + size;
    const event: ConfigWriteEvent = { fn: this, offset, size, value };
    const watches = this.watches;
    for (let i = 0; i < watches.length; i++) {
      const w = watches[i]!;
      if (w.start < end && offset < w.end) w.listener(event);
    }
  }

  // ---------------------------------------------------------------- placement

  /** Called by the topology when the function is attached. */
  attach(host: FunctionHost, device: number, fn: number): void {
    if (this.host !== null) throw new PciError('function is already attached to a bus', { input: this.id });
    this.host = host;
    this.device = device;
    this.fn = fn;
  }

  get attached(): FunctionHost | null {
    return this.host;
  }

  /** The address the function answers at now (bus numbers behind bridges change when firmware renumbers). */
  get address(): Bdf {
    if (this.host === null) throw new PciError('function is not attached to a bus', { input: this.id });
    return { segment: this.host.segment, bus: this.host.busNumberOf(this), device: this.device, fn: this.fn };
  }
}
