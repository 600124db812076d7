import { checksumOk } from '../checksum.js';
import { AcpiParseError } from '../errors.js';
import { DEFINITION_BLOCK_SIGNATURES, printableSignature } from '../signatures.js';
import { ByteReader, ByteWriter, latin1Decode, type TraceEntry } from './binary.js';
import { type DefinitionBlock, type RawTable, decodeDefinitionBlock, decodeRaw, encodeDefinitionBlockBody, encodeRawBody } from './definition-block.js';
import { type Dmar, decodeDmar, encodeDmarBody } from './dmar.js';
import { type Facs, decodeFacs, encodeFacs } from './facs.js';
import { type Fadt, decodeFadt, encodeFadtBody } from './fadt.js';
import { HEADER_SIZE, type RawTableHeader, type TableHeader, encodeStandardTable, modelHeader, readHeader } from './header.js';
import { type Hpet, decodeHpet, encodeHpetBody } from './hpet.js';
import { type Ivrs, decodeIvrs, encodeIvrsBody } from './ivrs.js';
import { type Madt, decodeMadt, encodeMadtBody } from './madt.js';
import { type Mcfg, decodeMcfg, encodeMcfgBody } from './mcfg.js';
import { type Rsdp, decodeRsdp, encodeRsdp, isRsdp, rsdpLength } from './rsdp.js';
import { type Rsdt, type Xsdt, decodeRsdt, decodeXsdt, encodeRsdtBody, encodeXsdtBody } from './sdt.js';
import { type Slit, decodeSlit, encodeSlitBody } from './slit.js';
import { type Srat, decodeSrat, encodeSratBody } from './srat.js';

/** Every table hvmpt reads and writes; `kind` tells them apart. */
export type AcpiTable = Rsdp | Rsdt | Xsdt | Fadt | Facs | Madt | Mcfg | Hpet | Dmar | Ivrs | Srat | Slit | DefinitionBlock | RawTable;

/** Tables with the standard 36-byte header. */
export type StandardTable = Exclude<AcpiTable, Rsdp | Facs>;

/** The signature each typed kind is stored under. */
export const KIND_SIGNATURE = {
  rsdt: 'RSDT',
  xsdt: 'XSDT',
  fadt: 'FACP',
  madt: 'APIC',
  mcfg: 'MCFG',
  hpet: 'HPET',
  dmar: 'DMAR',
  ivrs: 'IVRS',
  srat: 'SRAT',
  slit: 'SLIT',
} as const;

export interface DecodeOptions {
  /** Names the input in errors ("dump.txt: APIC"); defaults to the signature. */
  readonly input?: string;
}

/** A table's signature as hvmpt names it ("RSDP" for the RSD PTR structure). */
export function tableSignature(table: AcpiTable): string {
  if (table.kind === 'rsdp') return 'RSDP';
  if (table.kind === 'facs') return 'FACS';
  return table.header.signature;
}

/** The standard header of a table model; undefined for the RSDP and FACS, which have none. */
export function tableHeaderOf(table: AcpiTable): TableHeader | undefined {
  return table.kind === 'rsdp' || table.kind === 'facs' ? undefined : table.header;
}

/** The signature at the start of some table bytes, without validating anything else. */
export function peekSignature(data: Uint8Array): string {
  if (isRsdp(data)) return 'RSDP';
  return latin1Decode(data, 0, Math.min(4, data.length));
}

/**
 * How long the table at the start of `data` says it is: the RSDP's own rule (20 bytes for
 * revision 0, its length field after), the FACS's and every other table's length field.
 * Fails on bytes too short to hold the length, or a length below the header.
 */
export function declaredLength(data: Uint8Array, input?: string): number {
  const r = new ByteReader(data, input ?? printableSignature(peekSignature(data)));
  if (isRsdp(data)) return rsdpLength(r);
  if (data.length < 8) r.fail(0, `${data.length} bytes are too few for a table (signature and length need 8)`);
  const length = r.u32(4);
  const min = peekSignature(data) === 'FACS' ? 8 : HEADER_SIZE;
  if (length < min) r.fail(4, `length field says ${length}, less than the ${min}-byte header`);
  return length;
}

/** The standard header as found in the bytes (length and checksum included). */
export function readTableHeader(data: Uint8Array, input?: string): RawTableHeader {
  const r = new ByteReader(data, input ?? printableSignature(peekSignature(data)));
  if (data.length < HEADER_SIZE) r.fail(0, `${data.length} bytes are too few for a table header (${HEADER_SIZE})`);
  return readHeader(r);
}

/**
 * Whether the table's checksum(s) hold. The FACS has none (always true); the RSDP's revision-2
 * extended checksum is checked too.
 */
export function tableChecksumOk(data: Uint8Array): boolean {
  if (isRsdp(data)) {
    if (data.length < 20 || !checksumOk(data, 0, 20)) return false;
    if (data[15]! < 2) return true;
    const length = data.length >= 24 ? new DataView(data.buffer, data.byteOffset).getUint32(20, true) : 0;
    return length <= data.length && checksumOk(data, 0, length);
  }
  if (peekSignature(data) === 'FACS') return true;
  const length = data.length >= 8 ? new DataView(data.buffer, data.byteOffset).getUint32(4, true) : 0;
  return length <= data.length && length >= HEADER_SIZE && checksumOk(data, 0, length);
}

/**
 * Decodes one table. `data` must hold exactly the table: as many bytes as its length field
 * says (`declaredLength`); cut a longer buffer first. Malformed content throws AcpiParseError
 * naming the offset. Checksums are not enforced here (see tableChecksumOk): encoding
 * recomputes them.
 */
