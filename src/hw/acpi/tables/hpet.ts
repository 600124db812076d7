import { ByteReader, ByteWriter, type GenericAddress, gas, struct, u16, u32, u8 } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { trailingOf } from './subtables.js';

/** HPET: one High Precision Event Timer block. */
export interface Hpet {
  kind: 'hpet';
  header: TableHeader;
  /** The block's capabilities ID: vendor, comparator count, counter size, legacy routing. */
  eventTimerBlockId: number;
  baseAddress: GenericAddress;
  hpetNumber: number;
  minimumTick: number;
  /** Bits 0-3: page protection (0 none, 1 4K, 2 64K); bits 4-7 OEM attributes. */
  pageProtection: number;
  trailing?: Uint8Array;
}

const HPET_BODY = struct<Omit<Hpet, 'kind' | 'header' | 'trailing'>>({
  eventTimerBlockId: u32,
  baseAddress: gas,
  hpetNumber: u8,
  minimumTick: u16,
  pageProtection: u8,
});

export function decodeHpet(r: ByteReader, header: TableHeader): Hpet {
  const { value, next } = HPET_BODY.decode(r, HEADER_SIZE, r.length, 'HPET');
  const out: Hpet = { kind: 'hpet', header, ...value };
  const trailing = trailingOf(r, next, r.length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function encodeHpetBody(w: ByteWriter, t: Hpet): void {
  HPET_BODY.encode(w, t, '');
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}
