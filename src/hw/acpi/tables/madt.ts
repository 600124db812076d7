import { ByteReader, ByteWriter, bytes, reserved, struct, tail, u16, u32, u64, u8, walkSubtables } from './binary.js';
import type { TableHeader } from './header.js';
import { BYTE_HEADER, SubtableRegistry, decodeSubtable, encodeSubtable, readHeaderLength, type UnknownSubtable } from './subtables.js';

/**
 * MADT ("APIC"): the interrupt controllers. x86 (local APIC / x2APIC, I/O APIC, overrides,
 * NMIs), IA-64 SAPIC, Arm GIC, and the multiprocessor wakeup mailbox are typed; anything
 * else is kept verbatim as an UnknownSubtable. Every entry may carry `trailing` bytes its
 * declared length covers beyond the fields known here.
 */
export interface Madt {
  kind: 'madt';
  header: TableHeader;
  localApicAddress: number;
  /** Bit 0 PCAT_COMPAT: the machine also has dual 8259 PICs. */
  flags: number;
  entries: MadtEntry[];
}

export const MADT_PCAT_COMPAT = 1;
/** Local APIC / x2APIC / GICC flags. */
export const MADT_CPU_ENABLED = 1;
export const MADT_CPU_ONLINE_CAPABLE = 2;

/**
 * MPS INTI flags (overrides, NMI entries): polarity in bits 0-1 (0 conforms to the bus,
 * 1 active high, 3 active low), trigger mode in bits 2-3 (0 conforms, 1 edge, 3 level).
 */
export function intiFlags(polarity: 'conforms' | 'high' | 'low', trigger: 'conforms' | 'edge' | 'level'): number {
  const p = polarity === 'conforms' ? 0 : polarity === 'high' ? 1 : 3;
  const t = trigger === 'conforms' ? 0 : trigger === 'edge' ? 1 : 3;
  return p | (t << 2);
}

interface Trailing {
  /** Bytes inside the entry's length beyond the fields modelled here. */
  trailing?: Uint8Array;
}

export interface MadtLocalApic extends Trailing {
  type: 'localApic';
  processorUid: number;
  apicId: number;
  flags: number;
}
export interface MadtIoApic extends Trailing {
  type: 'ioApic';
  ioApicId: number;
  reserved?: number;
  address: number;
  gsiBase: number;
}
export interface MadtInterruptOverride extends Trailing {
  type: 'interruptOverride';
  /** 0: ISA. */
  bus: number;
  /** The bus-relative IRQ. */
  source: number;
  gsi: number;
  flags: number;
}
export interface MadtNmiSource extends Trailing {
  type: 'nmiSource';
  flags: number;
  gsi: number;
}
export interface MadtLocalApicNmi extends Trailing {
  type: 'localApicNmi';
  /** 0xff: all processors. */
  processorUid: number;
  flags: number;
  lint: number;
}
export interface MadtLocalApicOverride extends Trailing {
  type: 'localApicOverride';
  reserved?: number;
  address: bigint;
}
export interface MadtIoSapic extends Trailing {
  type: 'ioSapic';
  ioApicId: number;
  reserved?: number;
  gsiBase: number;
  address: bigint;
}
export interface MadtLocalSapic extends Trailing {
  type: 'localSapic';
  processorId: number;
  sapicId: number;
  sapicEid: number;
  reserved?: Uint8Array;
  flags: number;
  processorUid: number;
}
export interface MadtPlatformInterruptSource extends Trailing {
  type: 'platformInterruptSource';
  flags: number;
  /** 1 PMI, 2 INIT, 3 corrected platform error. */
  interruptType: number;
  processorId: number;
  processorEid: number;
  ioSapicVector: number;
  gsi: number;
  sourceFlags: number;
}
export interface MadtLocalX2apic extends Trailing {
  type: 'localX2apic';
  reserved?: number;
  x2apicId: number;
  flags: number;
  processorUid: number;
}
export interface MadtLocalX2apicNmi extends Trailing {
  type: 'localX2apicNmi';
  flags: number;
  processorUid: number;
  lint: number;
  reserved?: Uint8Array;
}
/** Arm GIC CPU interface; 40 bytes in ACPI 5.0, 76 in 5.1, 80 in 6.0, 82 in 6.5. */
export interface MadtGicc extends Trailing {
  type: 'gicc';
  reserved?: number;
  cpuInterfaceNumber: number;
  processorUid: number;
  flags: number;
  parkingVersion: number;
  performanceInterrupt: number;
  parkedAddress: bigint;
  baseAddress: bigint;
  gicvBaseAddress?: bigint;
  gichBaseAddress?: bigint;
  vgicMaintenanceInterrupt?: number;
  gicrBaseAddress?: bigint;
  mpidr?: bigint;
  efficiencyClass?: number;
  reserved2?: number;
  speOverflowInterrupt?: number;
  trbeInterrupt?: number;
}
export interface MadtGicd extends Trailing {
  type: 'gicd';
  reserved?: number;
  gicId: number;
  baseAddress: bigint;
  gsiBase: number;
  version?: number;
  reserved2?: Uint8Array;
}
export interface MadtGicMsiFrame extends Trailing {
  type: 'gicMsiFrame';
  reserved?: number;
  msiFrameId: number;
  baseAddress: bigint;
  flags: number;
  spiCount: number;
  spiBase: number;
}
export interface MadtGicr extends Trailing {
  type: 'gicr';
  flags: number;
  reserved?: number;
  baseAddress: bigint;
  regionLength: number;
}
export interface MadtGicIts extends Trailing {
  type: 'gicIts';
  flags: number;
  reserved?: number;
  translationId: number;
  baseAddress: bigint;
  reserved2?: number;
}
export interface MadtMultiprocessorWakeup extends Trailing {
  type: 'multiprocessorWakeup';
  mailboxVersion: number;
  reserved?: number;
  mailboxAddress: bigint;
  resetVector?: bigint;
}

