import { HvmptError } from '../../../errors.js';
import type {
  AddressSpaceFlags,
  AddressSpaceResource,
  ExtendedAddressSpaceResource,
  InterruptMode,
  Resource,
  ResourceSource,
  ResourceTemplate,
} from './types.js';

/**
 * Resource template bytes <-> typed descriptors (ACPI 6.5 section 6.4). Small items carry a
 * 3-bit length in their tag byte; large items a 16-bit length after it.
 */

/** A resource template that cannot be decoded; `offset` counts from the buffer's first data byte. */
export class ResourceError extends HvmptError {
  readonly offset: number;
  constructor(message: string, input: string, offset: number) {
    super(message, { input, at: `resource offset 0x${offset.toString(16)}` });
    this.offset = offset;
  }
}

export interface DecodeResourceOptions {
  /** Names the buffer in errors (`\_SB_.PCI0._CRS`). */
  readonly input?: string;
}

const SMALL = {
  Irq: 0x04,
  Dma: 0x05,
  StartDependentFn: 0x06,
  EndDependentFn: 0x07,
  Io: 0x08,
  FixedIo: 0x09,
  FixedDma: 0x0a,
  VendorShort: 0x0e,
  EndTag: 0x0f,
} as const;

const LARGE = {
  Memory24: 0x81,
  GenericRegister: 0x82,
  VendorLong: 0x84,
  Memory32: 0x85,
  FixedMemory32: 0x86,
  DWordSpace: 0x87,
  WordSpace: 0x88,
  ExtendedInterrupt: 0x89,
  QWordSpace: 0x8a,
  ExtendedSpace: 0x8b,
  Gpio: 0x8c,
  PinFunction: 0x8d,
  SerialBus: 0x8e,
  PinConfig: 0x8f,
  PinGroup: 0x90,
  PinGroupFunction: 0x91,
  PinGroupConfig: 0x92,
  ClockInput: 0x93,
} as const;

/**
 * Body offsets (after the 3-byte large-item header) of the descriptors that address their
 * variable parts by offset (ACPI 6.5 sections 6.4.3.8.1-6.4.3.11). The `...Offset` fields
 * they hold count from the descriptor's first byte, header included; `size` is the fixed part.
 */
const LARGE_HEADER = 3;
const GPIO = {
  revision: 0, connection: 1, flags: 2, intFlags: 4, pinConfig: 6, drive: 7, debounce: 9,
  pinTableOffset: 11, sourceIndex: 13, sourceOffset: 14, vendorOffset: 16, vendorLength: 18, size: 20,
} as const;
const PIN_FUNCTION = {
  revision: 0, flags: 1, pull: 3, functionNumber: 4, pinTableOffset: 6, sourceIndex: 8, sourceOffset: 9,
  vendorOffset: 11, vendorLength: 13, size: 15,
} as const;
const PIN_CONFIG = {
  revision: 0, flags: 1, configType: 3, configValue: 4, pinTableOffset: 8, sourceIndex: 10, sourceOffset: 11,
  vendorOffset: 13, vendorLength: 15, size: 17,
} as const;
const PIN_GROUP = { revision: 0, flags: 1, pinTableOffset: 3, labelOffset: 5, vendorOffset: 7, vendorLength: 9, size: 11 } as const;
const PIN_GROUP_FUNCTION = {
  revision: 0, flags: 1, functionNumber: 3, sourceIndex: 5, sourceOffset: 6, labelOffset: 8, vendorOffset: 10,
  vendorLength: 12, size: 14,
} as const;
const PIN_GROUP_CONFIG = {
  revision: 0, flags: 1, configType: 3, configValue: 4, sourceIndex: 8, sourceOffset: 9, labelOffset: 11,
  vendorOffset: 13, vendorLength: 15, size: 17,
} as const;
/** Serial bus descriptors: the common part; the type data starts at `data`. */
const SERIAL = { revision: 0, sourceIndex: 1, busType: 2, flags: 3, typeFlags: 4, typeRevision: 6, typeDataLength: 7, data: 9 } as const;

// ---- reading ----

