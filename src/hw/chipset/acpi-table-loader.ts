import { HvmptError } from '../../errors.js';
import { setChecksum } from '../acpi/checksum.js';
import { encodeTable, peekSignature, tableHeader } from '../acpi/tables/index.js';
import type { FwCfgFile } from './fw-cfg.js';

/** The guest's ACPI tables cannot be linked as given (no FADT, two DSDTs, a short FADT...). */
export class AcpiLinkError extends HvmptError {}

export const ACPI_TABLES_FILE = 'etc/acpi/tables';
export const ACPI_RSDP_FILE = 'etc/acpi/rsdp';
export const TABLE_LOADER_FILE = 'etc/table-loader';

/** QEMU's BIOS linker/loader script (hw/acpi/bios-linker-loader.c): 128-byte little-endian commands. */
const COMMAND_SIZE = 128;
const FILE_NAME = 56;
const CMD_ALLOCATE = 1;
const CMD_ADD_POINTER = 2;
const CMD_ADD_CHECKSUM = 3;
const ZONE_HIGH = 1;
const ZONE_FSEG = 2;

/** Byte offsets the loader patches. */
const HEADER_LENGTH = 4;
const HEADER_CHECKSUM = 9;
const SDT_HEADER_SIZE = 36;
const FADT_FIRMWARE_CTRL = 36;
const FADT_DSDT = 40;
const FADT_X_DSDT = 140;
const RSDP_CHECKSUM = 8;
const RSDP_RSDT = 16;
const RSDP_XSDT = 24;
const RSDP_EXT_CHECKSUM = 32;

export interface LinkedAcpi {
  /** etc/acpi/rsdp, etc/acpi/tables and etc/table-loader, for fw_cfg. */
  readonly files: FwCfgFile[];
  /** The tables as an OS will find them through the RSDT/XSDT, in order (what lsacpi lists after the root tables). */
  readonly listed: ReadonlyArray<{ readonly signature: string; readonly length: number }>;
}

class Script {
  private readonly commands: Uint8Array[] = [];

  private command(kind: number): DataView {
    const c = new Uint8Array(COMMAND_SIZE);
    this.commands.push(c);
    const v = new DataView(c.buffer);
    v.setUint32(0, kind, true);
    return v;
  }

  private static name(v: DataView, at: number, name: string): void {
    new Uint8Array(v.buffer).set(new TextEncoder().encode(name).subarray(0, FILE_NAME - 1), at);
  }

  allocate(file: string, align: number, zone: number): void {
    const v = this.command(CMD_ALLOCATE);
    Script.name(v, 4, file);
    v.setUint32(4 + FILE_NAME, align, true);
    v.setUint8(8 + FILE_NAME, zone);
  }

  /** The `size`-byte value at dest+offset (an offset into src) becomes src's address plus that offset. */
  pointer(dest: string, offset: number, size: 4 | 8, src: string): void {
    const v = this.command(CMD_ADD_POINTER);
    Script.name(v, 4, dest);
    Script.name(v, 4 + FILE_NAME, src);
    v.setUint32(4 + 2 * FILE_NAME, offset, true);
    v.setUint8(8 + 2 * FILE_NAME, size);
  }

  checksum(file: string, at: number, start: number, length: number): void {
    const v = this.command(CMD_ADD_CHECKSUM);
    Script.name(v, 4, file);
    v.setUint32(4 + FILE_NAME, at, true);
    v.setUint32(8 + FILE_NAME, start, true);
    v.setUint32(12 + FILE_NAME, length, true);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.commands.length * COMMAND_SIZE);
    this.commands.forEach((c, i) => out.set(c, i * COMMAND_SIZE));
    return out;
  }
}

function align(n: number, a: number): number {
  return (n + a - 1) & ~(a - 1);
}

/**
 * Lays the guest's ACPI tables out for the firmware the way QEMU hands them to SeaBIOS and OVMF:
 * every table in one blob (etc/acpi/tables, FACS first and 64-byte aligned, then DSDT, the
 * rest, the FADT, then the RSDT and XSDT hvmpt builds over them) and the RSDP alone
 * (etc/acpi/rsdp, in the BIOS F-segment), plus a linker script (etc/table-loader) that has the
 * firmware allocate both, turn every table-to-table reference into an address, and fix the
 * checksums. The tables' own contents are the ACPI generator's; only the links are made here.
 */
