import { ByteReader, ByteWriter, bytes, reserved, struct, u16, u24, u32, u64, u8, walkSubtables } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { BYTE_HEADER, SubtableRegistry, decodeSubtable, encodeSubtable, readHeaderLength, type UnknownSubtable } from './subtables.js';

/** SRAT: which NUMA proximity domain each processor, memory range and device belongs to. */
export interface Srat {
  kind: 'srat';
  header: TableHeader;
  /** "Reserved, must be 1" for backward compatibility. */
  tableRevision: number;
  reserved?: bigint;
  entries: SratEntry[];
}

interface Trailing {
  trailing?: Uint8Array;
}

export const SRAT_ENABLED = 1;

export interface SratProcessorAffinity extends Trailing {
  type: 'processorAffinity';
  /** Bits 0-7 of the proximity domain. */
  proximityDomainLow: number;
  apicId: number;
  flags: number;
  localSapicEid: number;
  /** Bits 8-31 of the proximity domain. */
  proximityDomainHigh: number;
  clockDomain: number;
}
export interface SratMemoryAffinity extends Trailing {
  type: 'memoryAffinity';
  proximityDomain: number;
  reserved?: number;
  baseAddress: bigint;
  length: bigint;
  reserved2?: number;
  /** Bit 0 enabled, 1 hot-pluggable, 2 non-volatile. */
  flags: number;
  reserved3?: bigint;
}
export interface SratX2apicAffinity extends Trailing {
  type: 'x2apicAffinity';
  reserved?: number;
  proximityDomain: number;
  x2apicId: number;
  flags: number;
  clockDomain: number;
  reserved2?: number;
}
export interface SratGiccAffinity extends Trailing {
  type: 'giccAffinity';
  proximityDomain: number;
  processorUid: number;
  flags: number;
  clockDomain: number;
}
export interface SratGicItsAffinity extends Trailing {
  type: 'gicItsAffinity';
  proximityDomain: number;
  reserved?: number;
  itsId: number;
}
/** Generic initiator (type 5) and generic port (type 6) share one layout. */
export interface SratGenericAffinity extends Trailing {
  type: 'genericInitiatorAffinity' | 'genericPortAffinity';
  reserved?: number;
  /** 0: ACPI device handle (HID + UID), 1: PCI device handle (segment + BDF). */
  deviceHandleType: number;
  proximityDomain: number;
  deviceHandle: Uint8Array;
  flags: number;
  reserved2?: number;
}

export type SratEntry =
  | SratProcessorAffinity
  | SratMemoryAffinity
  | SratX2apicAffinity
  | SratGiccAffinity
  | SratGicItsAffinity
  | SratGenericAffinity
  | UnknownSubtable;

type Body<E> = Omit<E, 'type' | 'trailing'>;

const GENERIC = struct<Body<SratGenericAffinity>>({
  reserved: reserved(u8),
  deviceHandleType: u8,
  proximityDomain: u32,
  deviceHandle: bytes(16),
  flags: u32,
  reserved2: reserved(u32),
});

export const SRAT_KINDS = new SubtableRegistry([
  {
    code: 0,
    type: 'processorAffinity',
    label: 'Processor Local APIC/SAPIC Affinity',
    body: struct<Body<SratProcessorAffinity>>({ proximityDomainLow: u8, apicId: u8, flags: u32, localSapicEid: u8, proximityDomainHigh: u24, clockDomain: u32 }),
  },
  {
    code: 1,
    type: 'memoryAffinity',
    label: 'Memory Affinity',
    body: struct<Body<SratMemoryAffinity>>({
      proximityDomain: u32,
      reserved: reserved(u16),
      baseAddress: u64,
      length: u64,
      reserved2: reserved(u32),
      flags: u32,
      reserved3: reserved(u64),
    }),
  },
  {
    code: 2,
    type: 'x2apicAffinity',
    label: 'Processor Local x2APIC Affinity',
    body: struct<Body<SratX2apicAffinity>>({ reserved: reserved(u16), proximityDomain: u32, x2apicId: u32, flags: u32, clockDomain: u32, reserved2: reserved(u32) }),
  },
  { code: 3, type: 'giccAffinity', label: 'GICC Affinity', body: struct<Body<SratGiccAffinity>>({ proximityDomain: u32, processorUid: u32, flags: u32, clockDomain: u32 }) },
  { code: 4, type: 'gicItsAffinity', label: 'GIC ITS Affinity', body: struct<Body<SratGicItsAffinity>>({ proximityDomain: u32, reserved: reserved(u16), itsId: u32 }) },
  { code: 5, type: 'genericInitiatorAffinity', label: 'Generic Initiator Affinity', body: GENERIC },
  { code: 6, type: 'genericPortAffinity', label: 'Generic Port Affinity', body: GENERIC },
]);

const ENTRIES_AT = HEADER_SIZE + 12;

export function decodeSrat(r: ByteReader, header: TableHeader): Srat {
  if (r.length < ENTRIES_AT) r.fail(HEADER_SIZE, `SRAT needs ${ENTRIES_AT} bytes before its entries, table has ${r.length}`);
  const entries: SratEntry[] = [];
  walkSubtables(r, ENTRIES_AT, r.length, { headerSize: 2, readLength: readHeaderLength(BYTE_HEADER), what: 'SRAT entry' }, (at, length, i) => {
    entries.push(decodeSubtable(SRAT_KINDS, BYTE_HEADER, r, at, length, `SRAT entry ${i}`) as unknown as SratEntry);
  });
  return { kind: 'srat', header, tableRevision: r.u32(HEADER_SIZE), reserved: r.u64(HEADER_SIZE + 4), entries };
}

export function encodeSratBody(w: ByteWriter, t: Srat): void {
  w.put(u32, t.tableRevision, '', 'tableRevision');
  w.put(u64, t.reserved ?? 0n, '', 'reserved');
  t.entries.forEach((e, i) => encodeSubtable(SRAT_KINDS, BYTE_HEADER, w, e, `entries[${i}]`));
}
