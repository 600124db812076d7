import { HvmptError } from '../../errors.js';
// SMBIOS checksums are ACPI's: the covered bytes sum to zero modulo 256.
import { setChecksum } from '../acpi/checksum.js';
import { latin1Encode } from '../acpi/tables/binary.js';
import { STRUCTURE_LENGTH, type SmbiosStructure } from './structures.js';

/** A structure that cannot be written as given (a bad string, a value out of its field's range). */
export class SmbiosEncodeError extends HvmptError {}

/** The 32-bit ("_SM_") entry point, DSP0134 5.2.1; 31 bytes. */
export const EP = {
  anchor: 0x00,
  checksum: 0x04,
  length: 0x05,
  major: 0x06,
  minor: 0x07,
  maxStructureSize: 0x08,
  revision: 0x0a,
  formatted: 0x0b,
  intermediateAnchor: 0x10,
  intermediateChecksum: 0x15,
  tableLength: 0x16,
  tableAddress: 0x18,
  structureCount: 0x1c,
  bcdRevision: 0x1e,
  size: 0x1f,
} as const;

export const SMBIOS_VERSION = { major: 2, minor: 8 } as const;

/** Handles SeaBIOS leaves free: it numbers the type 0 structure it adds 0. */
export const FIRST_HANDLE = 0x100;

const MAX_STRING = 64;

/** Collects a structure's strings; 0 stands for "no string". */
class Strings {
  readonly list: string[] = [];
  constructor(private readonly where: string) {}
  add(field: string, s: string): number {
    if (s === '') return 0;
    if (s.length > MAX_STRING || !/^[\x20-\x7e]+$/.test(s)) {
      throw new SmbiosEncodeError(`must be printable ASCII of at most ${MAX_STRING} characters: ${JSON.stringify(s.slice(0, 80))}`, { input: 'SMBIOS', at: `${this.where}.${field}` });
    }
    this.list.push(s);
    return this.list.length;
  }
}

function checkRange(where: string, field: string, v: number | bigint, max: number | bigint): void {
  if (v < 0 || v > max) throw new SmbiosEncodeError(`${String(v)} is outside 0..${String(max)}`, { input: 'SMBIOS', at: `${where}.${field}` });
}

