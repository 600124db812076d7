import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseBdf, type Bdf } from '../../hw/pci/address.js';
import { PciDumpError } from '../../hw/pci/errors.js';
import { IoError } from '../../errors.js';
import type { Capture, CapturedFunction } from '../../hw/pci/capture.js';

/**
 * Reading the host's PCI functions from sysfs, read-only: `config` (the kernel gives 64 bytes
 * to non-root readers, 256 or 4096 to root) and `resource` (one `start end flags` line per
 * BAR, then the ROM), which gives the BAR sizes a hex dump lacks. Nothing here writes.
 */

function readBytes(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new IoError(`cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: path }, { cause: err });
  }
}

/** Validates a sysfs `config` binary (or any raw config-space file). */
export function parseConfigBinary(bytes: Uint8Array, source: string): Uint8Array {
  if (bytes.length < 0x40) throw new PciDumpError(`${bytes.length} bytes: a config space holds at least the 64-byte header`, { input: source });
  if (bytes.length > 0x1000) throw new PciDumpError(`${bytes.length} bytes: a config space holds at most 4096`, { input: source });
  return bytes;
}

/**
 * Parses sysfs `resource`: line i is BAR i (0-5), line 6 the expansion ROM; an all-zero line
 * is an unimplemented BAR. Sizes are end - start + 1.
 */
export function parseResourceFile(text: string, source: string): Map<number, bigint> {
  const sizes = new Map<number, bigint>();
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  lines.slice(0, 7).forEach((line, i) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3 || !parts.every((p) => /^0x[0-9a-f]+$/i.test(p))) {
      throw new PciDumpError(`expected "0xSTART 0xEND 0xFLAGS", got "${line.trim().slice(0, 60)}"`, { input: source, at: `line ${i + 1}` });
    }
    const start = BigInt(parts[0]!);
    const end = BigInt(parts[1]!);
    if (end > start || (end === start && BigInt(parts[2]!) !== 0n)) sizes.set(i, end - start + 1n);
  });
  return sizes;
}

/** One sysfs device directory (`/sys/bus/pci/devices/0000:00:1f.3`). */
export function readSysfsFunction(dir: string, bdf?: Bdf): CapturedFunction {
  const name = basename(dir);
  const address = bdf ?? parseBdf(name);
  if (address === undefined) throw new PciDumpError(`cannot tell the function's address from the directory name "${name}"`, { input: dir });
  const bytes = parseConfigBinary(readBytes(join(dir, 'config')), join(dir, 'config'));
  let barSizes = new Map<number, bigint>();
  try {
    barSizes = parseResourceFile(readFileSync(join(dir, 'resource'), 'utf8'), join(dir, 'resource'));
  } catch (err) {
    if (err instanceof PciDumpError) throw err;
    // No resource file (a copied config alone): sizes stay unknown.
  }
  return { bdf: address, bytes, barSizes, description: 'sysfs', at: dir };
}

/** A directory of sysfs device directories (`/sys/bus/pci/devices`), or one device directory. */
export function readSysfsTree(dir: string): Capture {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new IoError(`cannot list: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: dir }, { cause: err });
  }
  if (entries.includes('config')) return { source: dir, functions: [readSysfsFunction(dir)], withDomains: true };
  const functions = entries
    .filter((e) => parseBdf(e) !== undefined)
    .filter((e) => {
      try {
        return statSync(join(dir, e, 'config')).isFile();
      } catch {
        return false;
      }
    })
    .map((e) => readSysfsFunction(join(dir, e)));
  if (functions.length === 0) throw new PciDumpError('no PCI device directories with a config file', { input: dir });
  return { source: dir, functions, withDomains: true };
}
