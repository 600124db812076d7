/**
 * The ACPI tables as the guest's memory holds them, found the way an OS finds them: the RSDP
 * by its signature on a 16-byte boundary in the EBDA's first KiB or 0xE0000-0xFFFFF, then the
 * XSDT (or RSDT) and the FADT's DSDT and FACS. The monitor reads them after a run, so a report
 * shows what the firmware's table loader really left for the guest, byte for byte. It runs in
 * the vCPU thread, so it takes only the ACPI layer's offsets and checksum, not its codecs.
 */
import { checksumOk } from '../hw/acpi/checksum.js';
import { HEADER_SIZE, HeaderOffset } from '../hw/acpi/tables/header.js';
import { RSDP_SIGNATURE, RsdpOffset } from '../hw/acpi/tables/rsdp.js';


/** Reads guest RAM (read-only shadow included); undefined where it is not RAM. */
export type GuestPeek = (address: bigint, length: number) => Uint8Array | undefined;

export interface SeenTable {
  readonly signature: string;
  /** Guest-physical address, as 0x… */
  readonly address: string;
  readonly length: number;
  readonly checksumValid: boolean;
  readonly oemId: string;
  readonly oemTableId: string;
  /** The table's bytes, base64. */
  readonly bytes: string;
  /** How it was reached: 'xsdt', 'rsdt', 'fadt' (DSDT, FACS). */
  readonly via: string;
}

export interface SeenAcpi {
  readonly rsdp: { readonly address: string; readonly revision: number; readonly oemId: string; readonly checksumValid: boolean } | null;
  /** The root table and every table it lists, then the DSDT and FACS. */
  readonly tables: readonly SeenTable[];
  /** What could not be followed (a pointer outside RAM, a length that makes no sense). */
  readonly problems: readonly string[];
}

/** The RSDP's first checksum covers the ACPI 1.0 part, before `length`. */
const RSDP_V1_SIZE = RsdpOffset.length;
const RSDP_V2_SIZE = 36;
const MAX_TABLE = 1 << 20;
// FADT fields the walk follows (ACPI 6.5 table 5.9).
const FADT_FIRMWARE_CTRL = 36;
const FADT_DSDT = 40;
const FADT_X_FIRMWARE_CTRL = 132;
const FADT_X_DSDT = 140;

const hex = (v: bigint | number): string => '0x' + v.toString(16);
const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);

function findRsdp(peek: GuestPeek): { address: bigint; bytes: Uint8Array } | undefined {
  const ebdaPointer = peek(0x40en, 2);
  const ebda = ebdaPointer === undefined ? 0 : (ebdaPointer[0]! | (ebdaPointer[1]! << 8)) << 4;
  const areas: Array<[number, number]> = [];
  if (ebda >= 0x80000 && ebda < 0xa0000) areas.push([ebda, ebda + 0x400]);
  areas.push([0xe0000, 0x100000]);
  for (const [start, end] of areas) {
    const area = peek(BigInt(start), end - start);
    if (area === undefined) continue;
    for (let off = 0; off + RSDP_V1_SIZE <= area.length; off += 16) {
      if (latin1(area.subarray(off, off + RSDP_SIGNATURE.length)) !== RSDP_SIGNATURE) continue;
      if (!checksumOk(area, off, off + RSDP_V1_SIZE)) continue;
      const revision = area[off + RsdpOffset.revision]!;
      const length = revision >= 2 && off + RsdpOffset.length + 4 <= area.length ? new DataView(area.buffer, area.byteOffset + off + RsdpOffset.length, 4).getUint32(0, true) : RSDP_V1_SIZE;
      return { address: BigInt(start + off), bytes: area.slice(off, off + Math.min(Math.max(length, RSDP_V1_SIZE), RSDP_V2_SIZE)) };
    }
  }
  return undefined;
}

