import { ByteReader, ByteWriter, reserved, struct, u16, u32, u64, u8 } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { trailingOf } from './subtables.js';

/** MCFG: the PCI Express ECAM windows, one allocation per segment/bus range. */
export interface Mcfg {
  kind: 'mcfg';
  header: TableHeader;
  reserved?: bigint;
  allocations: McfgAllocation[];
  /** Bytes after the last whole allocation. */
  trailing?: Uint8Array;
}

export interface McfgAllocation {
  /** ECAM base: bus 0's configuration space, even when startBus is not 0. */
  baseAddress: bigint;
  segment: number;
  startBus: number;
  endBus: number;
  reserved?: number;
}

const ALLOCATION = struct<McfgAllocation>({ baseAddress: u64, segment: u16, startBus: u8, endBus: u8, reserved: reserved(u32) });
const ALLOCATIONS_AT = HEADER_SIZE + 8;

export function decodeMcfg(r: ByteReader, header: TableHeader): Mcfg {
  if (r.length < ALLOCATIONS_AT) r.fail(HEADER_SIZE, `MCFG needs ${ALLOCATIONS_AT} bytes before its allocations, table has ${r.length}`);
  const allocations: McfgAllocation[] = [];
  let at = ALLOCATIONS_AT;
  for (; at + ALLOCATION.maxSize <= r.length; at += ALLOCATION.maxSize) {
    allocations.push(ALLOCATION.decode(r, at, r.length, `MCFG allocation ${allocations.length}`).value);
  }
  const out: Mcfg = { kind: 'mcfg', header, reserved: r.u64(HEADER_SIZE), allocations };
  const trailing = trailingOf(r, at, r.length);
  if (trailing !== undefined) out.trailing = trailing;
  return out;
}

export function encodeMcfgBody(w: ByteWriter, t: Mcfg): void {
  w.put(u64, t.reserved ?? 0n, '', 'reserved');
  t.allocations.forEach((a, i) => ALLOCATION.encode(w, a, `allocations[${i}]`));
  if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
}