export type MadtEntry =
  | MadtLocalApic
  | MadtIoApic
  | MadtInterruptOverride
  | MadtNmiSource
  | MadtLocalApicNmi
  | MadtLocalApicOverride
  | MadtIoSapic
  | MadtLocalSapic
  | MadtPlatformInterruptSource
  | MadtLocalX2apic
  | MadtLocalX2apicNmi
  | MadtGicc
  | MadtGicd
  | MadtGicMsiFrame
  | MadtGicr
  | MadtGicIts
  | MadtMultiprocessorWakeup
  | UnknownSubtable;

type Body<E> = Omit<E, 'type' | 'trailing'>;

// Local SAPIC: the UID string that follows is variable; it stays in `trailing`.
export const MADT_KINDS = new SubtableRegistry([
  { code: 0, type: 'localApic', label: 'Processor Local APIC', body: struct<Body<MadtLocalApic>>({ processorUid: u8, apicId: u8, flags: u32 }) },
  { code: 1, type: 'ioApic', label: 'I/O APIC', body: struct<Body<MadtIoApic>>({ ioApicId: u8, reserved: reserved(u8), address: u32, gsiBase: u32 }) },
  { code: 2, type: 'interruptOverride', label: 'Interrupt Source Override', body: struct<Body<MadtInterruptOverride>>({ bus: u8, source: u8, gsi: u32, flags: u16 }) },
  { code: 3, type: 'nmiSource', label: 'NMI Source', body: struct<Body<MadtNmiSource>>({ flags: u16, gsi: u32 }) },
  { code: 4, type: 'localApicNmi', label: 'Local APIC NMI', body: struct<Body<MadtLocalApicNmi>>({ processorUid: u8, flags: u16, lint: u8 }) },
  { code: 5, type: 'localApicOverride', label: 'Local APIC Address Override', body: struct<Body<MadtLocalApicOverride>>({ reserved: reserved(u16), address: u64 }) },
  { code: 6, type: 'ioSapic', label: 'I/O SAPIC', body: struct<Body<MadtIoSapic>>({ ioApicId: u8, reserved: reserved(u8), gsiBase: u32, address: u64 }) },
  {
    code: 7,
    type: 'localSapic',
    label: 'Local SAPIC',
    body: struct<Body<MadtLocalSapic>>({ processorId: u8, sapicId: u8, sapicEid: u8, reserved: reserved(bytes(3)), flags: u32, processorUid: u32 }),
  },
  {
    code: 8,
    type: 'platformInterruptSource',
    label: 'Platform Interrupt Sources',
    body: struct<Body<MadtPlatformInterruptSource>>({
      flags: u16,
      interruptType: u8,
      processorId: u8,
      processorEid: u8,
      ioSapicVector: u8,
      gsi: u32,
      sourceFlags: u32,
    }),
  },
  { code: 9, type: 'localX2apic', label: 'Processor Local x2APIC', body: struct<Body<MadtLocalX2apic>>({ reserved: reserved(u16), x2apicId: u32, flags: u32, processorUid: u32 }) },
  {
    code: 10,
    type: 'localX2apicNmi',
    label: 'Local x2APIC NMI',
    body: struct<Body<MadtLocalX2apicNmi>>({ flags: u16, processorUid: u32, lint: u8, reserved: reserved(bytes(3)) }),
  },
  {
    code: 11,
    type: 'gicc',
    label: 'Generic Interrupt Controller (GICC)',
    body: struct<Body<MadtGicc>>({
      reserved: reserved(u16),
      cpuInterfaceNumber: u32,
      processorUid: u32,
      flags: u32,
      parkingVersion: u32,
      performanceInterrupt: u32,
      parkedAddress: u64,
      baseAddress: u64,
      gicvBaseAddress: tail(u64),
      gichBaseAddress: tail(u64),
      vgicMaintenanceInterrupt: tail(u32),
      gicrBaseAddress: tail(u64),
      mpidr: tail(u64),
      efficiencyClass: tail(u8),
      reserved2: tail(u8),
      speOverflowInterrupt: tail(u16),
      trbeInterrupt: tail(u16),
    }),
  },
  {
    code: 12,
    type: 'gicd',
    label: 'Generic Interrupt Distributor (GICD)',
    body: struct<Body<MadtGicd>>({ reserved: reserved(u16), gicId: u32, baseAddress: u64, gsiBase: u32, version: tail(u8), reserved2: tail(bytes(3)) }),
  },
  {
    code: 13,
    type: 'gicMsiFrame',
    label: 'Generic MSI Frame',
    body: struct<Body<MadtGicMsiFrame>>({ reserved: reserved(u16), msiFrameId: u32, baseAddress: u64, flags: u32, spiCount: u16, spiBase: u16 }),
  },
  {
    code: 14,
    type: 'gicr',
    label: 'Generic Interrupt Redistributor (GICR)',
    body: struct<Body<MadtGicr>>({ flags: u8, reserved: reserved(u8), baseAddress: u64, regionLength: u32 }),
  },
  {
    code: 15,
    type: 'gicIts',
    label: 'Generic Interrupt Translator (ITS)',
    body: struct<Body<MadtGicIts>>({ flags: u8, reserved: reserved(u8), translationId: u32, baseAddress: u64, reserved2: reserved(u32) }),
  },
  {
    code: 16,
    type: 'multiprocessorWakeup',
    label: 'Multiprocessor Wakeup',
    body: struct<Body<MadtMultiprocessorWakeup>>({ mailboxVersion: u16, reserved: reserved(u32), mailboxAddress: u64, resetVector: tail(u64) }),
  },
]);