/** One structure: formatted area then its string set (two NULs when it has no strings). */
export function encodeStructure(s: SmbiosStructure): Uint8Array {
  const where = `type ${s.type} handle 0x${s.handle.toString(16)}`;
  checkRange(where, 'handle', s.handle, 0xfeff);
  const length = STRUCTURE_LENGTH[s.type];
  const f = new Uint8Array(length);
  const v = new DataView(f.buffer);
  const str = new Strings(where);
  v.setUint8(0, s.type);
  v.setUint8(1, length);
  v.setUint16(2, s.handle, true);
  switch (s.type) {
    case 1: {
      if (s.uuid.length !== 16) throw new SmbiosEncodeError(`a UUID has 16 bytes, not ${s.uuid.length}`, { input: 'SMBIOS', at: `${where}.uuid` });
      v.setUint8(0x04, str.add('manufacturer', s.manufacturer));
      v.setUint8(0x05, str.add('product', s.product));
      v.setUint8(0x06, str.add('version', s.version));
      v.setUint8(0x07, str.add('serial', s.serial));
      // Since 2.6 the first three UUID fields are little-endian (DSP0134 7.2.1).
      const u = s.uuid;
      f.set([u[3]!, u[2]!, u[1]!, u[0]!, u[5]!, u[4]!, u[7]!, u[6]!], 0x08);
      f.set(u.subarray(8), 0x10);
      v.setUint8(0x18, 0x06); // wake-up type: power switch
      v.setUint8(0x19, str.add('sku', s.sku));
      v.setUint8(0x1a, str.add('family', s.family));
      break;
    }
    case 3:
      checkRange(where, 'chassisType', s.chassisType, 0x7f);
      v.setUint8(0x04, str.add('manufacturer', s.manufacturer));
      v.setUint8(0x05, s.chassisType);
      v.setUint8(0x06, str.add('version', s.version));
      v.setUint8(0x07, str.add('serial', s.serial));
      v.setUint8(0x08, str.add('assetTag', s.assetTag));
      v.setUint8(0x09, 0x03); // boot-up state: safe
      v.setUint8(0x0a, 0x03); // power supply state: safe
      v.setUint8(0x0b, 0x03); // thermal state: safe
      v.setUint8(0x0c, 0x02); // security status: unknown
      break;
    case 4:
      checkRange(where, 'maxSpeed', s.maxSpeed, 0xffff);
      checkRange(where, 'currentSpeed', s.currentSpeed, 0xffff);
      checkRange(where, 'cores', s.cores, 0xff);
      checkRange(where, 'threads', s.threads, 0xff);
      v.setUint8(0x04, str.add('socket', s.socket));
      v.setUint8(0x05, 0x03); // central processor
      v.setUint8(0x06, 0x01); // family: other
      v.setUint8(0x07, str.add('manufacturer', s.manufacturer));
      v.setUint8(0x10, str.add('version', s.version));
      v.setUint16(0x14, s.maxSpeed, true);
      v.setUint16(0x16, s.currentSpeed, true);
      v.setUint8(0x18, 0x41); // socket populated, CPU enabled
      v.setUint8(0x19, 0x01); // upgrade: other
      v.setUint16(0x1a, 0xffff, true); // no cache structures
      v.setUint16(0x1c, 0xffff, true);
      v.setUint16(0x1e, 0xffff, true);
      v.setUint8(0x23, s.cores);
      v.setUint8(0x24, s.cores);
      v.setUint8(0x25, s.threads);
      v.setUint16(0x26, 0x0002, true); // characteristics: unknown
      v.setUint16(0x28, 0x0001, true); // family 2: other
      break;
    case 16: {
      checkRange(where, 'devices', s.devices, 0xffff);
      const kib = s.maximumCapacity / 1024n;
      v.setUint8(0x04, 0x01); // location: other
      v.setUint8(0x05, 0x03); // use: system memory
      v.setUint8(0x06, 0x03); // error correction: none
      // Below 2 TiB the capacity is in KiB; above, 0x80000000 and the extended field in bytes.
      if (kib < 0x8000_0000n) v.setUint32(0x07, Number(kib), true);
      else {
        v.setUint32(0x07, 0x8000_0000, true);
        v.setBigUint64(0x0f, s.maximumCapacity, true);
      }
      v.setUint16(0x0b, 0xfffe, true); // no error information structure
      v.setUint16(0x0d, s.devices, true);
      break;
    }
    case 17: {
      if (s.size % (1n << 20n) !== 0n) throw new SmbiosEncodeError(`${s.size} bytes is not a whole number of MiB`, { input: 'SMBIOS', at: `${where}.size` });
      const mib = s.size >> 20n;
      checkRange(where, 'size', mib, 0x7fff_ffffn);
      v.setUint16(0x04, s.arrayHandle, true);
      v.setUint16(0x06, 0xfffe, true);
      v.setUint16(0x08, 0xffff, true); // total width: unknown
      v.setUint16(0x0a, 0xffff, true); // data width: unknown
      // Below 32 GiB - 1 MiB the size is in MiB; above, 0x7FFF and the extended field.
      if (mib < 0x7fffn) v.setUint16(0x0c, Number(mib), true);
      else {
        v.setUint16(0x0c, 0x7fff, true);
        v.setUint32(0x1c, Number(mib), true);
      }
      v.setUint8(0x0e, 0x09); // form factor: DIMM
      v.setUint8(0x10, str.add('locator', s.locator));
      v.setUint8(0x12, 0x07); // memory type: RAM
      v.setUint16(0x13, 0x0002, true); // type detail: other
      v.setUint8(0x17, str.add('manufacturer', s.manufacturer));
      break;
    }
    case 19: {
      if (s.start % 1024n !== 0n || s.end % 1024n !== 0n || s.end <= s.start) {
        throw new SmbiosEncodeError(`[0x${s.start.toString(16)}, 0x${s.end.toString(16)}) is not a non-empty KiB-aligned range`, { input: 'SMBIOS', at: `${where}.start` });
      }
      checkRange(where, 'partitionWidth', s.partitionWidth, 0xff);
      const startKib = s.start / 1024n;
      const lastKib = s.end / 1024n - 1n;
      // Ranges that do not fit 32-bit KiB addresses use the extended (byte) fields.
      if (lastKib < 0xffff_ffffn) {
        v.setUint32(0x04, Number(startKib), true);
        v.setUint32(0x08, Number(lastKib), true);
      } else {
        v.setUint32(0x04, 0xffff_ffff, true);
        v.setUint32(0x08, 0xffff_ffff, true);
        v.setBigUint64(0x0f, s.start, true);
        v.setBigUint64(0x17, s.end - 1n, true);
      }
      v.setUint16(0x0c, s.arrayHandle, true);
      v.setUint8(0x0e, s.partitionWidth);
      break;
    }
    case 32:
      checkRange(where, 'status', s.status, 0xff);
      v.setUint8(0x0a, s.status);
      break;
    case 127:
      break;
  }
  const text = str.list.length === 0 ? [0, 0] : [...str.list.flatMap((x) => [...latin1Encode(x)!, 0]), 0];
  const out = new Uint8Array(length + text.length);
  out.set(f);
  out.set(text, length);
  return out;
}

