import { setChecksum } from '../checksum.js';
import { ByteReader, ByteWriter, bytes, latin1Decode, text, u32, u64, u8 } from './binary.js';

/**
 * The Root System Description Pointer: where firmware tells the OS the RSDT (ACPI 1.0) and
 * XSDT (2.0+) live. Revision 0 is the 20-byte form; revision 2 and later add a length, the
 * XSDT address and an extended checksum over the whole structure (36 bytes). Both checksums
 * are computed on encode.
 */
export interface Rsdp {
  kind: 'rsdp';
  /** 0: ACPI 1.0 (20 bytes); 2: ACPI 2.0+ (36 bytes). */
  revision: number;
  oemId: string;
  rsdtAddress: number;
  /** Written when revision >= 2 (zero when omitted). */
  xsdtAddress?: bigint;
  /** Three reserved bytes after the extended checksum (revision >= 2). */
  reserved?: Uint8Array;
  /** Bytes a revision-2 length covers beyond 36. */
  trailing?: Uint8Array;
}

export const RSDP_SIGNATURE = 'RSD PTR ';
export const RSDP_V1_SIZE = 20;
export const RSDP_V2_SIZE = 36;

/** Named offsets of the RSDP (ACPI 6.5 table 5.3). */
export const RsdpOffset = {
  signature: 0,
  checksum: 8,
  oemId: 9,
  revision: 15,
  rsdtAddress: 16,
  length: 20,
  xsdtAddress: 24,
  extendedChecksum: 32,
  reserved: 33,
} as const;

export function isRsdp(data: Uint8Array): boolean {
  return data.length >= 8 && latin1Decode(data, 0, 8) === RSDP_SIGNATURE;
}

/** The RSDP's length as its bytes declare it (20 for revision < 2). */
export function rsdpLength(r: ByteReader): number {
  if (r.length < RSDP_V1_SIZE) r.fail(0, `RSDP needs ${RSDP_V1_SIZE} bytes, only ${r.length} there`);
  if (r.u8(RsdpOffset.revision) < 2) return RSDP_V1_SIZE;
  if (r.length < RSDP_V2_SIZE) r.fail(0, `revision ${r.u8(RsdpOffset.revision)} RSDP needs ${RSDP_V2_SIZE} bytes, only ${r.length} there`);
  return r.u32(RsdpOffset.length);
}

export function decodeRsdp(r: ByteReader): Rsdp {
  const length = rsdpLength(r);
  const revision = r.u8(RsdpOffset.revision);
  const base: Rsdp = {
    kind: 'rsdp',
    revision,
    oemId: latin1Decode(r.bytes, RsdpOffset.oemId, RsdpOffset.oemId + 6),
    rsdtAddress: r.u32(RsdpOffset.rsdtAddress),
  };
  if (revision < 2) return base;
  if (length < RSDP_V2_SIZE) r.fail(RsdpOffset.length, `revision ${revision} RSDP declares length ${length}, less than ${RSDP_V2_SIZE}`);
  if (length > r.length) r.fail(RsdpOffset.length, `RSDP declares length ${length}, only ${r.length} bytes there`);
  const out: Rsdp = { ...base, xsdtAddress: r.u64(RsdpOffset.xsdtAddress), reserved: r.copy(RsdpOffset.reserved, RSDP_V2_SIZE) };
  if (length > RSDP_V2_SIZE) out.trailing = r.copy(RSDP_V2_SIZE, length);
  return out;
}

export function encodeRsdp(w: ByteWriter, t: Rsdp): void {
  w.put(text(8), RSDP_SIGNATURE, '', 'signature');
  w.put(u8, 0, '', 'checksum');
  w.put(text(6), t.oemId, '', 'oemId');
  w.put(u8, t.revision, '', 'revision');
  w.put(u32, t.rsdtAddress, '', 'rsdtAddress');
  if (t.revision >= 2) {
    w.put(u32, 0, '', 'length');
    w.put(u64, t.xsdtAddress ?? 0n, '', 'xsdtAddress');
    w.put(u8, 0, '', 'extendedChecksum');
    w.put(bytes(3), t.reserved ?? new Uint8Array(3), '', 'reserved');
    if (t.trailing !== undefined) w.putBytes(t.trailing, '', 'trailing');
    w.patch(RsdpOffset.length, u32, w.pos, 'length');
  }
  // The first checksum covers the 1.0 part only; the extended one covers everything, first checksum included.
  const data = w.written();
  w.patch(RsdpOffset.checksum, u8, setChecksum(data, RsdpOffset.checksum, 0, RSDP_V1_SIZE), 'checksum');
  if (t.revision >= 2) w.patch(RsdpOffset.extendedChecksum, u8, setChecksum(data, RsdpOffset.extendedChecksum, 0, data.length), 'extendedChecksum');
}