/** Offsets in the MADT after the standard header. */
const MADT_BODY = { localApicAddress: 36, flags: 40, entries: 44 } as const;

export function decodeMadt(r: ByteReader, header: TableHeader): Madt {
  const end = r.length;
  if (end < MADT_BODY.entries) r.fail(36, `MADT needs ${MADT_BODY.entries} bytes before its entries, table has ${end}`);
  const entries: MadtEntry[] = [];
  walkSubtables(r, MADT_BODY.entries, end, { headerSize: 2, readLength: readHeaderLength(BYTE_HEADER), what: 'MADT entry' }, (at, length, i) => {
    entries.push(decodeSubtable(MADT_KINDS, BYTE_HEADER, r, at, length, `MADT entry ${i}`) as unknown as MadtEntry);
  });
  return { kind: 'madt', header, localApicAddress: r.u32(MADT_BODY.localApicAddress), flags: r.u32(MADT_BODY.flags), entries };
}

export function encodeMadtBody(w: ByteWriter, t: Madt): void {
  w.put(u32, t.localApicAddress, '', 'localApicAddress');
  w.put(u32, t.flags, '', 'flags');
  t.entries.forEach((e, i) => encodeSubtable(MADT_KINDS, BYTE_HEADER, w, e, `entries[${i}]`));
}

