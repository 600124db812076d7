import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Rng } from '../../src/util/rng.js';

/**
 * A disk image of `size` seeded pseudo-random bytes (xorshift32), written to `path`: what the
 * lab's nvme serves, with the sha256 the guest's read must give.
 */
export function writeSeededImage(path: string, size: number, seed: number): { readonly bytes: Uint8Array; readonly sha256: string } {
  const rng = new Rng(seed);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = rng.next() & 0xff;
  writeFileSync(path, bytes);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
