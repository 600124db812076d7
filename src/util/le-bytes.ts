/**
 * Little-endian access to a byte store, as devices backed by plain memory (shadow RAM, replayed
 * BARs) serve it: bytes past the end read as ones and swallow writes, as an unclaimed bus does.
 */
export function readLe(bytes: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) v |= (offset + i < bytes.length ? bytes[offset + i]! : 0xff) << (8 * i);
  return v >>> 0;
}

export function writeLe(bytes: Uint8Array, offset: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) if (offset + i < bytes.length) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
}
