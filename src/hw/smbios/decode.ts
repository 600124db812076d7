import { HvmptError } from '../../errors.js';
import { checksumOk } from '../acpi/checksum.js';
import { latin1Decode } from '../acpi/tables/binary.js';
import { EP } from './encode.js';
import type { RawStructure } from './structures.js';

/** SMBIOS bytes that do not hold what they claim; `at` is the byte offset. */
export class SmbiosDecodeError extends HvmptError {}

export interface EntryPoint {
  readonly version: { readonly major: number; readonly minor: number };
  readonly maxStructureSize: number;
  readonly tableLength: number;
  readonly tableAddress: number;
  readonly structureCount: number;
}

const fail = (input: string, offset: number, message: string): never => {
  throw new SmbiosDecodeError(message, { input, at: `offset 0x${offset.toString(16)}` });
};

/** A 32-bit ("_SM_") entry point, both checksums checked. */
export function decodeEntryPoint(bytes: Uint8Array, input = 'SMBIOS entry point'): EntryPoint {
  if (bytes.length < EP.size) fail(input, bytes.length, `${bytes.length} bytes; a 2.x entry point has ${EP.size}`);
  if (latin1Decode(bytes, 0, 4) !== '_SM_') fail(input, 0, 'no "_SM_" anchor');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = v.getUint8(EP.length);
  if (length < EP.size || length > bytes.length) fail(input, EP.length, `entry point length ${length} (expected ${EP.size})`);
  if (!checksumOk(bytes, 0, length)) fail(input, EP.checksum, 'entry point checksum is wrong');
  if (latin1Decode(bytes, EP.intermediateAnchor, EP.intermediateAnchor + 5) !== '_DMI_') fail(input, EP.intermediateAnchor, 'no "_DMI_" intermediate anchor');
  if (!checksumOk(bytes, EP.intermediateAnchor, EP.size)) fail(input, EP.intermediateChecksum, 'intermediate checksum is wrong');
  return {
    version: { major: v.getUint8(EP.major), minor: v.getUint8(EP.minor) },
    maxStructureSize: v.getUint16(EP.maxStructureSize, true),
    tableLength: v.getUint16(EP.tableLength, true),
    tableAddress: v.getUint32(EP.tableAddress, true),
    structureCount: v.getUint16(EP.structureCount, true),
  };
}

/**
 * Walks a structure table: each structure's formatted area, then its strings up to the double
 * NUL. Stops after type 127 or at the end; never reads past `bytes`, so any input ends in
 * structures or a SmbiosDecodeError.
 */
export function decodeStructures(bytes: Uint8Array, input = 'SMBIOS table'): RawStructure[] {
  const out: RawStructure[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) fail(input, at, 'a structure header runs past the table');
    const type = bytes[at]!;
    const length = bytes[at + 1]!;
    if (length < 4) fail(input, at + 1, `structure length ${length} is shorter than its header`);
    if (at + length > bytes.length) fail(input, at + 1, `structure length ${length} runs past the table`);
    const handle = bytes[at + 2]! | (bytes[at + 3]! << 8);
    const strings: string[] = [];
    let p = at + length;
    // The string set: NUL-terminated strings, ended by one more NUL; an empty set is two NULs.
    if (p + 1 < bytes.length && bytes[p] === 0 && bytes[p + 1] === 0) p += 2;
    else {
      for (;;) {
        const end = bytes.indexOf(0, p);
        if (end < 0) fail(input, p, 'a string runs past the table');
        strings.push(latin1Decode(bytes, p, end));
        p = end + 1;
        if (p >= bytes.length) fail(input, p, 'the string set has no terminating NUL');
        if (bytes[p] === 0) {
          p++;
          break;
        }
      }
    }
    out.push({ type, handle, formatted: bytes.slice(at, at + length), strings, offset: at });
    at = p;
    if (type === 127) break;
  }
  return out;
}

/** A string field of a structure: the string its byte at `offset` numbers, '' for none. */
export function structureString(s: RawStructure, offset: number): string {
  if (offset >= s.formatted.length) return '';
  const n = s.formatted[offset]!;
  return n === 0 ? '' : (s.strings[n - 1] ?? '');
}

export const word = (s: RawStructure, offset: number): number => (offset + 2 <= s.formatted.length ? s.formatted[offset]! | (s.formatted[offset + 1]! << 8) : 0);

export const dword = (s: RawStructure, offset: number): number =>
  offset + 4 <= s.formatted.length ? new DataView(s.formatted.buffer, s.formatted.byteOffset).getUint32(offset, true) : 0;