class Reader {
  readonly b: Uint8Array;
  readonly input: string;
  /** Offset of b[0] within the whole template, for messages. */
  readonly base: number;
  constructor(b: Uint8Array, input: string, base: number) {
    this.b = b;
    this.input = input;
    this.base = base;
  }
  need(at: number, n: number, what: string): void {
    if (at < 0) throw new ResourceError(`${what}: offset points into the descriptor header`, this.input, this.base);
    if (at + n > this.b.length) throw new ResourceError(`${what}: descriptor too short (${this.b.length} bytes)`, this.input, this.base + at);
  }
  u8(at: number, what = 'field'): number {
    this.need(at, 1, what);
    return this.b[at]!;
  }
  u16(at: number, what = 'field'): number {
    this.need(at, 2, what);
    return this.b[at]! | (this.b[at + 1]! << 8);
  }
  u32(at: number, what = 'field'): number {
    this.need(at, 4, what);
    return (this.b[at]! | (this.b[at + 1]! << 8) | (this.b[at + 2]! << 16) | (this.b[at + 3]! << 24)) >>> 0;
  }
  u64(at: number, what = 'field'): bigint {
    return BigInt(this.u32(at, what)) | (BigInt(this.u32(at + 4, what)) << 32n);
  }
  /** A NUL-terminated string starting at `at`, ending at the NUL or `end`. */
  str(at: number, end: number = this.b.length): string {
    if (at < 0) throw new ResourceError('string offset points into the descriptor header', this.input, this.base);
    const stop = Math.min(end, this.b.length);
    let s = '';
    for (let p = at; p < stop && this.b[p] !== 0; p++) s += String.fromCharCode(this.b[p]!);
    return s;
  }
  slice(from: number, to: number): Uint8Array {
    if (from < 0 || from > to || to > this.b.length) throw new ResourceError(`offsets ${from}-${to} outside the descriptor`, this.input, this.base + from);
    return this.b.slice(from, to);
  }
}

function bitList(mask: number, bits: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bits; i++) if ((mask >>> i) & 1) out.push(i);
  return out;
}

function interruptMode(flags: number, edgeBit: number, lowBit: number, sharedBit: number, wakeBit: number): InterruptMode {
  return {
    edge: ((flags >> edgeBit) & 1) === 1,
    activeLow: ((flags >> lowBit) & 1) === 1,
    shared: ((flags >> sharedBit) & 1) === 1,
    wake: ((flags >> wakeBit) & 1) === 1,
  };
}

const CACHING = ['noncacheable', 'cacheable', 'writecombining', 'prefetchable'] as const;
const RANGE_TYPE = ['memory', 'reserved', 'acpi', 'nvs'] as const;
const IO_RANGES = { 1: 'nonisa', 2: 'isa', 3: 'entire' } as const;

function spaceFlags(resourceType: number, flags: number): AddressSpaceFlags {
  switch (resourceType) {
    case 0:
      return {
        kind: 'memory',
        writable: (flags & 1) === 1,
        caching: CACHING[(flags >> 1) & 3]!,
        rangeType: RANGE_TYPE[(flags >> 3) & 3]!,
        typeTranslation: (flags & 0x20) !== 0,
      };
    case 1: {
      const rng = flags & 3;
      if (rng === 0) return { kind: 'other', resourceType, flags };
      return { kind: 'io', ranges: IO_RANGES[rng as 1 | 2 | 3], typeTranslation: (flags & 0x10) !== 0, sparse: (flags & 0x20) !== 0 };
    }
    case 2:
      return flags === 0 ? { kind: 'bus' } : { kind: 'other', resourceType, flags };
    default:
      return { kind: 'other', resourceType, flags };
  }
}

function optionalSource(r: Reader, at: number): ResourceSource | undefined {
  if (at >= r.b.length) return undefined;
  return { index: r.b[at]!, name: r.str(at + 1) };
}

