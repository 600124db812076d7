import { setChecksum } from '../checksum.js';
import { ByteReader, ByteWriter, latin1Decode, text, u32, u8 } from './binary.js';

/**
 * The 36-byte header every ACPI table except the RSDP and FACS starts with. The length and
 * checksum are not part of the model: encoding computes them from the content.
 */
export interface TableHeader {
  /** Four characters: "APIC", "FACP", "SSDT", … */
  signature: string;
  revision: number;
  /** Six bytes, space-padded when shorter. */
  oemId: string;
  /** Eight bytes, space-padded when shorter. */
  oemTableId: string;
  oemRevision: number;
  /** The ASL compiler ID (four bytes), "Creator ID" in the specification. */
  creatorId: string;
  creatorRevision: number;
}

/** The header as found in bytes, with the fields encoding recomputes. */
export interface RawTableHeader extends TableHeader {
  length: number;
  checksum: number;
}

export const HEADER_SIZE = 36;

/** Named offsets of the standard header. */
export const HeaderOffset = {
  signature: 0,
  length: 4,
  revision: 8,
  checksum: 9,
  oemId: 10,
  oemTableId: 16,
  oemRevision: 24,
  creatorId: 28,
  creatorRevision: 32,
} as const;

const sig4 = text(4);
const oemId6 = text(6);
const oemTableId8 = text(8);
const creator4 = text(4);

/** Reads the standard header; the caller has checked that 36 bytes are there. */
export function readHeader(r: ByteReader): RawTableHeader {
  return {
    signature: latin1Decode(r.bytes, 0, 4),
    length: r.u32(HeaderOffset.length),
    revision: r.u8(HeaderOffset.revision),
    checksum: r.u8(HeaderOffset.checksum),
    oemId: latin1Decode(r.bytes, 10, 16),
    oemTableId: latin1Decode(r.bytes, 16, 24),
    oemRevision: r.u32(HeaderOffset.oemRevision),
    creatorId: latin1Decode(r.bytes, 28, 32),
    creatorRevision: r.u32(HeaderOffset.creatorRevision),
  };
}

export function modelHeader(raw: RawTableHeader): TableHeader {
  const { signature, revision, oemId, oemTableId, oemRevision, creatorId, creatorRevision } = raw;
  return { signature, revision, oemId, oemTableId, oemRevision, creatorId, creatorRevision };
}

/** Defaults for tables hvmpt makes itself. */
export const HVMPT_OEM = { oemId: 'HVMPT', oemTableId: 'HVMPT', oemRevision: 1, creatorId: 'HVMP', creatorRevision: 1 } as const;

/** A header for a table built from typed values; unspecified fields take hvmpt's defaults. */
export function tableHeader(signature: string, revision: number, init: Partial<Omit<TableHeader, 'signature' | 'revision'>> = {}): TableHeader {
  return { signature, revision, ...HVMPT_OEM, ...init };
}

/**
 * Writes a standard table: the header, then `body`, then patches the length and checksum. The
 * writer must be empty (tables start at offset 0).
 */
export function encodeStandardTable(w: ByteWriter, header: TableHeader, body: () => void): void {
  const p = 'header';
  if (header.signature.length !== 4) w.fail('header.signature', `${JSON.stringify(header.signature)} is not four characters`);
  w.put(sig4, header.signature, p, 'signature');
  w.put(u32, 0, p, 'length');
  w.put(u8, header.revision, p, 'revision');
  w.put(u8, 0, p, 'checksum');
  w.put(oemId6, header.oemId, p, 'oemId');
  w.put(oemTableId8, header.oemTableId, p, 'oemTableId');
  w.put(u32, header.oemRevision, p, 'oemRevision');
  w.put(creator4, header.creatorId, p, 'creatorId');
  w.put(u32, header.creatorRevision, p, 'creatorRevision');
  body();
  w.patch(HeaderOffset.length, u32, w.pos, 'header.length');
  const sum = setChecksum(w.written(), HeaderOffset.checksum);
  w.patch(HeaderOffset.checksum, u8, sum, 'header.checksum');
}
