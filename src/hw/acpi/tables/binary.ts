import { AcpiEncodeError, AcpiParseError } from '../errors.js';

/**
 * The little binary toolkit every table codec is built from: fixed-size field codecs, structs
 * declared as ordered field lists (offsets follow from the order), a bounds-checked reader that
 * throws AcpiParseError naming the offset, and a growing writer that can record a trace of
 * every field it writes (offset, size, model path, value) — the trace is what `acpi decode`
 * prints and what the tests hold against ACPICA's own decode.
 */

/** A scalar as it appears in a trace. */
export type TraceValue = number | bigint | string | Uint8Array;

export interface TraceEntry {
  /** Byte offset inside the table. */
  readonly offset: number;
  readonly size: number;
  /** Model path: `entries[2].apicId`, `header.length`. */
  readonly path: string;
  readonly value: TraceValue;
  /** A word about the value, e.g. the name of a subtable type. */
  readonly note?: string;
}

export interface Codec<T> {
  readonly size: number;
  read(view: DataView, offset: number): T;
  write(view: DataView, offset: number, value: T): void;
  /** Undefined when `value` can be written; otherwise what is wrong with it. */
  check(value: unknown): string | undefined;
  /** The value written for an omitted reserved field. */
  readonly zero: T;
  /** Composite values (a GAS) trace as their parts. */
  parts?(value: T): ReadonlyArray<{ offset: number; size: number; name: string; value: TraceValue }>;
}

function intCodec(size: 1 | 2 | 4): Codec<number> {
  const max = size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
  return {
    size,
    zero: 0,
    read: size === 1 ? (v, o) => v.getUint8(o) : size === 2 ? (v, o) => v.getUint16(o, true) : (v, o) => v.getUint32(o, true),
    write:
      size === 1
        ? (v, o, x) => v.setUint8(o, x)
        : size === 2
          ? (v, o, x) => v.setUint16(o, x, true)
          : (v, o, x) => v.setUint32(o, x, true),
    check: (x) =>
      typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max
        ? undefined
        : `expected an integer 0..0x${max.toString(16)}, got ${describeBad(x)}`,
  };
}

function describeBad(x: unknown): string {
  if (typeof x === 'bigint') return `${x}n`;
  if (typeof x === 'string') return JSON.stringify(x);
  if (x instanceof Uint8Array) return `${x.length} bytes`;
  return String(x);
}

export const u8: Codec<number> = intCodec(1);
export const u16: Codec<number> = intCodec(2);
export const u32: Codec<number> = intCodec(4);

/** 24-bit little-endian (SRAT's high proximity-domain bytes). */
export const u24: Codec<number> = {
  size: 3,
  zero: 0,
  read: (v, o) => v.getUint8(o) | (v.getUint8(o + 1) << 8) | (v.getUint8(o + 2) << 16),
  write: (v, o, x) => {
    v.setUint8(o, x & 0xff);
    v.setUint8(o + 1, (x >>> 8) & 0xff);
    v.setUint8(o + 2, (x >>> 16) & 0xff);
  },
  check: (x) =>
    typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xff_ffff
      ? undefined
      : `expected an integer 0..0xffffff, got ${describeBad(x)}`,
};

/** 64-bit values are bigints: addresses must survive exactly. */
export const u64: Codec<bigint> = {
  size: 8,
  zero: 0n,
  read: (v, o) => v.getBigUint64(o, true),
  write: (v, o, x) => v.setBigUint64(o, x, true),
  check: (x) =>
    typeof x === 'bigint' && x >= 0n && x <= 0xffff_ffff_ffff_ffffn
      ? undefined
      : `expected a 64-bit unsigned bigint, got ${describeBad(x)}`,
};

/** `n` raw bytes (reserved areas, opaque identifiers). */
export function bytes(n: number): Codec<Uint8Array> {
  return {
    size: n,
    zero: new Uint8Array(n),
    read: (v, o) => new Uint8Array(v.buffer.slice(v.byteOffset + o, v.byteOffset + o + n)),
    write: (v, o, x) => new Uint8Array(v.buffer, v.byteOffset + o, n).set(x),
    check: (x) => (x instanceof Uint8Array && x.length === n ? undefined : `expected ${n} bytes, got ${describeBad(x)}`),
  };
}