/** Decodes one descriptor from its tag and the bytes after its header. */
function decodeOne(tag: number, body: Reader): Resource {
  const b = body;
  if ((tag & 0x80) === 0) {
    const name = (tag >> 3) & 0x0f;
    const len = b.b.length;
    switch (name) {
      case SMALL.Irq:
        if (len !== 2 && len !== 3) break;
        return len === 2
          ? { type: 'Irq', interrupts: bitList(b.u16(0), 16) }
          : { type: 'Irq', interrupts: bitList(b.u16(0), 16), mode: interruptMode(b.u8(2), 0, 3, 4, 5) };
      case SMALL.Dma: {
        if (len !== 2) break;
        const f = b.u8(1);
        return { type: 'Dma', channels: bitList(b.u8(0), 8), speed: (f >> 5) & 3, busMaster: (f & 4) !== 0, transferSize: f & 3 };
      }
      case SMALL.StartDependentFn:
        if (len === 0) return { type: 'StartDependentFn' };
        if (len !== 1) break;
        return { type: 'StartDependentFn', priority: { compatibility: b.u8(0) & 3, performance: (b.u8(0) >> 2) & 3 } };
      case SMALL.EndDependentFn:
        if (len !== 0) break;
        return { type: 'EndDependentFn' };
      case SMALL.Io:
        if (len !== 7) break;
        return { type: 'Io', decode16: (b.u8(0) & 1) === 1, min: b.u16(1), max: b.u16(3), alignment: b.u8(5), length: b.u8(6) };
      case SMALL.FixedIo:
        if (len !== 3) break;
        return { type: 'FixedIo', base: b.u16(0), length: b.u8(2) };
      case SMALL.FixedDma:
        if (len !== 5) break;
        return { type: 'FixedDma', requestLine: b.u16(0), channel: b.u16(2), width: b.u8(4) };
      case SMALL.VendorShort:
        return { type: 'VendorShort', data: b.slice(0, len) };
      default:
        return { type: 'Unknown', tag: name << 3, data: b.slice(0, len) };
    }
    throw new ResourceError(`small descriptor 0x${name.toString(16)} with length ${len}`, b.input, b.base - 1);
  }
  switch (tag) {
    case LARGE.Memory24:
      return { type: 'Memory24', writable: (b.u8(0) & 1) === 1, min: b.u16(1), max: b.u16(3), alignment: b.u16(5), length: b.u16(7) };
    case LARGE.GenericRegister:
      return { type: 'GenericRegister', spaceId: b.u8(0), bitWidth: b.u8(1), bitOffset: b.u8(2), accessSize: b.u8(3), address: b.u64(4) };
    case LARGE.VendorLong:
      return { type: 'VendorLong', data: b.slice(0, b.b.length) };
    case LARGE.Memory32:
      return { type: 'Memory32', writable: (b.u8(0) & 1) === 1, min: b.u32(1), max: b.u32(5), alignment: b.u32(9), length: b.u32(13) };
    case LARGE.FixedMemory32:
      return { type: 'FixedMemory32', writable: (b.u8(0) & 1) === 1, base: b.u32(1), length: b.u32(5) };
    case LARGE.WordSpace:
    case LARGE.DWordSpace:
    case LARGE.QWordSpace:
      return addressSpace(b, tag === LARGE.WordSpace ? 16 : tag === LARGE.DWordSpace ? 32 : 64);
    case LARGE.ExtendedSpace:
      return extendedSpace(b);
    case LARGE.ExtendedInterrupt: {
      const flags = b.u8(0);
      const count = b.u8(1);
      b.need(2, count * 4, 'interrupt table');
      const interrupts: number[] = [];
      for (let i = 0; i < count; i++) interrupts.push(b.u32(2 + 4 * i));
      const source = optionalSource(b, 2 + 4 * count);
      const base = { type: 'ExtendedInterrupt', producer: (flags & 1) === 0, mode: interruptMode(flags, 1, 2, 3, 4), interrupts } as const;
      return source === undefined ? base : { ...base, source };
    }
    case LARGE.Gpio:
      return gpio(b);
    case LARGE.SerialBus:
      return serialBus(b);
    case LARGE.PinFunction: {
      const L = PIN_FUNCTION;
      return {
        type: 'PinFunction',
        revision: b.u8(L.revision),
        flags: b.u16(L.flags),
        pull: b.u8(L.pull),
        functionNumber: b.u16(L.functionNumber),
        pins: pinTable(b, b.u16(L.pinTableOffset), b.u16(L.sourceOffset)),
        source: { index: b.u8(L.sourceIndex), name: between(b, b.u16(L.sourceOffset), b.u16(L.vendorOffset)) },
        vendorData: vendor(b, b.u16(L.vendorOffset), b.u16(L.vendorLength)),
      };
    }
    case LARGE.PinConfig: {
      const L = PIN_CONFIG;
      return {
        type: 'PinConfig',
        revision: b.u8(L.revision),
        flags: b.u16(L.flags),
        configType: b.u8(L.configType),
        configValue: b.u32(L.configValue),
        pins: pinTable(b, b.u16(L.pinTableOffset), b.u16(L.sourceOffset)),
        source: { index: b.u8(L.sourceIndex), name: between(b, b.u16(L.sourceOffset), b.u16(L.vendorOffset)) },
        vendorData: vendor(b, b.u16(L.vendorOffset), b.u16(L.vendorLength)),
      };
    }
    case LARGE.PinGroup: {
      const L = PIN_GROUP;
      return {
        type: 'PinGroup',
        revision: b.u8(L.revision),
        flags: b.u16(L.flags),
        pins: pinTable(b, b.u16(L.pinTableOffset), b.u16(L.labelOffset)),
        label: between(b, b.u16(L.labelOffset), b.u16(L.vendorOffset)),
        vendorData: vendor(b, b.u16(L.vendorOffset), b.u16(L.vendorLength)),
      };
    }
    case LARGE.PinGroupFunction: {
      const L = PIN_GROUP_FUNCTION;
      return {
        type: 'PinGroupFunction',
        revision: b.u8(L.revision),
        flags: b.u16(L.flags),
        functionNumber: b.u16(L.functionNumber),
        source: { index: b.u8(L.sourceIndex), name: between(b, b.u16(L.sourceOffset), b.u16(L.labelOffset)) },
        label: between(b, b.u16(L.labelOffset), b.u16(L.vendorOffset)),
        vendorData: vendor(b, b.u16(L.vendorOffset), b.u16(L.vendorLength)),
      };
    }
    case LARGE.PinGroupConfig: {
      const L = PIN_GROUP_CONFIG;
      return {
        type: 'PinGroupConfig',
        revision: b.u8(L.revision),
        flags: b.u16(L.flags),
        configType: b.u8(L.configType),
        configValue: b.u32(L.configValue),
        source: { index: b.u8(L.sourceIndex), name: between(b, b.u16(L.sourceOffset), b.u16(L.labelOffset)) },
        label: between(b, b.u16(L.labelOffset), b.u16(L.vendorOffset)),
        vendorData: vendor(b, b.u16(L.vendorOffset), b.u16(L.vendorLength)),
      };
    }
    case LARGE.ClockInput: {
      const base = { type: 'ClockInput', revision: b.u8(0), flags: b.u16(1), divisor: b.u16(3), numerator: b.u32(5) } as const;
      const source = optionalSource(b, 9);
      return source === undefined ? base : { ...base, source };
    }
    default:
      return { type: 'Unknown', tag, data: b.slice(0, b.b.length) };
  }
}

