import { ByteReader, ByteWriter } from './binary.js';
import { HEADER_SIZE, type TableHeader } from './header.js';

/**
 * DSDT, SSDT (and PSDT/OSDT): a header and an AML byte stream. At this level the AML is opaque;
 * the AML codec (hw/acpi/aml) parses `aml` into a term tree and encodes it back, and a
 * rewritten table is this same shape with new `aml` bytes. Note for AML consumers: a header
 * revision below 2 means 32-bit AML integers.
 */
export interface DefinitionBlock {
  kind: 'definitionBlock';
  header: TableHeader;
  aml: Uint8Array;
}

export function decodeDefinitionBlock(r: ByteReader, header: TableHeader): DefinitionBlock {
  return { kind: 'definitionBlock', header, aml: r.copy(HEADER_SIZE, r.length) };
}

export function encodeDefinitionBlockBody(w: ByteWriter, t: DefinitionBlock): void {
  w.putBytes(t.aml, '', 'aml');
}

/** A table hvmpt does not model: a valid header and its body verbatim. */
export interface RawTable {
  kind: 'raw';
  header: TableHeader;
  body: Uint8Array;
}

export function decodeRaw(r: ByteReader, header: TableHeader): RawTable {
  return { kind: 'raw', header, body: r.copy(HEADER_SIZE, r.length) };
}

export function encodeRawBody(w: ByteWriter, t: RawTable): void {
  w.putBytes(t.body, '', 'body');
}
