import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseBdf, type Bdf } from '../../hw/pci/address.js';
import { PciDumpError } from '../../hw/pci/errors.js';
import { IoError } from '../../errors.js';
import { readInputBytes, readInputText } from '../../plan/input.js';
import type { Capture, CapturedFunction } from '../../hw/pci/capture.js';
import { parseConfigBinary, parseResourceFile } from '../../hw/pci/sysfs-format.js';

export { parseConfigBinary, parseResourceFile };

/**
 * Reading the host's PCI functions from sysfs, read-only: `config` (the kernel gives 64 bytes
 * to non-root readers, 256 or 4096 to root) and `resource` (one `start end flags` line per
 * BAR, then the ROM), which gives the BAR sizes a hex dump lacks. Nothing here writes.
 */

/** One sysfs device directory (`/sys/bus/pci/devices/0000:00:1f.3`). */
export function readSysfsFunction(dir: string, bdf?: Bdf): CapturedFunction {
  const name = basename(dir);
  const address = bdf ?? parseBdf(name);
  if (address === undefined) throw new PciDumpError(`cannot tell the function's address from the directory name "${name}"`, { input: dir });
  const bytes = parseConfigBinary(readInputBytes(join(dir, 'config'), 'pci'), join(dir, 'config'));
  let barSizes = new Map<number, bigint>();
  try {
    barSizes = parseResourceFile(readInputText(join(dir, 'resource'), 'pci'), join(dir, 'resource'));
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
