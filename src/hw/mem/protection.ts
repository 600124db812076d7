/**
 * The protection map of an identity-mapped guest: the host-physical ranges it may map, with
 * everything else denied. Without an IOMMU this is the only thing between a guest and the
 * host's memory, so the decision is conservative: page-granular, whole-range, no wrap-around,
 * no partial pages, read-only stays read-only.
 */
import { ADDRESS_LIMIT, PAGE_SIZE, compareRanges, formatRange, intersect, type AddressRange } from './range.js';

export type Access = 'rw' | 'ro';

/** What a guest-accessible range is. */
export type GrantKind = 'ram' | 'bar' | 'firmware';

export interface Grant extends AddressRange {
  readonly access: Access;
  readonly kind: GrantKind;
  /** What it is, for messages: `identity region 0`, `0000:01:00.0 BAR0`, `VGA ROM`. */
  readonly name: string;
}

/** A range the guest must never map, and whose it is. */
export interface Forbidden extends AddressRange {
  readonly owner: string;
}

export interface RejectedGrant {
  readonly grant: Grant;
  readonly reason: string;
}

export type MapDecision =
  | { readonly allowed: true; readonly grants: readonly Grant[] }
  | { readonly allowed: false; readonly reason: string };

export type Want = 'read' | 'write';

export class ProtectionMap {
  /** Sorted, disjoint, page-aligned. */
  readonly grants: readonly Grant[];
  /** Windows asked for but refused, with the reason (sub-page BARs, overlaps with host memory…). */
  readonly rejected: readonly RejectedGrant[];

  private constructor(grants: readonly Grant[], rejected: readonly RejectedGrant[]) {
    this.grants = grants;
    this.rejected = rejected;
  }

  /**
   * Admits each requested window only if it is a well-formed, page-aligned range that touches
   * no forbidden range and no window admitted before it; the rest are recorded in `rejected`.
   */
  static build(requested: readonly Grant[], forbidden: readonly Forbidden[]): ProtectionMap {
    const grants: Grant[] = [];
    const rejected: RejectedGrant[] = [];
    for (const g of requested) {
      const reason = grantProblem(g, forbidden, grants);
      if (reason === undefined) grants.push(g);
      else rejected.push({ grant: g, reason });
    }
    grants.sort(compareRanges);
    return new ProtectionMap(grants, rejected);
  }

  /**
   * May the guest map host-physical [range.start, range.end) for `want`? Only when every byte
   * of it lies in grants that allow that access. Anything malformed is denied, never clamped.
   */
  mayMap(range: AddressRange, want: Want = 'write'): MapDecision {
    const { start, end } = range;
    if (typeof start !== 'bigint' || typeof end !== 'bigint') return deny('addresses must be bigint');
    if (start < 0n) return deny(`start ${start} is negative`);
    if (end > ADDRESS_LIMIT) return deny(`range ${formatRange(range)} runs past the top of the 64-bit address space`);
    if (end <= start) return deny(`range ${formatRange(range)} is empty or inverted`);
    if (start % PAGE_SIZE !== 0n || end % PAGE_SIZE !== 0n) {
      return deny(`range ${formatRange(range)} is not page aligned: a mapping covers whole pages, and a partial page would expose its neighbours`);
    }
    const used: Grant[] = [];
    let at = start;
    let i = this.firstGrantEndingAfter(at);
    while (at < end) {
      const g = this.grants[i];
      if (g === undefined || g.start > at) {
        return deny(`0x${at.toString(16)} is not in any range this guest may map`);
      }
      if (want === 'write' && g.access === 'ro') return deny(`${g.name} ${formatRange(g)} is read-only`);
      used.push(g);
      at = g.end;
      i++;
    }
    return { allowed: true, grants: used };
  }

  /** mayMap for a (start, size) pair as the monitor holds them; start + size past 2^64 is denied, not wrapped. */
  mayMapSpan(start: bigint, size: bigint, want: Want = 'write'): MapDecision {
    if (size <= 0n) return deny(`size ${size} is not positive`);
    return this.mayMap({ start, end: start + size }, want);
  }

  /** The grant covering `address`, if any. */
  grantAt(address: bigint): Grant | undefined {
    const g = this.grants[this.firstGrantEndingAfter(address)];
    return g !== undefined && g.start <= address ? g : undefined;
  }

  private firstGrantEndingAfter(address: bigint): number {
    let lo = 0;
    let hi = this.grants.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.grants[mid]!.end <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function deny(reason: string): MapDecision {
  return { allowed: false, reason };
}

function grantProblem(g: Grant, forbidden: readonly Forbidden[], admitted: readonly Grant[]): string | undefined {
  if (!(g.start >= 0n && g.start < g.end && g.end <= ADDRESS_LIMIT)) return `${formatRange(g)} is not a valid range`;
  if (g.start % PAGE_SIZE !== 0n || g.end % PAGE_SIZE !== 0n) {
    return `${formatRange(g)} is not page aligned; the guest can only reach it through trapped accesses`;
  }
  for (const f of forbidden) {
    const x = intersect(g, f);
    if (x !== undefined) return `${formatRange(g)} overlaps ${f.owner} at ${formatRange(x)}`;
  }
  for (const a of admitted) {
    const x = intersect(g, a);
    if (x !== undefined) return `${formatRange(g)} overlaps ${a.name} at ${formatRange(x)}`;
  }
  return undefined;
}
