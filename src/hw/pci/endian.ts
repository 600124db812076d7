/**
 * Config space is little-endian and the hot paths read it through Uint32Array views, which
 * use the host's byte order. Every host Node runs hvmpt on (x86-64, arm64) is little-endian;
 * this check turns a silent misreading on any other into a clear failure at load.
 */
export function assertLittleEndian(): void {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
    throw new Error('hvmpt PCI model: this host is big-endian; config space views assume little-endian');
  }
}

/** A little-endian value of `size` bytes at `offset`; bytes past the end read as `fill` (ones, as absent config space does). */
export function readLE(bytes: Uint8Array, offset: number, size: number, fill = 0xff): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[offset + i] ?? fill);
  return v >>> 0;
}
