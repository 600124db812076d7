/**
 * ACPI checksums: the bytes a checksum covers must add up to zero modulo 256. Tables carry
 * theirs at offset 9; the RSDP carries two (the first 20 bytes, and its whole length).
 */

/** The 8-bit sum of `bytes[start, end)`. */
export function sum8(bytes: Uint8Array, start = 0, end: number = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum += bytes[i]!;
  return sum & 0xff;
}

/**
 * Stores at `at` the byte that makes `bytes[start, end)` sum to zero (`at` lies inside the
 * range, and its old value does not matter). Returns the stored byte.
 */
export function setChecksum(bytes: Uint8Array, at: number, start = 0, end: number = bytes.length): number {
  bytes[at] = 0;
  const value = (0x100 - sum8(bytes, start, end)) & 0xff;
  bytes[at] = value;
  return value;
}

/** True when `bytes[start, end)` sums to zero. */
export function checksumOk(bytes: Uint8Array, start = 0, end: number = bytes.length): boolean {
  return sum8(bytes, start, end) === 0;
}
