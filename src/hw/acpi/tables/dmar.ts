import { ByteReader, ByteWriter, bytes, latin1Decode, latin1Encode, reserved, struct, u16, u32, u64, u8, walkSubtables } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';
import { BYTE_HEADER, SubtableRegistry, WORD_HEADER, encodeWithLength, readHeaderLength, trailingOf, type SubtableKind, type UnknownSubtable } from './subtables.js';

/**
 * DMAR: Intel VT-d remapping hardware. Remapping units (DRHD), reserved memory regions the
 * OS must keep identity-mapped (RMRR), ATS-capable root ports (ATSR), NUMA affinity of units
 * (RHSA), ACPI namespace devices behind a unit (ANDD), SoC address-translation caches (SATC)
 * and SoC device properties (SIDP). DRHD, RMRR, ATSR, SATC and SIDP end in device scopes,
 * each naming a device by a start bus and a path of (device, function) hops.
 */
export interface Dmar {
  kind: 'dmar';
  header: TableHeader;
  /** DMA physical address width minus one. */
  hostAddressWidth: number;
  /** Bit 0 INTR_REMAP, 1 X2APIC_OPT_OUT, 2 DMA_CTRL_PLATFORM_OPT_IN. */
  flags: number;
  reserved?: Uint8Array;
  structures: DmarStructure[];
}

export const DmarFlag = { intrRemap: 1, x2apicOptOut: 2, dmaCtrlPlatformOptIn: 4 } as const;
/** DRHD flags bit 0: the unit covers every device of its segment not claimed by another unit. */
export const DRHD_INCLUDE_PCI_ALL = 1;

export interface DmarPathHop {
  device: number;
  function: number;
}

export interface DmarDeviceScope {
  /** 1 PCI endpoint, 2 PCI sub-hierarchy (bridge), 3 IOAPIC, 4 MSI-capable HPET, 5 ACPI namespace device. */
  scopeType: number;
  flags: number;
  reserved?: number;
  /** IOAPIC ID, HPET number or ACPI device number, by scope type. */
  enumerationId: number;
  startBus: number;
  path: DmarPathHop[];
  /** An odd byte a declared length covers after the last whole hop. */
  trailing?: Uint8Array;
}

interface Scoped {
  scopes: DmarDeviceScope[];
}

export interface DmarDrhd extends Scoped {
  type: 'drhd';
  flags: number;
  /** Register set size as 2^size 4 KiB pages (VT-d 4.0; reserved before). */
  size: number;
  segment: number;
  registerBaseAddress: bigint;
}
export interface DmarRmrr extends Scoped {
  type: 'rmrr';
  reserved?: number;
  segment: number;
  baseAddress: bigint;
  /** Inclusive limit. */
  endAddress: bigint;
}
export interface DmarAtsr extends Scoped {
  type: 'atsr';
  /** Bit 0 ALL_PORTS. */
  flags: number;
  reserved?: number;
  segment: number;
}
export interface DmarRhsa {
  type: 'rhsa';
  reserved?: number;
  registerBaseAddress: bigint;
  proximityDomain: number;
  trailing?: Uint8Array;
}
export interface DmarAndd {
  type: 'andd';
  reserved?: Uint8Array;
  deviceNumber: number;
  /**
   * The ACPI object name, every byte the structure holds after the device number
   * (NUL terminator and padding included): "\\_SB.PCI0.I2C0\u0000".
   */
  objectName: string;
}
export interface DmarSatc extends Scoped {
  type: 'satc';
  /** Bit 0 ATC_REQUIRED. */
  flags: number;
  reserved?: number;
  segment: number;
}
export interface DmarSidp extends Scoped {
  type: 'sidp';
  reserved?: number;
  segment: number;
}

export type DmarStructure = DmarDrhd | DmarRmrr | DmarAtsr | DmarRhsa | DmarAndd | DmarSatc | DmarSidp | UnknownSubtable;