/** Pins are u16 from `from` to `to`, both offsets from the descriptor start (header included). */
function pinTable(b: Reader, from: number, to: number): number[] {
  const pins: number[] = [];
  for (let at = from - LARGE_HEADER; at + 2 <= to - LARGE_HEADER; at += 2) pins.push(b.u16(at, 'pin table'));
  return pins;
}

/** The NUL-terminated string at descriptor offset `from`, ending by `to` at the latest. */
function between(b: Reader, from: number, to: number): string {
  return b.str(from - LARGE_HEADER, to - LARGE_HEADER);
}

function vendor(b: Reader, offset: number, length: number): Uint8Array {
  return length === 0 ? new Uint8Array(0) : b.slice(offset - LARGE_HEADER, offset - LARGE_HEADER + length);
}

function addressSpace(b: Reader, width: 16 | 32 | 64): AddressSpaceResource {
  const size = width / 8;
  const read = (i: number) => (width === 64 ? b.u64(3 + i * 8) : BigInt(width === 32 ? b.u32(3 + i * 4) : b.u16(3 + i * 2)));
  const general = b.u8(1);
  const r: AddressSpaceResource = {
    type: 'AddressSpace',
    width,
    space: spaceFlags(b.u8(0), b.u8(2)),
    producer: (general & 1) === 0,
    subtractive: (general & 2) !== 0,
    minFixed: (general & 4) !== 0,
    maxFixed: (general & 8) !== 0,
    granularity: read(0),
    min: read(1),
    max: read(2),
    translation: read(3),
    length: read(4),
  };
  const source = optionalSource(b, 3 + 5 * size);
  return source === undefined ? r : { ...r, source };
}

function extendedSpace(b: Reader): ExtendedAddressSpaceResource {
  const general = b.u8(1);
  return {
    type: 'ExtendedAddressSpace',
    space: spaceFlags(b.u8(0), b.u8(2)),
    producer: (general & 1) === 0,
    subtractive: (general & 2) !== 0,
    minFixed: (general & 4) !== 0,
    maxFixed: (general & 8) !== 0,
    revision: b.u8(3),
    granularity: b.u64(5),
    min: b.u64(13),
    max: b.u64(21),
    translation: b.u64(29),
    length: b.u64(37),
    typeAttributes: b.u64(45),
  };
}

