import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { InputError, IoError } from '../../errors.js';
import { readInputBytes } from '../../plan/input.js';
import { parseAcpidump } from '../../hw/acpi/dump/acpidump.js';
import type { DataBlob, TableImage } from '../../hw/acpi/dump/image.js';
import { isRsdp } from '../../hw/acpi/tables/rsdp.js';
import { peekSignature } from '../../hw/acpi/tables/table.js';
import { readTableDirectory } from './tables-dir.js';

/** What `acpi decode` and friends were pointed at, read into table images. */
export interface AcpiSource {
  readonly kind: 'acpidump' | 'directory' | 'binary';
  readonly path: string;
  readonly tables: TableImage[];
  readonly data: DataBlob[];
}

/**
 * acpidump output is plain text (acpixtract refuses anything else); a binary table holds
 * bytes no text has, in its length field if nowhere else. The RSDP is recognised by its
 * signature. A binary table too damaged to decode is still read as binary, so the decoder
 * can say what is wrong with it.
 */
export function looksLikeBinaryTable(bytes: Uint8Array): boolean {
  if (isRsdp(bytes)) return true;
  for (const b of bytes) {
    if (b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f)) continue;
    return true;
  }
  return false;
}

export function readFileBytes(path: string): Uint8Array {
  return readInputBytes(path, 'acpi');
}

/** What a path holds, by the same rules loadAcpiSource uses. */
export function loadAcpiSourceKind(path: string): AcpiSource['kind'] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new IoError(`cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path });
  }
  return isDir ? 'directory' : looksLikeBinaryTable(readFileBytes(path)) ? 'binary' : 'acpidump';
}

/** Reads an acpidump text, a directory of binary tables, or one binary table (.dat) file. */
export function loadAcpiSource(path: string): AcpiSource {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new IoError(`cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path });
  }
  if (isDir) {
    const { tables, data } = readTableDirectory(path);
    if (tables.length === 0) throw new InputError('no table files in this directory', { input: path });
    return { kind: 'directory', path, tables, data };
  }
  const bytes = readFileBytes(path);
  if (looksLikeBinaryTable(bytes)) {
    const name = basename(path).replace(/\.(dat|aml|bin)$/i, '');
    return { kind: 'binary', path, tables: [{ origin: path, name, signature: peekSignature(bytes), data: bytes }], data: [] };
  }
  return { kind: 'acpidump', path, tables: loadAcpidump(path, bytes), data: [] };
}

/** Reads an acpidump text file; fails when it holds no tables. */
export function loadAcpidump(path: string, bytes: Uint8Array = readFileBytes(path)): TableImage[] {
  const tables = parseAcpidump(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'), path);
  if (tables.length === 0) {
    throw new InputError('no tables found: expected acpidump text ("SIG @ 0x…" then hex lines), a binary table, or a directory of tables', { input: path });
  }
  return tables;
}