/** Byte string <-> latin1 text: one character per byte, so any bytes survive a round trip. */
export function latin1Decode(data: Uint8Array, start = 0, end: number = data.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(data[i]!);
  return s;
}

export function latin1Encode(text: string): Uint8Array | undefined {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return undefined;
    out[i] = c;
  }
  return out;
}

/**
 * A fixed-width text field (signature, OEM ID). Decoding keeps every byte; encoding a shorter
 * string pads with `pad` (ACPI IDs are conventionally space-padded).
 */
export function text(n: number, pad = ' '): Codec<string> {
  return {
    size: n,
    zero: pad.repeat(n),
    read: (v, o) => {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(v.getUint8(o + i));
      return s;
    },
    write: (v, o, x) => {
      for (let i = 0; i < n; i++) v.setUint8(o + i, i < x.length ? x.charCodeAt(i) : pad.charCodeAt(0));
    },
    check: (x) => {
      if (typeof x !== 'string') return `expected text, got ${describeBad(x)}`;
      if (x.length > n) return `${JSON.stringify(x)} is longer than ${n} bytes`;
      for (let i = 0; i < x.length; i++) if (x.charCodeAt(i) > 0xff) return `${JSON.stringify(x)} has a character that is not one byte`;
      return undefined;
    },
  };
}

/** Generic Address Structure: where a register block lives (I/O port, memory, PCI config, …). */
export interface GenericAddress {
  /** 0 system memory, 1 system I/O, 2 PCI config, 3 embedded controller, 4 SMBus, 0x7f FFixedHW, … */
  spaceId: number;
  bitWidth: number;
  bitOffset: number;
  /** 0 undefined (legacy), 1 byte, 2 word, 3 dword, 4 qword. */
  accessSize: number;
  address: bigint;
}

export const gas: Codec<GenericAddress> = {
  size: 12,
  zero: { spaceId: 0, bitWidth: 0, bitOffset: 0, accessSize: 0, address: 0n },
  read: (v, o) => ({
    spaceId: v.getUint8(o),
    bitWidth: v.getUint8(o + 1),
    bitOffset: v.getUint8(o + 2),
    accessSize: v.getUint8(o + 3),
    address: v.getBigUint64(o + 4, true),
  }),
  write: (v, o, x) => {
    v.setUint8(o, x.spaceId);
    v.setUint8(o + 1, x.bitWidth);
    v.setUint8(o + 2, x.bitOffset);
    v.setUint8(o + 3, x.accessSize);
    v.setBigUint64(o + 4, x.address, true);
  },
  check: (x) => {
    if (typeof x !== 'object' || x === null) return `expected a generic address, got ${describeBad(x)}`;
    const g = x as Partial<Record<keyof GenericAddress, unknown>>;
    for (const k of ['spaceId', 'bitWidth', 'bitOffset', 'accessSize'] as const) {
      const bad = u8.check(g[k]);
      if (bad !== undefined) return `${k}: ${bad}`;
    }
    const bad = u64.check(g.address);
    return bad === undefined ? undefined : `address: ${bad}`;
  },
  parts: (x) => [
    { offset: 0, size: 1, name: 'spaceId', value: x.spaceId },
    { offset: 1, size: 1, name: 'bitWidth', value: x.bitWidth },
    { offset: 2, size: 1, name: 'bitOffset', value: x.bitOffset },
    { offset: 3, size: 1, name: 'accessSize', value: x.accessSize },
    { offset: 4, size: 8, name: 'address', value: x.address },
  ],
};

// ---------------------------------------------------------------------------------------------
// Structs

/**
 * How a struct field behaves:
 * - required: always present;
 * - reserved: always present in the bytes, optional in a model built by hand (written as zero);
 * - tail: present only when the structure's length covers it (revision-dependent fields such as
 *   the FADT's X_ blocks or the GICC's SPE interrupt); encoding writes tail fields up to the
 *   last one given.
 */
