import { ByteReader, ByteWriter, Codec, Struct, join, u16, u8 } from './binary.js';
import { HEADER_SIZE } from './header.js';

/**
 * Shared machinery for tables made of typed subtables (MADT, SRAT, DMAR, …): a registry of
 * the subtable types a table knows (code, model name, label, field layout), decoding a
 * subtable's fields plus any bytes beyond them, and encoding with a computed length.
 */

export interface SubtableKind {
  readonly code: number;
  /** The model's discriminant: `localApic`, `ioApic`, … */
  readonly type: string;
  /** The specification's name, for listings. */
  readonly label: string;
  /** Fields after the subtable's own header (type and length). */
  readonly body: Struct<object>;
}

export class SubtableRegistry<K extends SubtableKind = SubtableKind> {
  private readonly byCode = new Map<number, K>();
  private readonly byType = new Map<string, K>();
  constructor(kinds: readonly K[]) {
    for (const k of kinds) {
      this.byCode.set(k.code, k);
      this.byType.set(k.type, k);
    }
  }
  code(code: number): K | undefined {
    return this.byCode.get(code);
  }
  type(type: string): K | undefined {
    return this.byType.get(type);
  }
  label(code: number): string {
    return this.byCode.get(code)?.label ?? 'unknown';
  }
}

/** A subtable of a type hvmpt does not model: kept verbatim. */
export interface UnknownSubtable {
  type: 'unknown';
  code: number;
  /** Everything after the subtable's type and length fields. */
  data: Uint8Array;
}

/**
 * Decodes a known subtable body in `[start, end)` into `{ type, ...fields, trailing? }`.
 * Bytes past the known fields (a newer revision's additions) are kept as `trailing`.
 */
export function decodeBody(kind: SubtableKind, r: ByteReader, start: number, end: number, what: string): Record<string, unknown> {
  const { value, next } = kind.body.decode(r, start, end, what);
  const out: Record<string, unknown> = { type: kind.type, ...value };
  if (next < end) out.trailing = r.copy(next, end);
  return out;
}

/** Writes the body fields and trailing bytes of a known subtable. */
export function encodeBody(kind: SubtableKind, w: ByteWriter, entry: Record<string, unknown>, path: string): void {
  kind.body.encode(w, entry, path);
  const trailing = entry.trailing;
  if (trailing !== undefined) w.putBytes(trailing as Uint8Array, path, 'trailing');
}

/** Header layouts of the common subtable forms. */
export interface HeaderForm {
  readonly typeCodec: Codec<number>;
  readonly lengthCodec: Codec<number>;
  /** Bytes of type + length (the body starts here). */
  readonly size: number;
}

/** MADT, SRAT, DMAR device scopes: 1-byte type, 1-byte length. */
export const BYTE_HEADER: HeaderForm = { typeCodec: u8, lengthCodec: u8, size: 2 };
/** DMAR remapping structures: 2-byte type, 2-byte length. */
export const WORD_HEADER: HeaderForm = { typeCodec: u16, lengthCodec: u16, size: 4 };

export function readHeaderLength(form: HeaderForm) {
  return (r: ByteReader, at: number): number => form.lengthCodec.read(r.view, at + form.typeCodec.size);
}

/**
 * Writes `type`, a placeholder length, then `body()`, and patches the length with what was
 * written (failing when it does not fit the length field).
 */
export function encodeWithLength(
  w: ByteWriter,
  form: HeaderForm,
  code: number,
  path: string,
  note: string,
  body: () => void,
  typeField = 'type',
): void {
  const start = w.pos;
  w.put(form.typeCodec, code, path, typeField, note);
  const lengthAt = w.pos;
  w.put(form.lengthCodec, 0, path, 'length');
  body();
  const length = w.pos - start;
  const max = form.lengthCodec.size === 1 ? 0xff : 0xffff;
  if (length > max) w.fail(path, `is ${length} bytes, more than its ${form.lengthCodec.size * 8}-bit length field can say`);
  w.patch(lengthAt, form.lengthCodec, length, join(path, 'length'));
}

/** Decodes one subtable with a type/length header: a known kind or an UnknownSubtable. */
export function decodeSubtable(
  registry: SubtableRegistry,
  form: HeaderForm,
  r: ByteReader,
  at: number,
  length: number,
  what: string,
): Record<string, unknown> {
  const code = form.typeCodec.read(r.view, at);
  const kind = registry.code(code);
  if (kind === undefined) return { type: 'unknown', code, data: r.copy(at + form.size, at + length) };
  return decodeBody(kind, r, at + form.size, at + length, `${what} (${kind.label})`);
}

/** Encodes one subtable decoded by decodeSubtable (or built by hand). */
export function encodeSubtable(
  registry: SubtableRegistry,
  form: HeaderForm,
  w: ByteWriter,
  entry: { readonly type: string },
  path: string,
): void {
  if (entry.type === 'unknown') {
    const u = entry as UnknownSubtable;
    encodeWithLength(w, form, u.code, path, 'unknown', () => w.putBytes(u.data, path, 'data'));
    return;
  }
  const kind = registry.type(entry.type);
  if (kind === undefined) w.fail(join(path, 'type'), `unknown subtable type ${JSON.stringify(entry.type)}`);
  encodeWithLength(w, form, kind.code, path, kind.label, () => encodeBody(kind, w, entry as Record<string, unknown>, path));
}

/** Keeps bytes in `[from, end)` when there are any. */
export function trailingOf(r: ByteReader, from: number, end: number): Uint8Array | undefined {
  return from < end ? r.copy(from, end) : undefined;
}

/**
 * Tables that are one struct after the header (FADT, HPET): the struct's fields, then whatever
 * the table's length covers beyond them as `trailing`.
 */
export function decodeStructTable<T extends object>(body: Struct<T>, r: ByteReader, what: string): T & { trailing?: Uint8Array } {
  const { value, next } = body.decode(r, HEADER_SIZE, r.length, what);
  const trailing = trailingOf(r, next, r.length);
  return trailing === undefined ? value : { ...value, trailing };
}

export function encodeStructTable<T extends object>(body: Struct<T>, w: ByteWriter, t: T & { trailing?: Uint8Array }): void {
  body.encode(w, t, '');
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}
