import { ByteReader, ByteWriter, u32, u64 } from './binary.js';
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

export function decodeRsdt(r: ByteReader, header: TableHeader): Rsdt {
  const entries: number[] = [];
  let at = HEADER_SIZE;
  for (; at + 4 <= r.length; at += 4) entries.push(r.u32(at));
  const out: Rsdt = { kind: 'rsdt', header, entries };
  const trailing = trailingOf(r, at, r.length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function decodeXsdt(r: ByteReader, header: TableHeader): Xsdt {
  const entries: bigint[] = [];
  let at = HEADER_SIZE;
  for (; at + 8 <= r.length; at += 8) entries.push(r.u64(at));
  const out: Xsdt = { kind: 'xsdt', header, entries };
  const trailing = trailingOf(r, at, r.length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function encodeRsdtBody(w: ByteWriter, t: Rsdt): void {
  t.entries.forEach((e, i) => w.put(u32, e, '', `entries[${i}]`));
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}

export function encodeXsdtBody(w: ByteWriter, t: Xsdt): void {
  t.entries.forEach((e, i) => w.put(u64, e, '', `entries[${i}]`));
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}
