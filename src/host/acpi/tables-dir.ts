import { readdirSync, statSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { IoError } from '../../errors.js';
import { readInputBytes } from '../../plan/input.js';
import type { DataBlob, TableImage } from '../../hw/acpi/dump/image.js';
import { peekSignature } from '../../hw/acpi/tables/table.js';

/** Where Linux exposes the firmware's tables (root only). */
export const SYSFS_TABLES = '/sys/firmware/acpi/tables';

export interface TableDirectory {
  /** Tables in the directory and its dynamic/ folder (tables the OS loaded at run time). */
  readonly tables: TableImage[];
  /** Files of its data/ folder: firmware data regions, not tables. */
  readonly data: DataBlob[];
}

/** "SSDT2" before "SSDT10". */
function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).sort((a, b) => naturalCompare(a.name, b.name));
  } catch (err) {
    throw new IoError(`cannot list directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: dir });
  }
}

function readBytes(path: string): Uint8Array {
  try {
    return readInputBytes(path, 'acpi');
  } catch (err) {
    if (err instanceof IoError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EACCES') {
      throw new IoError('cannot read: EACCES (the firmware tables are readable by root only)', { input: path }, { cause: err.cause });
    }
    throw err;
  }
}

function isFile(dir: string, e: Dirent): boolean {
  if (e.isFile()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(join(dir, e.name)).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads a directory of binary tables: /sys/firmware/acpi/tables (files named by signature,
 * SSDT1…SSDTn, with dynamic/ and data/ folders), `acpidump -b` output or acpixtract's .dat
 * files. Only reads; the tables are decoded by the caller.
 */
export function readTableDirectory(dir: string): TableDirectory {
  const tables: TableImage[] = [];
  const data: DataBlob[] = [];
  const addTables = (folder: string, prefix: string): void => {
    for (const e of entries(folder)) {
      if (!isFile(folder, e)) continue;
      const path = join(folder, e.name);
      const bytes = readBytes(path);
      tables.push({ origin: path, name: prefix + e.name, signature: peekSignature(bytes), data: bytes });
    }
  };
  addTables(dir, '');
  for (const e of entries(dir)) {
    if (!e.isDirectory()) continue;
    if (e.name === 'dynamic') addTables(join(dir, e.name), 'dynamic/');
    if (e.name === 'data') {
      const folder = join(dir, e.name);
      for (const f of entries(folder)) {
        if (isFile(folder, f)) data.push({ origin: join(folder, f.name), name: `data/${f.name}`, data: readBytes(join(folder, f.name)) });
      }
    }
  }
  return { tables, data };
}