export type FieldMode = 'required' | 'reserved' | 'tail';

export interface FieldDef<T> {
  readonly codec: Codec<T>;
  readonly mode: FieldMode;
}

export function reserved<T>(codec: Codec<T>): FieldDef<T> {
  return { codec, mode: 'reserved' };
}

export function tail<T>(codec: Codec<T>): FieldDef<T> {
  return { codec, mode: 'tail' };
}

type SpecEntry<T> = Codec<T> | FieldDef<T>;

/** A field list for the model type T: one entry per property, in byte order. */
export type StructSpec<T> = { readonly [K in keyof T]-?: SpecEntry<NonNullable<T[K]>> };

interface LaidOutField {
  readonly name: string;
  readonly codec: Codec<unknown>;
  readonly mode: FieldMode;
  /** Offset from the start of the struct. */
  readonly offset: number;
}

export interface Struct<T> {
  readonly fields: readonly LaidOutField[];
  /** Bytes of the fields that are always present. */
  readonly minSize: number;
  /** Bytes with every tail field. */
  readonly maxSize: number;
  /** Reads the struct at `offset`, taking tail fields while they fit before `end`. Returns the value and where it ended. */
  decode(r: ByteReader, offset: number, end: number, what: string): { value: T; next: number };
  /** Writes the struct at the writer's position. */
  encode(w: ByteWriter, value: T, path: string): void;
}

function isFieldDef(entry: SpecEntry<unknown>): entry is FieldDef<unknown> {
  return 'mode' in entry && 'codec' in entry;
}

export function struct<T extends object>(spec: StructSpec<T>): Struct<T> {
  const fields: LaidOutField[] = [];
  let offset = 0;
  let minSize = 0;
  let seenTail = false;
  for (const [name, entry] of Object.entries(spec) as Array<[string, SpecEntry<unknown>]>) {
    const def: FieldDef<unknown> = isFieldDef(entry) ? entry : { codec: entry, mode: 'required' };
    if (def.mode === 'tail') seenTail = true;
    else if (seenTail) throw new Error(`struct field ${name} follows a tail field`);
    fields.push({ name, codec: def.codec, mode: def.mode, offset });
    offset += def.codec.size;
    if (def.mode !== 'tail') minSize = offset;
  }
  const maxSize = offset;
  return {
    fields,
    minSize,
    maxSize,
    decode(r, start, end, what) {
      if (start + minSize > end) {
        r.fail(start, `${what} needs ${minSize} bytes, only ${Math.max(0, end - start)} there`);
      }
      const out: Record<string, unknown> = {};
      let next = start;
      for (const f of fields) {
        const at = start + f.offset;
        if (at + f.codec.size > end) break; // only tail fields can stop short
        out[f.name] = f.codec.read(r.view, at);
        next = at + f.codec.size;
      }
      return { value: out as T, next };
    },
    encode(w, value, path) {
      const rec = value as Record<string, unknown>;
      let lastTail = -1;
      fields.forEach((f, i) => {
        if (f.mode === 'tail' && rec[f.name] !== undefined) lastTail = i;
      });
      fields.forEach((f, i) => {
        if (f.mode === 'tail' && i > lastTail) return;
        let v = rec[f.name];
        if (v === undefined) {
          if (f.mode === 'required') w.fail(join(path, f.name), 'is missing');
          v = f.codec.zero;
        }
        w.put(f.codec, v, path, f.name);
      });
    },
  };
}

