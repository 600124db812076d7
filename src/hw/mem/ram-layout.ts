/** Where a guest has RAM: guest-physical ranges, and the figures firmware derives from them. */

const FOUR_GIB = 0x1_0000_0000n;

/** A guest-physical RAM range, [start, end). */
export interface RamRange {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * Where the guest has RAM: guest-physical ranges, sorted and disjoint, page aligned. An
 * ordinary layout is one range from 0 (plus one above 4 GiB); an identity layout has RAM only
 * at the host addresses its plan carved, plus private low memory.
 */
export interface RamLayout {
  readonly ranges: readonly RamRange[];
}

/** The one-range (and above-4-GiB) layout of an ordinary guest with `bytes` of RAM and a PCI hole from `holeStart`. */
export function ordinaryLayout(bytes: bigint, holeStart = 0xe000_0000n): RamLayout {
  const low = bytes < holeStart ? bytes : holeStart;
  const ranges: RamRange[] = [{ start: 0n, end: low }];
  if (bytes > low) ranges.push({ start: FOUR_GIB, end: FOUR_GIB + (bytes - low) });
  return { ranges };
}

/** RAM below 4 GiB ends here (what CMOS, linuxboot's initrd limit and SeaBIOS's RamSize mean). */
export function ramTopBelow4G(layout: RamLayout): number {
  let top = 0n;
  for (const r of layout.ranges) if (r.start < FOUR_GIB) top = r.end < FOUR_GIB ? r.end : FOUR_GIB;
  return Number(top);
}

export function ramAbove4G(layout: RamLayout): bigint {
  let n = 0n;
  for (const r of layout.ranges) if (r.end > FOUR_GIB) n += r.end - (r.start > FOUR_GIB ? r.start : FOUR_GIB);
  return n;
}

export function ramTotal(layout: RamLayout): bigint {
  return layout.ranges.reduce((n, r) => n + (r.end - r.start), 0n);
}