function gpio(b: Reader): Resource {
  const L = GPIO;
  const sourceOffset = b.u16(L.sourceOffset);
  const vendorOffset = b.u16(L.vendorOffset);
  return {
    type: b.u8(L.connection) === 0 ? 'GpioInt' : 'GpioIo',
    revision: b.u8(L.revision),
    flags: b.u16(L.flags),
    intFlags: b.u16(L.intFlags),
    pinConfig: b.u8(L.pinConfig),
    driveStrength: b.u16(L.drive),
    debounceTimeout: b.u16(L.debounce),
    pins: pinTable(b, b.u16(L.pinTableOffset), sourceOffset),
    source: { index: b.u8(L.sourceIndex), name: between(b, sourceOffset, vendorOffset || b.b.length + LARGE_HEADER) },
    vendorData: vendor(b, vendorOffset, b.u16(L.vendorLength)),
  };
}

const SERIAL_TYPE = { 1: 'I2cSerialBus', 2: 'SpiSerialBus', 3: 'UartSerialBus', 4: 'Csi2SerialBus' } as const;
/** Bytes of type data each bus type defines before its vendor data. */
const SERIAL_FIXED = { 1: 6, 2: 9, 3: 10, 4: 0 } as const;

function serialBus(b: Reader): Resource {
  const busType = b.u8(SERIAL.busType);
  const typeDataLength = b.u16(SERIAL.typeDataLength);
  const d = SERIAL.data;
  b.need(d, typeDataLength, 'serial bus type data');
  const fixed = SERIAL_FIXED[busType as 1 | 2 | 3 | 4] ?? 0;
  if (typeDataLength < fixed) throw new ResourceError(`serial bus type ${busType} data of ${typeDataLength} bytes`, b.input, b.base);
  const common = {
    revision: b.u8(SERIAL.revision),
    typeRevision: b.u8(SERIAL.typeRevision),
    flags: b.u8(SERIAL.flags),
    typeFlags: b.u16(SERIAL.typeFlags),
    vendorData: b.slice(d + fixed, d + typeDataLength),
    source: { index: b.u8(SERIAL.sourceIndex), name: b.str(d + typeDataLength) },
  };
  switch (busType) {
    case 1:
      return { type: 'I2cSerialBus', ...common, speed: b.u32(d), address: b.u16(d + 4) };
    case 2:
      return {
        type: 'SpiSerialBus',
        ...common,
        speed: b.u32(d),
        dataBits: b.u8(d + 4),
        phase: b.u8(d + 5),
        polarity: b.u8(d + 6),
        deviceSelection: b.u16(d + 7),
      };
    case 3:
      return {
        type: 'UartSerialBus',
        ...common,
        baudRate: b.u32(d),
        rxFifo: b.u16(d + 4),
        txFifo: b.u16(d + 6),
        parity: b.u8(d + 8),
        lines: b.u8(d + 9),
      };
    default:
      return { type: busType === 4 ? 'Csi2SerialBus' : 'SerialBus', ...common, busType };
  }
}

/**
 * Decodes a resource template (a _CRS/_PRS buffer's bytes). Descriptors whose typed form
 * would not reproduce them keep `raw`; bytes after the EndTag are kept as `trailing`.
 */
export function decodeResources(bytes: Uint8Array, options: DecodeResourceOptions = {}): ResourceTemplate {
  const input = options.input ?? 'resource template';
  const resources: Resource[] = [];
  let p = 0;
  while (p < bytes.length) {
    const tag = bytes[p]!;
    let headerLength: number;
    let length: number;
    if ((tag & 0x80) !== 0) {
      if (p + 3 > bytes.length) throw new ResourceError('truncated large descriptor header', input, p);
      headerLength = 3;
      length = bytes[p + 1]! | (bytes[p + 2]! << 8);
    } else {
      headerLength = 1;
      length = tag & 7;
    }
    const end = p + headerLength + length;
    if (end > bytes.length) {
      throw new ResourceError(`descriptor 0x${tag.toString(16)} of ${length} bytes runs past the end of the buffer`, input, p);
    }
    if ((tag & 0x80) === 0 && ((tag >> 3) & 0x0f) === SMALL.EndTag) {
      const checksum = length >= 1 ? bytes[p + 1]! : 0;
      const rest = end < bytes.length ? { trailing: bytes.slice(end) } : {};
      const endTag = length === 1 ? { end: { checksum } } : {};
      if (length !== 1) throw new ResourceError(`EndTag with length ${length}`, input, p);
      return { resources, ...endTag, ...rest };
    }
    const body = new Reader(bytes.subarray(p + headerLength, end), input, p + headerLength);
    let r = decodeOne(tag, body);
    const original = bytes.subarray(p, end);
    if (!sameBytes(encodeResource(r), original)) r = { ...r, raw: original.slice() };
    resources.push(r);
    p = end;
  }
  return { resources };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- writing ----

class Out {
  bytes: number[] = [];
  u8(v: number): this {
    this.bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: bigint): this {
    return this.u32(Number(v & 0xffff_ffffn)).u32(Number((v >> 32n) & 0xffff_ffffn));
  }
  data(d: Uint8Array | readonly number[]): this {
    for (const x of d) this.bytes.push(x & 0xff);
    return this;
  }
  str(s: string): this {
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i));
    return this.u8(0);
  }
  get length(): number {
    return this.bytes.length;
  }
  setU16(at: number, v: number): void {
    this.bytes[at] = v & 0xff;
    this.bytes[at + 1] = (v >>> 8) & 0xff;
  }
}