type Fixed<E> = Omit<E, 'type' | 'trailing' | 'scopes' | 'objectName'>;

interface DmarKind extends SubtableKind {
  /** What follows the fixed fields: device scopes, a name, or nothing (trailing bytes). */
  readonly rest: 'scopes' | 'name' | 'none';
}

export const DMAR_KINDS = new SubtableRegistry<DmarKind>([
  {
    code: 0,
    type: 'drhd',
    label: 'Hardware Unit Definition (DRHD)',
    rest: 'scopes',
    body: struct<Fixed<DmarDrhd>>({ flags: u8, size: u8, segment: u16, registerBaseAddress: u64 }),
  },
  {
    code: 1,
    type: 'rmrr',
    label: 'Reserved Memory Region (RMRR)',
    rest: 'scopes',
    body: struct<Fixed<DmarRmrr>>({ reserved: reserved(u16), segment: u16, baseAddress: u64, endAddress: u64 }),
  },
  { code: 2, type: 'atsr', label: 'Root Port ATS Capability (ATSR)', rest: 'scopes', body: struct<Fixed<DmarAtsr>>({ flags: u8, reserved: reserved(u8), segment: u16 }) },
  {
    code: 3,
    type: 'rhsa',
    label: 'Remapping Hardware Static Affinity (RHSA)',
    rest: 'none',
    body: struct<Fixed<DmarRhsa>>({ reserved: reserved(u32), registerBaseAddress: u64, proximityDomain: u32 }),
  },
  { code: 4, type: 'andd', label: 'ACPI Namespace Device Declaration (ANDD)', rest: 'name', body: struct<Fixed<DmarAndd>>({ reserved: reserved(bytes(3)), deviceNumber: u8 }) },
  { code: 5, type: 'satc', label: 'SoC Integrated Address Translation Cache (SATC)', rest: 'scopes', body: struct<Fixed<DmarSatc>>({ flags: u8, reserved: reserved(u8), segment: u16 }) },
  { code: 6, type: 'sidp', label: 'SoC Integrated Device Property (SIDP)', rest: 'scopes', body: struct<Fixed<DmarSidp>>({ reserved: reserved(u16), segment: u16 }) },
]);

export const DMAR_SCOPE_LABELS: Readonly<Record<number, string>> = {
  1: 'PCI Endpoint Device',
  2: 'PCI Bridge Device',
  3: 'IOAPIC Device',
  4: 'Message-capable HPET Device',
  5: 'ACPI Namespace Device',
};

const SCOPE = struct<Omit<DmarDeviceScope, 'scopeType' | 'path' | 'trailing'>>({ flags: u8, reserved: reserved(u8), enumerationId: u8, startBus: u8 });
const SCOPE_HEADER = BYTE_HEADER.size + SCOPE.minSize;

const STRUCTURES_AT = HEADER_SIZE + 12;

function decodeScopes(r: ByteReader, start: number, end: number, what: string): DmarDeviceScope[] {
  const scopes: DmarDeviceScope[] = [];
  walkSubtables(r, start, end, { headerSize: SCOPE_HEADER, readLength: readHeaderLength(BYTE_HEADER), what: `${what} device scope` }, (at, length) => {
    const fixed = SCOPE.decode(r, at + 2, at + length, `${what} device scope`).value;
    const path: DmarPathHop[] = [];
    let p = at + SCOPE_HEADER;
    for (; p + 2 <= at + length; p += 2) path.push({ device: r.u8(p), function: r.u8(p + 1) });
    const scope: DmarDeviceScope = { scopeType: r.u8(at), ...fixed, path };
    const trailing = trailingOf(r, p, at + length);
    if (trailing !== undefined) scope.trailing = trailing;
    scopes.push(scope);
  });
  return scopes;
}

