/** Hex with a 0x prefix, zero-padded to `digits` (bigint-safe for 64-bit addresses). */
export function hex(value: number | bigint, digits = 0): string {
  const s = value.toString(16);
  return '0x' + (digits > 0 ? s.padStart(digits, '0') : s);
}

const SIZE_SUFFIX: ReadonlyArray<readonly [string, bigint]> = [
  ['T', 1n << 40n],
  ['G', 1n << 30n],
  ['M', 1n << 20n],
  ['K', 1n << 10n],
];

/** 4096 -> "4K", 3 GiB -> "3G"; sizes that are not whole units stay in bytes. */
export function formatSize(bytes: bigint): string {
  for (const [suffix, unit] of SIZE_SUFFIX) {
    if (bytes >= unit && bytes % unit === 0n) return `${bytes / unit}${suffix}`;
  }
  return `${bytes}`;
}

/**
 * Parses "4096", "0x1000", "4K", "4KiB", "1G", "512M". Returns undefined on anything else,
 * so callers raise an error that names their own input.
 */
export function parseSize(text: string): bigint | undefined {
  const m = /^\s*(0x[0-9a-f]+|\d+)\s*([KMGT])?(?:i?B)?\s*$/i.exec(text);
  if (m === null) return undefined;
  const base = BigInt(m[1]!);
  const suffix = m[2]?.toUpperCase();
  if (suffix === undefined) return base;
  const unit = SIZE_SUFFIX.find(([s]) => s === suffix);
  return unit === undefined ? undefined : base * unit[1];
}

/** A path into structured data as plans write it: `pci.devices[2].bars[0].size`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