function mask(bits: readonly number[], width: number, what: string): number {
  let m = 0;
  for (const i of bits) {
    if (!Number.isInteger(i) || i < 0 || i >= width) throw new ResourceError(`${what} ${i} out of range 0-${width - 1}`, 'resource template', 0);
    m |= 1 << i;
  }
  return m >>> 0;
}

function modeBits(m: InterruptMode, edgeBit: number, lowBit: number, sharedBit: number, wakeBit: number): number {
  return ((m.edge ? 1 : 0) << edgeBit) | ((m.activeLow ? 1 : 0) << lowBit) | ((m.shared ? 1 : 0) << sharedBit) | ((m.wake ? 1 : 0) << wakeBit);
}

function spaceTypeAndFlags(f: AddressSpaceFlags): [number, number] {
  switch (f.kind) {
    case 'memory':
      return [
        0,
        (f.writable ? 1 : 0) | (CACHING.indexOf(f.caching) << 1) | (RANGE_TYPE.indexOf(f.rangeType) << 3) | (f.typeTranslation ? 0x20 : 0),
      ];
    case 'io': {
      const rng = f.ranges === 'nonisa' ? 1 : f.ranges === 'isa' ? 2 : 3;
      return [1, rng | (f.typeTranslation ? 0x10 : 0) | (f.sparse ? 0x20 : 0)];
    }
    case 'bus':
      return [2, 0];
    case 'other':
      return [f.resourceType, f.flags];
  }
}

function small(name: number, body: Out): Uint8Array {
  if (body.length > 7) throw new ResourceError(`small descriptor body of ${body.length} bytes`, 'resource template', 0);
  return Uint8Array.from([(name << 3) | body.length, ...body.bytes]);
}

function large(tag: number, body: Out): Uint8Array {
  if (body.length > 0xffff) throw new ResourceError(`large descriptor body of ${body.length} bytes`, 'resource template', 0);
  return Uint8Array.from([tag, body.length & 0xff, body.length >> 8, ...body.bytes]);
}

