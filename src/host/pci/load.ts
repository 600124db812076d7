import { basename, dirname } from 'node:path';
import { formatBdf, parseBdf, type Bdf } from '../../hw/pci/address.js';
import { IoError } from '../../errors.js';
import { readInputBytes } from '../../plan/input.js';
import { isDirectory } from '../fs.js';
import type { Capture } from '../../hw/pci/capture.js';
import { parseLspciDump } from './lspci-dump.js';
import { parseConfigBinary, readSysfsFunction, readSysfsTree } from './sysfs.js';

/** Raw config binaries hold bytes a text dump never does. */
function looksBinary(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0 || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)) return true;
  }
  return false;
}

/**
 * Loads a capture from whatever the user points at: an `lspci -x/-xxx/-xxxx` dump (text), a
 * sysfs `config` binary (given the address with `bdf`, default 00:00.0), a sysfs device
 * directory, or a directory of them (`/sys/bus/pci/devices`). Read-only.
 */
export function loadCapture(path: string, options: { bdf?: Bdf } = {}): Capture {
  if (isDirectory(path)) return readSysfsTree(path);
  // A sysfs device's own config file: its directory names the address and holds `resource`.
  if (basename(path) === 'config' && options.bdf === undefined && parseBdf(basename(dirname(path))) !== undefined) {
    return { source: path, functions: [readSysfsFunction(dirname(path))], withDomains: true };
  }
  const bytes = readInputBytes(path, 'pci');
  if (looksBinary(bytes)) {
    const bdf = options.bdf ?? { segment: 0, bus: 0, device: 0, fn: 0 };
    return {
      source: path,
      functions: [{ bdf, bytes: parseConfigBinary(bytes, path), barSizes: new Map(), description: `config binary as ${formatBdf(bdf)}`, at: path }],
      withDomains: false,
    };
  }
  return parseLspciDump(new TextDecoder().decode(bytes), path);
}