export interface EncodedSmbios {
  /** The 31-byte entry point, its table address 0 (the firmware places the table and fixes it). */
  readonly anchor: Uint8Array;
  /** The structure table. */
  readonly tables: Uint8Array;
}

/** The structure table and a 2.8 entry point describing it; the last structure must be type 127. */
export function encodeSmbios(structures: readonly SmbiosStructure[], tableAddress = 0): EncodedSmbios {
  if (structures.at(-1)?.type !== 127) throw new SmbiosEncodeError('the table must end with a type 127 structure', { input: 'SMBIOS' });
  const handles = new Set<number>();
  for (const s of structures) {
    if (handles.has(s.handle)) throw new SmbiosEncodeError(`handle 0x${s.handle.toString(16)} is used twice`, { input: 'SMBIOS', at: `type ${s.type}` });
    handles.add(s.handle);
  }
  const parts = structures.map(encodeStructure);
  const length = parts.reduce((n, p) => n + p.length, 0);
  if (length > 0xffff) throw new SmbiosEncodeError(`the structure table is ${length} bytes; a 2.x entry point describes at most 65535`, { input: 'SMBIOS' });
  const tables = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    tables.set(p, at);
    at += p.length;
  }
  const anchor = new Uint8Array(EP.size);
  const v = new DataView(anchor.buffer);
  anchor.set(latin1Encode('_SM_')!, EP.anchor);
  v.setUint8(EP.length, EP.size);
  v.setUint8(EP.major, SMBIOS_VERSION.major);
  v.setUint8(EP.minor, SMBIOS_VERSION.minor);
  v.setUint16(EP.maxStructureSize, Math.max(...parts.map((p) => p.length)), true);
  anchor.set(latin1Encode('_DMI_')!, EP.intermediateAnchor);
  v.setUint16(EP.tableLength, length, true);
  v.setUint32(EP.tableAddress, tableAddress, true);
  v.setUint16(EP.structureCount, structures.length, true);
  v.setUint8(EP.bcdRevision, (SMBIOS_VERSION.major << 4) | SMBIOS_VERSION.minor);
  fixEntryPointChecksums(anchor);
  return { anchor, tables };
}

/** Recomputes both entry-point checksums (after the table address changes, say). */
export function fixEntryPointChecksums(anchor: Uint8Array): void {
  setChecksum(anchor, EP.intermediateChecksum, EP.intermediateAnchor, EP.size);
  setChecksum(anchor, EP.checksum, 0, EP.size);
}