/** Encodes one descriptor, header included. */
export function encodeResource(r: Resource): Uint8Array {
  if (r.raw !== undefined) return r.raw;
  const o = new Out();
  switch (r.type) {
    case 'Irq':
      o.u16(mask(r.interrupts, 16, 'IRQ'));
      if (r.mode !== undefined) o.u8(modeBits(r.mode, 0, 3, 4, 5));
      return small(SMALL.Irq, o);
    case 'Dma':
      o.u8(mask(r.channels, 8, 'DMA channel')).u8(((r.speed & 3) << 5) | (r.busMaster ? 4 : 0) | (r.transferSize & 3));
      return small(SMALL.Dma, o);
    case 'StartDependentFn':
      if (r.priority !== undefined) o.u8((r.priority.compatibility & 3) | ((r.priority.performance & 3) << 2));
      return small(SMALL.StartDependentFn, o);
    case 'EndDependentFn':
      return small(SMALL.EndDependentFn, o);
    case 'Io':
      o.u8(r.decode16 ? 1 : 0).u16(r.min).u16(r.max).u8(r.alignment).u8(r.length);
      return small(SMALL.Io, o);
    case 'FixedIo':
      o.u16(r.base).u8(r.length);
      return small(SMALL.FixedIo, o);
    case 'FixedDma':
      o.u16(r.requestLine).u16(r.channel).u8(r.width);
      return small(SMALL.FixedDma, o);
    case 'VendorShort':
      return small(SMALL.VendorShort, o.data(r.data));
    case 'Memory24':
      o.u8(r.writable ? 1 : 0).u16(r.min).u16(r.max).u16(r.alignment).u16(r.length);
      return large(LARGE.Memory24, o);
    case 'GenericRegister':
      o.u8(r.spaceId).u8(r.bitWidth).u8(r.bitOffset).u8(r.accessSize).u64(r.address);
      return large(LARGE.GenericRegister, o);
    case 'VendorLong':
      return large(LARGE.VendorLong, o.data(r.data));
    case 'Memory32':
      o.u8(r.writable ? 1 : 0).u32(r.min).u32(r.max).u32(r.alignment).u32(r.length);
      return large(LARGE.Memory32, o);
    case 'FixedMemory32':
      o.u8(r.writable ? 1 : 0).u32(r.base).u32(r.length);
      return large(LARGE.FixedMemory32, o);
    case 'AddressSpace': {
      const [type, flags] = spaceTypeAndFlags(r.space);
      o.u8(type).u8(generalFlags(r)).u8(flags);
      for (const v of [r.granularity, r.min, r.max, r.translation, r.length]) {
        if (r.width === 64) o.u64(v);
        else if (r.width === 32) o.u32(Number(v & 0xffff_ffffn));
        else o.u16(Number(v & 0xffffn));
      }
      if (r.source !== undefined) o.u8(r.source.index).str(r.source.name);
      return large(r.width === 16 ? LARGE.WordSpace : r.width === 32 ? LARGE.DWordSpace : LARGE.QWordSpace, o);
    }
    case 'ExtendedAddressSpace': {
      const [type, flags] = spaceTypeAndFlags(r.space);
      o.u8(type).u8(generalFlags(r)).u8(flags).u8(r.revision).u8(0);
      for (const v of [r.granularity, r.min, r.max, r.translation, r.length, r.typeAttributes]) o.u64(v);
      return large(LARGE.ExtendedSpace, o);
    }
    case 'ExtendedInterrupt':
      o.u8((r.producer ? 0 : 1) | modeBits(r.mode, 1, 2, 3, 4)).u8(r.interrupts.length);
      for (const i of r.interrupts) o.u32(i);
      if (r.source !== undefined) o.u8(r.source.index).str(r.source.name);
      return large(LARGE.ExtendedInterrupt, o);
    case 'GpioInt':
    case 'GpioIo': {
      const [pinsAt, nameAt, vendorAt] = layout(GPIO.size, r.pins, [r.source.name]);
      o.u8(r.revision).u8(r.type === 'GpioInt' ? 0 : 1).u16(r.flags).u16(r.intFlags).u8(r.pinConfig).u16(r.driveStrength);
      o.u16(r.debounceTimeout).u16(pinsAt!).u8(r.source.index).u16(nameAt!).u16(vendorAt!).u16(r.vendorData.length);
      return large(LARGE.Gpio, tail(o, r.pins, [r.source.name], r.vendorData));
    }
    case 'I2cSerialBus':
    case 'SpiSerialBus':
    case 'UartSerialBus':
    case 'Csi2SerialBus':
    case 'SerialBus': {
      const busType = r.type === 'I2cSerialBus' ? 1 : r.type === 'SpiSerialBus' ? 2 : r.type === 'UartSerialBus' ? 3 : r.type === 'Csi2SerialBus' ? 4 : r.busType;
      const d = new Out();
      if (r.type === 'I2cSerialBus') d.u32(r.speed).u16(r.address);
      else if (r.type === 'SpiSerialBus') d.u32(r.speed).u8(r.dataBits).u8(r.phase).u8(r.polarity).u16(r.deviceSelection);
      else if (r.type === 'UartSerialBus') d.u32(r.baudRate).u16(r.rxFifo).u16(r.txFifo).u8(r.parity).u8(r.lines);
      d.data(r.vendorData);
      o.u8(r.revision).u8(r.source.index).u8(busType).u8(r.flags).u16(r.typeFlags).u8(r.typeRevision).u16(d.length);
      o.data(d.bytes).str(r.source.name);
      return large(LARGE.SerialBus, o);
    }
    case 'PinFunction': {
      const [pinsAt, nameAt, vendorAt] = layout(PIN_FUNCTION.size, r.pins, [r.source.name]);
      o.u8(r.revision).u16(r.flags).u8(r.pull).u16(r.functionNumber).u16(pinsAt!).u8(r.source.index).u16(nameAt!).u16(vendorAt!);
      o.u16(r.vendorData.length);
      return large(LARGE.PinFunction, tail(o, r.pins, [r.source.name], r.vendorData));
    }
    case 'PinConfig': {
      const [pinsAt, nameAt, vendorAt] = layout(PIN_CONFIG.size, r.pins, [r.source.name]);
      o.u8(r.revision).u16(r.flags).u8(r.configType).u32(r.configValue).u16(pinsAt!).u8(r.source.index).u16(nameAt!).u16(vendorAt!);
      o.u16(r.vendorData.length);
      return large(LARGE.PinConfig, tail(o, r.pins, [r.source.name], r.vendorData));
    }
    case 'PinGroup': {
      const [pinsAt, labelAt, vendorAt] = layout(PIN_GROUP.size, r.pins, [r.label]);
      o.u8(r.revision).u16(r.flags).u16(pinsAt!).u16(labelAt!).u16(vendorAt!).u16(r.vendorData.length);
      return large(LARGE.PinGroup, tail(o, r.pins, [r.label], r.vendorData));
    }
    case 'PinGroupFunction': {
      const [, nameAt, labelAt, vendorAt] = layout(PIN_GROUP_FUNCTION.size, [], [r.source.name, r.label]);
      o.u8(r.revision).u16(r.flags).u16(r.functionNumber).u8(r.source.index).u16(nameAt!).u16(labelAt!).u16(vendorAt!);
      o.u16(r.vendorData.length);
      return large(LARGE.PinGroupFunction, tail(o, [], [r.source.name, r.label], r.vendorData));
    }
    case 'PinGroupConfig': {
      const [, nameAt, labelAt, vendorAt] = layout(PIN_GROUP_CONFIG.size, [], [r.source.name, r.label]);
      o.u8(r.revision).u16(r.flags).u8(r.configType).u32(r.configValue).u8(r.source.index).u16(nameAt!).u16(labelAt!).u16(vendorAt!);
      o.u16(r.vendorData.length);
      return large(LARGE.PinGroupConfig, tail(o, [], [r.source.name, r.label], r.vendorData));
    }
    case 'ClockInput':
      o.u8(r.revision).u16(r.flags).u16(r.divisor).u32(r.numerator);
      if (r.source !== undefined) o.u8(r.source.index).str(r.source.name);
      return large(LARGE.ClockInput, o);
    case 'Unknown':
      return r.tag >= 0x80 ? large(r.tag, o.data(r.data)) : small(r.tag >> 3, o.data(r.data));
  }
}