function encodeScopes(w: ByteWriter, scopes: readonly DmarDeviceScope[], path: string): void {
  scopes.forEach((s, i) => {
    const sp = `${path}.scopes[${i}]`;
    encodeWithLength(w, BYTE_HEADER, s.scopeType, sp, DMAR_SCOPE_LABELS[s.scopeType] ?? 'unknown', () => {
      SCOPE.encode(w, s, sp);
      s.path.forEach((hop, j) => {
        w.put(u8, hop.device, sp, `path[${j}].device`);
        w.put(u8, hop.function, sp, `path[${j}].function`);
      });
      if (s.trailing !== undefined) w.putBytes(s.trailing, sp, 'trailing');
    }, 'scopeType');
  });
}

function decodeStructure(r: ByteReader, at: number, length: number, index: number): DmarStructure {
  const code = r.u16(at);
  const kind = DMAR_KINDS.code(code);
  const start = at + WORD_HEADER.size;
  const end = at + length;
  if (kind === undefined) return { type: 'unknown', code, data: r.copy(start, end) };
  const what = `DMAR structure ${index} (${kind.label})`;
  const { value, next } = kind.body.decode(r, start, end, what);
  const out: Record<string, unknown> = { type: kind.type, ...value };
  if (kind.rest === 'scopes') out.scopes = decodeScopes(r, next, end, what);
  else if (kind.rest === 'name') out.objectName = latin1Decode(r.bytes, next, end);
  else if (next < end) out.trailing = r.copy(next, end);
  return out as unknown as DmarStructure;
}

function encodeStructure(w: ByteWriter, s: DmarStructure, path: string): void {
  if (s.type === 'unknown') {
    encodeWithLength(w, WORD_HEADER, s.code, path, 'unknown', () => w.putBytes(s.data, path, 'data'));
    return;
  }
  const kind = DMAR_KINDS.type(s.type);
  if (kind === undefined) w.fail(`${path}.type`, `unknown DMAR structure type ${JSON.stringify(s.type)}`);
  encodeWithLength(w, WORD_HEADER, kind.code, path, kind.label, () => {
    kind.body.encode(w, s, path);
    if ('scopes' in s) encodeScopes(w, s.scopes, path);
    if (s.type === 'andd') {
      const name = latin1Encode(s.objectName);
      if (name === undefined) w.fail(`${path}.objectName`, 'has a character that is not one byte');
      w.putBytes(name, path, 'objectName');
    }
    if (s.type === 'rhsa' && s.trailing !== undefined) w.putBytes(s.trailing, path, 'trailing');
  });
}

export function decodeDmar(r: ByteReader, header: TableHeader): Dmar {
  if (r.length < STRUCTURES_AT) r.fail(HEADER_SIZE, `DMAR needs ${STRUCTURES_AT} bytes before its structures, table has ${r.length}`);
  const structures: DmarStructure[] = [];
  walkSubtables(r, STRUCTURES_AT, r.length, { headerSize: WORD_HEADER.size, readLength: readHeaderLength(WORD_HEADER), what: 'DMAR structure' }, (at, length, i) => {
    structures.push(decodeStructure(r, at, length, i));
  });
  return {
    kind: 'dmar',
    header,
    hostAddressWidth: r.u8(HEADER_SIZE),
    flags: r.u8(HEADER_SIZE + 1),
    reserved: r.copy(HEADER_SIZE + 2, STRUCTURES_AT),
    structures,
  };
}

export function encodeDmarBody(w: ByteWriter, t: Dmar): void {
  w.put(u8, t.hostAddressWidth, '', 'hostAddressWidth');
  w.put(u8, t.flags, '', 'flags');
  w.put(bytes(10), t.reserved ?? new Uint8Array(10), '', 'reserved');
  t.structures.forEach((s, i) => encodeStructure(w, s, `structures[${i}]`));
}

/** A device scope's path as text: `00:1f.3` style hops after the start bus. */
export function formatScopePath(s: DmarDeviceScope): string {
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return `${hex(s.startBus)}:` + s.path.map((h) => `${hex(h.device)}.${h.function.toString(16)}`).join('/');
}
