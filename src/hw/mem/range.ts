/**
 * Physical address ranges. Addresses are bigint because x86 physical space is 64-bit and a
 * JavaScript number loses exactness above 2^53. Every range is half-open, [start, end), so
 * that adjacent ranges share an edge without arithmetic on inclusive ends, and a range that
 * reaches the very top of the space has end = 2^64 (which fits in a bigint, not in a u64).
 */
export interface AddressRange {
  readonly start: bigint;
  /** Exclusive. At most {@link ADDRESS_LIMIT}. */
  readonly end: bigint;
}

/** One past the highest 64-bit physical address. */
export const ADDRESS_LIMIT = 1n << 64n;
export const PAGE_SIZE = 0x1000n;
export const MiB = 1n << 20n;
export const GiB = 1n << 30n;

/** True for a well-formed, non-empty range inside the 64-bit space. */
export function isValidRange(r: AddressRange): boolean {
  return r.start >= 0n && r.start < r.end && r.end <= ADDRESS_LIMIT;
}

export function rangeSize(r: AddressRange): bigint {
  return r.end - r.start;
}

export function overlaps(a: AddressRange, b: AddressRange): boolean {
  return a.start < b.end && b.start < a.end;
}

/** True when `inner` lies entirely within `outer`. */
export function contains(outer: AddressRange, inner: AddressRange): boolean {
  return outer.start <= inner.start && inner.end <= outer.end;
}

export function intersect(a: AddressRange, b: AddressRange): AddressRange | undefined {
  const start = a.start > b.start ? a.start : b.start;
  const end = a.end < b.end ? a.end : b.end;
  return start < end ? { start, end } : undefined;
}

export function alignUp(value: bigint, align: bigint): bigint {
  return ((value + align - 1n) / align) * align;
}

export function alignDown(value: bigint, align: bigint): bigint {
  return (value / align) * align;
}

export function isPowerOfTwo(value: bigint): boolean {
  return value > 0n && (value & (value - 1n)) === 0n;
}

/** Sorts by start and merges overlapping or touching ranges. */
export function unionRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = ranges.filter((r) => r.start < r.end).sort(compareRanges);
  const out: AddressRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) {
      if (r.end > last.end) out[out.length - 1] = { start: last.start, end: r.end };
    } else {
      out.push({ start: r.start, end: r.end });
    }
  }
  return out;
}

/** `from` minus every range in `remove`, as sorted disjoint ranges. */
export function subtractRanges(from: readonly AddressRange[], remove: readonly AddressRange[]): AddressRange[] {
  const cuts = unionRanges(remove);
  const out: AddressRange[] = [];
  for (const r of unionRanges(from)) {
    let start = r.start;
    for (const c of cuts) {
      if (c.end <= start) continue;
      if (c.start >= r.end) break;
      if (c.start > start) out.push({ start, end: c.start });
      start = c.end > start ? c.end : start;
      if (start >= r.end) break;
    }
    if (start < r.end) out.push({ start, end: r.end });
  }
  return out;
}

export function compareRanges(a: AddressRange, b: AddressRange): number {
  return a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : a.end > b.end ? 1 : 0;
}

/** "[0x1000, 0x2000)" — half-open, as every range in hvmpt. */
export function formatRange(r: AddressRange): string {
  return `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`;
}

/** "1 GiB", "572 KiB", or "123456789 bytes (117.7 MiB)": exact where it can be, readable always. */
export function sizeText(bytes: bigint): string {
  for (const [name, shift] of [['TiB', 40n], ['GiB', 30n], ['MiB', 20n]] as const) {
    const unit = 1n << shift;
    if (bytes >= unit && bytes % unit === 0n) return `${bytes / unit} ${name}`;
  }
  if (bytes < MiB && bytes >= 1024n && bytes % 1024n === 0n) return `${bytes / 1024n} KiB`;
  return bytes >= MiB ? `${bytes} bytes (${(Number(bytes) / 2 ** 20).toFixed(1)} MiB)` : `${bytes} bytes`;
}