/**
 * Offsets from the descriptor's first byte of the canonical layout of the pin and GPIO
 * descriptors: the pin table right after the `fixedBody` bytes, then each string, then the
 * vendor data. Returns [pins, ...strings, vendor].
 */
function layout(fixedBody: number, pins: readonly number[], strings: readonly string[]): number[] {
  const at = [LARGE_HEADER + fixedBody];
  let next = at[0]! + 2 * pins.length;
  for (const s of strings) {
    at.push(next);
    next += s.length + 1;
  }
  at.push(next);
  return at;
}

function tail(o: Out, pins: readonly number[], strings: readonly string[], vendorData: Uint8Array): Out {
  for (const p of pins) o.u16(p);
  for (const s of strings) o.str(s);
  return o.data(vendorData);
}

function generalFlags(r: { producer: boolean; subtractive: boolean; minFixed: boolean; maxFixed: boolean }): number {
  return (r.producer ? 0 : 1) | (r.subtractive ? 2 : 0) | (r.minFixed ? 4 : 0) | (r.maxFixed ? 8 : 0);
}

/** Encodes a template: descriptors, then the EndTag (checksum 0 unless given), then any trailing bytes. */
export function encodeResources(template: ResourceTemplate | readonly Resource[]): Uint8Array {
  const t: ResourceTemplate = isTemplate(template) ? template : { resources: template, end: { checksum: 0 } };
  const parts = t.resources.map(encodeResource);
  const end = t.end === undefined ? [] : [0x79, t.end.checksum];
  const trailing = t.trailing ?? new Uint8Array(0);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + end.length + trailing.length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(end, at);
  out.set(trailing, at + end.length);
  return out;
}

function isTemplate(t: ResourceTemplate | readonly Resource[]): t is ResourceTemplate {
  return !Array.isArray(t);
}

/** True when `bytes` is a well-formed template ending in an EndTag (ignoring trailing zeros). */
export function isResourceTemplate(bytes: Uint8Array): boolean {
  try {
    const t = decodeResources(bytes);
    return t.end !== undefined && (t.trailing ?? []).every((b) => b === 0);
  } catch {
    return false;
  }
}