/** Finds and reads every table the guest can reach from its RSDP. */
export function readGuestAcpi(peek: GuestPeek): SeenAcpi {
  const problems: string[] = [];
  const found = findRsdp(peek);
  if (found === undefined) return { rsdp: null, tables: [], problems: ['no RSDP in the EBDA or 0xE0000-0xFFFFF'] };
  const r = new DataView(found.bytes.buffer, found.bytes.byteOffset, found.bytes.byteLength);
  const revision = r.getUint8(RsdpOffset.revision);
  const rsdp = {
    address: hex(found.address),
    revision,
    oemId: latin1(found.bytes.subarray(RsdpOffset.oemId, RsdpOffset.revision)),
    checksumValid: checksumOk(found.bytes, 0, RSDP_V1_SIZE) && (revision < 2 || found.bytes.length < RSDP_V2_SIZE || checksumOk(found.bytes, 0, RSDP_V2_SIZE)),
  };
  const tables: SeenTable[] = [];
  const seen = new Set<bigint>();
  const readTable = (address: bigint, via: string, facs = false): Uint8Array | undefined => {
    if (address === 0n || seen.has(address)) return undefined;
    const head = peek(address, facs ? 8 : HEADER_SIZE);
    if (head === undefined) {
      problems.push(`${via}: ${hex(address)} is not in guest RAM`);
      return undefined;
    }
    const length = new DataView(head.buffer, head.byteOffset).getUint32(HeaderOffset.length, true);
    if (length < (facs ? 8 : HEADER_SIZE) || length > MAX_TABLE) {
      problems.push(`${via}: the table at ${hex(address)} declares ${length} bytes`);
      return undefined;
    }
    const bytes = peek(address, length);
    if (bytes === undefined) {
      problems.push(`${via}: the table at ${hex(address)} runs out of guest RAM`);
      return undefined;
    }
    seen.add(address);
    tables.push({
      signature: latin1(bytes.subarray(HeaderOffset.signature, HeaderOffset.length)),
      address: hex(address),
      length,
      // The FACS has no checksum.
      checksumValid: facs ? true : checksumOk(bytes),
      oemId: facs ? '' : latin1(bytes.subarray(HeaderOffset.oemId, HeaderOffset.oemTableId)),
      oemTableId: facs ? '' : latin1(bytes.subarray(HeaderOffset.oemTableId, HeaderOffset.oemRevision)),
      bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
      via,
    });
    return bytes;
  };
  const xsdtAddress = revision >= 2 && found.bytes.length >= RsdpOffset.extendedChecksum ? r.getBigUint64(RsdpOffset.xsdtAddress, true) : 0n;
  const root = xsdtAddress !== 0n ? readTable(xsdtAddress, 'rsdp.xsdt') : readTable(BigInt(r.getUint32(RsdpOffset.rsdtAddress, true)), 'rsdp.rsdt');
  if (root === undefined) return { rsdp, tables, problems };
  const wide = xsdtAddress !== 0n;
  const v = new DataView(root.buffer, root.byteOffset, root.byteLength);
  const entry = wide ? 8 : 4;
  const via = wide ? 'xsdt' : 'rsdt';
  for (let off = HEADER_SIZE; off + entry <= root.length; off += entry) {
    const address = wide ? v.getBigUint64(off, true) : BigInt(v.getUint32(off, true));
    const t = readTable(address, via);
    if (t === undefined || latin1(t.subarray(0, 4)) !== 'FACP') continue;
    const f = new DataView(t.buffer, t.byteOffset, t.byteLength);
    const pointer = (x: number, legacy: number): bigint => (t.length >= x + 8 && f.getBigUint64(x, true) !== 0n ? f.getBigUint64(x, true) : t.length >= legacy + 4 ? BigInt(f.getUint32(legacy, true)) : 0n);
    readTable(pointer(FADT_X_DSDT, FADT_DSDT), 'fadt');
    readTable(pointer(FADT_X_FIRMWARE_CTRL, FADT_FIRMWARE_CTRL), 'fadt', true);
  }
  return { rsdp, tables, problems };
}
