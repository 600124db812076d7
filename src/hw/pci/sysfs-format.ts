import { PciDumpError } from './errors.js';

/**
 * The formats of a Linux sysfs PCI device's files, read from bytes already in hand (a live
 * sysfs tree, a host-facts archive): `config` (64 bytes for non-root readers, 256 or 4096 for
 * root) and `resource` (one `start end flags` line per BAR, then the ROM).
 */

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