export function join(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

// ---------------------------------------------------------------------------------------------
// Reading

export class ByteReader {
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    /** Names the input in errors: `dump.txt: APIC`. */
    readonly input: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  fail(offset: number, message: string): never {
    throw new AcpiParseError(message, { input: this.input, at: `offset 0x${offset.toString(16)}` });
  }

  u8(o: number): number {
    return this.view.getUint8(o);
  }
  u16(o: number): number {
    return this.view.getUint16(o, true);
  }
  u32(o: number): number {
    return this.view.getUint32(o, true);
  }
  u64(o: number): bigint {
    return this.view.getBigUint64(o, true);
  }

  /** A copy, so models never alias the input. */
  copy(start: number, end: number): Uint8Array {
    return this.bytes.slice(start, end);
  }
}

/**
 * Walks a list of subtables in `[start, end)`, each carrying its own length. Guards the classic
 * traps: a length smaller than the subtable's header (0 would loop forever), a length that runs
 * past `end`, and stray bytes too few for a header.
 */
export function walkSubtables(
  r: ByteReader,
  start: number,
  end: number,
  layout: { readonly headerSize: number; readLength(r: ByteReader, at: number): number; readonly what: string },
  visit: (offset: number, length: number, index: number) => void,
): void {
  let at = start;
  let index = 0;
  while (at < end) {
    if (at + layout.headerSize > end) {
      const after = index === 0 ? 'where the first' : `after ${layout.what} ${index - 1}, too few for another`;
      r.fail(at, `${end - at} stray byte(s) ${after} ${layout.what} header should be`);
    }
    const length = layout.readLength(r, at);
    if (length < layout.headerSize) {
      r.fail(at, `${layout.what} ${index} has length ${length}, less than its ${layout.headerSize}-byte header`);
    }
    if (at + length > end) {
      r.fail(at, `${layout.what} ${index} has length ${length}, running ${at + length - end} byte(s) past the end of its container`);
    }
    visit(at, length, index);
    at += length;
    index++;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(
    /** Names the table in errors. */
    readonly input: string,
    /** When given, every field written is recorded here. */
    readonly trace?: TraceEntry[],
    initialSize = 256,
  ) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  fail(path: string, message: string): never {
    throw new AcpiEncodeError(message, { input: this.input, at: path });
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Writes one field at the current position after checking its value. */
  put<T>(codec: Codec<T>, value: unknown, path: string, name: string, note?: string): void {
    const bad = codec.check(value);
    if (bad !== undefined) this.fail(join(path, name), bad);
    this.ensure(codec.size);
    const at = this.pos;
    codec.write(this.view, at, value as T);
    this.pos += codec.size;
    // The trace shows what the bytes hold (a short OEM ID padded), read back from them.
    if (this.trace !== undefined) this.record(codec, codec.read(this.view, at), at, join(path, name), note);
  }

  /** Writes raw bytes (AML, trailing bytes a model keeps verbatim). */
  putBytes(data: Uint8Array, path: string, name: string): void {
    if (!(data instanceof Uint8Array)) this.fail(join(path, name), `expected bytes, got ${describeBad(data)}`);
    this.ensure(data.length);
    const at = this.pos;
    this.buf.set(data, at);
    this.pos += data.length;
    if (this.trace !== undefined && data.length > 0) {
      this.trace.push({ offset: at, size: data.length, path: join(path, name), value: data });
    }
  }

  /** Overwrites a field written earlier (lengths and checksums known only at the end). */
  patch<T>(at: number, codec: Codec<T>, value: T, path: string, note?: string): void {
    const bad = codec.check(value);
    if (bad !== undefined) this.fail(path, bad);
    codec.write(this.view, at, value);
    if (this.trace !== undefined) {
      const i = this.trace.findIndex((e) => e.offset === at && e.path === path);
      if (i >= 0) this.trace.splice(i, 1);
      this.record(codec, value, at, path, note);
    }
  }

  private record<T>(codec: Codec<T>, value: T, at: number, path: string, note: string | undefined): void {
    const trace = this.trace!;
    if (codec.parts !== undefined) {
      for (const p of codec.parts(value)) trace.push({ offset: at + p.offset, size: p.size, path: `${path}.${p.name}`, value: p.value });
    } else {
      trace.push(note === undefined ? { offset: at, size: codec.size, path, value: value as TraceValue } : { offset: at, size: codec.size, path, value: value as TraceValue, note });
    }
  }

  /** The bytes written so far, as a fresh array. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Direct access for checksums over what was written. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}