export function decodeTable(data: Uint8Array, options: DecodeOptions = {}): AcpiTable {
  const input = options.input ?? printableSignature(peekSignature(data));
  const length = declaredLength(data, input);
  const r = new ByteReader(data, input);
  if (length !== data.length) {
    r.fail(length <= data.length ? length : 4, `table declares length ${length} but ${data.length} bytes were given`);
  }
  if (isRsdp(data)) return decodeRsdp(r);
  const signature = peekSignature(data);
  if (signature === 'FACS') return decodeFacs(r);
  if (length < HEADER_SIZE) r.fail(4, `length ${length} is less than the ${HEADER_SIZE}-byte header`);
  const header = modelHeader(readHeader(r));
  switch (signature) {
    case 'RSDT':
      return decodeRsdt(r, header);
    case 'XSDT':
      return decodeXsdt(r, header);
    case 'FACP':
      return decodeFadt(r, header);
    case 'APIC':
      return decodeMadt(r, header);
    case 'MCFG':
      return decodeMcfg(r, header);
    case 'HPET':
      return decodeHpet(r, header);
    case 'DMAR':
      return decodeDmar(r, header);
    case 'IVRS':
      return decodeIvrs(r, header);
    case 'SRAT':
      return decodeSrat(r, header);
    case 'SLIT':
      return decodeSlit(r, header);
    default:
      return DEFINITION_BLOCK_SIGNATURES.has(signature) ? decodeDefinitionBlock(r, header) : decodeRaw(r, header);
  }
}

/**
 * Like decodeTable, but a table whose typed body is malformed comes back as a raw table (its
 * bytes kept verbatim) together with the problem, so a rewrite can pass it through untouched.
 * Bytes without a usable header (too short, a length that does not match) still throw.
 */
export function decodeTableOrRaw(data: Uint8Array, options: DecodeOptions = {}): { table: AcpiTable; problem?: AcpiParseError } {
  try {
    return { table: decodeTable(data, options) };
  } catch (err) {
    if (!(err instanceof AcpiParseError) || isRsdp(data) || peekSignature(data) === 'FACS' || declaredLength(data, options.input) !== data.length) throw err;
    const r = new ByteReader(data, options.input ?? printableSignature(peekSignature(data)));
    return { table: decodeRaw(r, modelHeader(readHeader(r))), problem: err };
  }
}

export interface EncodeOptions {
  /** When given, receives every field written: offset, size, model path, value. */
  readonly trace?: TraceEntry[];
}

/**
 * Encodes a table model to bytes: lengths (the table's and every subtable's) and checksums
 * are computed. A model decoded from bytes with valid checksums encodes back to exactly
 * those bytes. Values that do not fit their fields throw AcpiEncodeError naming the path.
 */
export function encodeTable(table: AcpiTable, options: EncodeOptions = {}): Uint8Array {
  const signature = tableSignature(table);
  const w = new ByteWriter(printableSignature(signature), options.trace, table.kind === 'definitionBlock' ? table.aml.length + 64 : 256);
  switch (table.kind) {
    case 'rsdp':
      encodeRsdp(w, table);
      break;
    case 'facs':
      encodeFacs(w, table);
      break;
    default: {
      const t = table;
      if (t.kind in KIND_SIGNATURE && KIND_SIGNATURE[t.kind as keyof typeof KIND_SIGNATURE] !== t.header.signature) {
        w.fail('header.signature', `a ${t.kind} table must have signature ${KIND_SIGNATURE[t.kind as keyof typeof KIND_SIGNATURE]}, not ${JSON.stringify(t.header.signature)}`);
      }
      if (t.kind === 'definitionBlock' && !DEFINITION_BLOCK_SIGNATURES.has(t.header.signature)) {
        w.fail('header.signature', `a definition block must be a DSDT, SSDT, PSDT or OSDT, not ${JSON.stringify(t.header.signature)}`);
      }
      encodeStandardTable(w, t.header, () => encodeBody(w, t));
    }
  }
  if (options.trace !== undefined) options.trace.sort((a, b) => a.offset - b.offset);
  return w.finish();
}

function encodeBody(w: ByteWriter, t: StandardTable): void {
  switch (t.kind) {
    case 'rsdt':
      return encodeRsdtBody(w, t);
    case 'xsdt':
      return encodeXsdtBody(w, t);
    case 'fadt':
      return encodeFadtBody(w, t);
    case 'madt':
      return encodeMadtBody(w, t);
    case 'mcfg':
      return encodeMcfgBody(w, t);
    case 'hpet':
      return encodeHpetBody(w, t);
    case 'dmar':
      return encodeDmarBody(w, t);
    case 'ivrs':
      return encodeIvrsBody(w, t);
    case 'srat':
      return encodeSratBody(w, t);
    case 'slit':
      return encodeSlitBody(w, t);
    case 'definitionBlock':
      return encodeDefinitionBlockBody(w, t);
    case 'raw':
      return encodeRawBody(w, t);
  }
}

/** The field listing of a table model: every field encoding writes, in offset order. */
export function traceTable(table: AcpiTable): TraceEntry[] {
  const trace: TraceEntry[] = [];
  encodeTable(table, { trace });
  return trace;
}

/**
 * Cuts a buffer holding a table (a dump block, a file) into the table proper and whatever
 * follows its declared length. Fails when the buffer is shorter than the table claims.
 */
export function splitTableBytes(data: Uint8Array, input?: string): { table: Uint8Array; excess: Uint8Array } {
  const length = declaredLength(data, input);
  if (length > data.length) {
    const r = new ByteReader(data, input ?? printableSignature(peekSignature(data)));
    r.fail(isRsdp(data) ? 20 : 4, `table declares length ${length}, only ${data.length} bytes there`);
  }
  return { table: data.subarray(0, length), excess: data.subarray(length) };
}
