import { ByteReader, ByteWriter, type GenericAddress, gas, struct, u16, u32, u8 } from './binary.js';
import type { TableHeader } from './header.js';
import { decodeStructTable, encodeStructTable } from './subtables.js';

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
  return { kind: 'hpet', header, ...decodeStructTable(HPET_BODY, r, 'HPET') };
}

export function encodeHpetBody(w: ByteWriter, t: Hpet): void {
  encodeStructTable(HPET_BODY, w, t);
}
