import { ByteReader, ByteWriter, type Codec, u32, u64 } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { trailingOf } from './subtables.js';

/** RSDT: 32-bit physical addresses of the other tables (ACPI 1.0). */
export interface Rsdt {
  kind: 'rsdt';
  header: TableHeader;
  entries: number[];
  /** Bytes after the last whole entry (a length not a multiple of 4). */
  trailing?: Uint8Array;
}

/** XSDT: 64-bit physical addresses of the other tables (ACPI 2.0+). */
export interface Xsdt {
  kind: 'xsdt';
  header: TableHeader;
  entries: bigint[];
  trailing?: Uint8Array;
}

/** The entries of an RSDT or XSDT and any stray bytes after them. */
function decodeEntries<T>(r: ByteReader, codec: Codec<T>): { entries: T[]; trailing?: Uint8Array } {
  const entries: T[] = [];
  let at = HEADER_SIZE;
  for (; at + codec.size <= r.length; at += codec.size) entries.push(codec.read(r.view, at));
  const trailing = trailingOf(r, at, r.length);
  return trailing === undefined ? { entries } : { entries, trailing };
}

function encodeEntries<T>(w: ByteWriter, codec: Codec<T>, t: { entries: readonly T[]; trailing?: Uint8Array }): void {
  t.entries.forEach((e, i) => w.put(codec, e, '', `entries[${i}]`));
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}

export function decodeRsdt(r: ByteReader, header: TableHeader): Rsdt {
  return { kind: 'rsdt', header, ...decodeEntries(r, u32) };
}

export function decodeXsdt(r: ByteReader, header: TableHeader): Xsdt {
  return { kind: 'xsdt', header, ...decodeEntries(r, u64) };
}

export function encodeRsdtBody(w: ByteWriter, t: Rsdt): void {
  encodeEntries(w, u32, t);
}

export function encodeXsdtBody(w: ByteWriter, t: Xsdt): void {
  encodeEntries(w, u64, t);
}