export function linkAcpiTables(tables: readonly Uint8Array[], options: { rsdpRevision?: 0 | 2; oemId?: string } = {}): LinkedAcpi {
  const bySig = (sig: string): Uint8Array[] => tables.filter((t) => peekSignature(t) === sig);
  const fadts = bySig('FACP');
  const dsdts = bySig('DSDT');
  const facss = bySig('FACS');
  if (fadts.length !== 1) throw new AcpiLinkError(`exactly one FADT (FACP) is needed, ${fadts.length} given`, { input: 'ACPI tables' });
  if (dsdts.length !== 1) throw new AcpiLinkError(`exactly one DSDT is needed, ${dsdts.length} given`, { input: 'ACPI tables' });
  if (facss.length > 1) throw new AcpiLinkError(`at most one FACS, ${facss.length} given`, { input: 'ACPI tables' });
  for (const s of ['RSDT', 'XSDT', 'RSD ']) {
    if (tables.some((t) => peekSignature(t).startsWith(s))) throw new AcpiLinkError(`${s.trim()} is built by the linker, not given`, { input: 'ACPI tables' });
  }
  for (const t of tables) {
    const len = new DataView(t.buffer, t.byteOffset, t.byteLength).getUint32(HEADER_LENGTH, true);
    if (len !== t.length) throw new AcpiLinkError(`declares ${len} bytes but ${t.length} were given`, { input: peekSignature(t) });
  }
  const fadt = Uint8Array.from(fadts[0]!);
  if (fadt.length < FADT_DSDT + 4) throw new AcpiLinkError(`FADT of ${fadt.length} bytes has no DSDT field`, { input: 'FACP' });
  const others = tables.filter((t) => !['FACP', 'DSDT', 'FACS'].includes(peekSignature(t)));
  const revision = options.rsdpRevision ?? 2;

  // Layout of etc/acpi/tables.
  const parts: Array<{ sig: string; bytes: Uint8Array; offset: number }> = [];
  let size = 0;
  const place = (bytes: Uint8Array, alignment = 4): number => {
    size = align(size, alignment);
    const offset = size;
    parts.push({ sig: peekSignature(bytes), bytes, offset });
    size += bytes.length;
    return offset;
  };
  const facsOffset = facss.length > 0 ? place(facss[0]!, 64) : undefined;
  const dsdtOffset = place(dsdts[0]!);
  const listed: Array<{ sig: string; offset: number; length: number }> = [];
  for (const t of others) listed.push({ sig: peekSignature(t), offset: place(t), length: t.length });
  // The FADT refers to the DSDT and FACS by their offsets until the loader relocates them.
  const fv = new DataView(fadt.buffer);
  fv.setUint32(FADT_FIRMWARE_CTRL, facsOffset ?? 0, true);
  fv.setUint32(FADT_DSDT, dsdtOffset, true);
  const hasXDsdt = fadt.length >= FADT_X_DSDT + 8;
  if (hasXDsdt) fv.setBigUint64(FADT_X_DSDT, BigInt(dsdtOffset), true);
  setChecksum(fadt, HEADER_CHECKSUM);
  const fadtOffset = place(fadt);
  listed.unshift({ sig: 'FACP', offset: fadtOffset, length: fadt.length });
  const oemId = options.oemId ?? 'HVMPT ';
  const rsdt = encodeTable({ kind: 'rsdt', header: tableHeader('RSDT', 1, { oemId }), entries: listed.map((l) => l.offset) });
  const rsdtOffset = place(rsdt);
  const xsdt = revision >= 2 ? encodeTable({ kind: 'xsdt', header: tableHeader('XSDT', 1, { oemId }), entries: listed.map((l) => BigInt(l.offset)) }) : undefined;
  const xsdtOffset = xsdt === undefined ? undefined : place(xsdt);
  const blob = new Uint8Array(size);
  for (const p of parts) blob.set(p.bytes, p.offset);
  const rsdp = encodeTable({ kind: 'rsdp', revision, oemId, rsdtAddress: rsdtOffset, ...(xsdtOffset === undefined ? {} : { xsdtAddress: BigInt(xsdtOffset) }) });

  const s = new Script();
  s.allocate(ACPI_TABLES_FILE, 64, ZONE_HIGH);
  s.allocate(ACPI_RSDP_FILE, 16, ZONE_FSEG);
  if (facsOffset !== undefined) s.pointer(ACPI_TABLES_FILE, fadtOffset + FADT_FIRMWARE_CTRL, 4, ACPI_TABLES_FILE);
  s.pointer(ACPI_TABLES_FILE, fadtOffset + FADT_DSDT, 4, ACPI_TABLES_FILE);
  if (hasXDsdt) s.pointer(ACPI_TABLES_FILE, fadtOffset + FADT_X_DSDT, 8, ACPI_TABLES_FILE);
  listed.forEach((_, i) => s.pointer(ACPI_TABLES_FILE, rsdtOffset + SDT_HEADER_SIZE + 4 * i, 4, ACPI_TABLES_FILE));
  if (xsdtOffset !== undefined) listed.forEach((_, i) => s.pointer(ACPI_TABLES_FILE, xsdtOffset + SDT_HEADER_SIZE + 8 * i, 8, ACPI_TABLES_FILE));
  s.pointer(ACPI_RSDP_FILE, RSDP_RSDT, 4, ACPI_TABLES_FILE);
  if (xsdtOffset !== undefined) s.pointer(ACPI_RSDP_FILE, RSDP_XSDT, 8, ACPI_TABLES_FILE);
  // Checksums last, over the relocated bytes; FACS has none.
  for (const p of parts) if (p.sig !== 'FACS') s.checksum(ACPI_TABLES_FILE, p.offset + HEADER_CHECKSUM, p.offset, p.bytes.length);
  s.checksum(ACPI_RSDP_FILE, RSDP_CHECKSUM, 0, 20);
  if (revision >= 2) s.checksum(ACPI_RSDP_FILE, RSDP_EXT_CHECKSUM, 0, rsdp.length);

  return {
    files: [
      { name: ACPI_RSDP_FILE, data: rsdp },
      { name: ACPI_TABLES_FILE, data: blob },
      { name: TABLE_LOADER_FILE, data: s.bytes() },
    ],
    listed: listed.map((l) => ({ signature: l.sig, length: l.length })),
  };
}
