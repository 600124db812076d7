import { AmlEncodeError } from './errors.js';
import type { PkgLengthWidth } from './terms.js';

/**
 * PkgLength (ACPI 6.5 section 20.2.4): 1 to 4 bytes; the lead byte's bits 6-7 count the
 * bytes that follow. A single byte holds 6 bits; a longer form holds 4 bits in the lead
 * byte and 8 in each following byte.
 */
const MAX_BY_WIDTH = [0, 0x3f, 0xfff, 0xfffff, 0xfffffff] as const;

/** The narrowest width for a structural PkgLength whose object body (after it) is `bodyLength`. */
export function minimalPkgWidth(bodyLength: number): PkgLengthWidth {
  if (bodyLength + 1 <= MAX_BY_WIDTH[1]) return 1;
  if (bodyLength + 2 <= MAX_BY_WIDTH[2]) return 2;
  if (bodyLength + 3 <= MAX_BY_WIDTH[3]) return 3;
  return 4;
}

/** The narrowest width that holds `value` (field widths are PkgLength-encoded plain numbers). */
export function minimalValueWidth(value: number): PkgLengthWidth {
  if (value <= MAX_BY_WIDTH[1]) return 1;
  if (value <= MAX_BY_WIDTH[2]) return 2;
  if (value <= MAX_BY_WIDTH[3]) return 3;
  return 4;
}

/** Largest value a width can hold. */
export function maxPkgValue(width: PkgLengthWidth): number {
  return MAX_BY_WIDTH[width];
}

/** Writes `value` in exactly `width` bytes at `out[at..]`. */
export function writePkgLength(out: Uint8Array, at: number, value: number, width: PkgLengthWidth): void {
  if (value < 0 || value > MAX_BY_WIDTH[width]) {
    throw new AmlEncodeError(`PkgLength value ${value} does not fit in ${width} byte(s)`);
  }
  if (width === 1) {
    out[at] = value;
    return;
  }
  out[at] = ((width - 1) << 6) | (value & 0x0f);
  for (let i = 1; i < width; i++) out[at + i] = (value >>> (4 + 8 * (i - 1))) & 0xff;
}
