/**
 * The E820 memory map model: what firmware says each physical range is. Everything here is
 * pure; parsers (e820-parse.ts) and printers (e820-format.ts) sit beside it.
 */
import { ADDRESS_LIMIT, type AddressRange } from './range.js';

/**
 * The range types hvmpt distinguishes. The first eight are the BIOS/ACPI E820 types Linux
 * knows (codes 1-5, 7, 12 and 0xefffffff); `1:1` is hvmpt's own: host RAM carved out for a
 * guest's identity layout (Xen-style logs print it as `(1:1)`); anything else keeps its numeric
 * code as `type-N` so a map round-trips without losing what firmware said.
 */
export type E820Type =
  | 'usable'
  | 'reserved'
  | 'acpi'
  | 'nvs'
  | 'unusable'
  | 'pmem'
  | 'pram'
  | 'soft-reserved'
  | '1:1'
  | `type-${number}`;

export interface E820Entry extends AddressRange {
  readonly type: E820Type;
}

/** A sorted, non-overlapping map (the output of normalizeE820). */
export interface E820Map {
  readonly entries: readonly E820Entry[];
}

const CODE_OF: Readonly<Record<string, number>> = {
  usable: 1,
  reserved: 2,
  acpi: 3,
  nvs: 4,
  unusable: 5,
  pmem: 7,
  pram: 12,
  'soft-reserved': 0xefffffff,
};

/** The E820 type code firmware uses; `1:1` has none (it is reserved as far as firmware is concerned). */
export function e820Code(type: E820Type): number | undefined {
  const known = CODE_OF[type];
  if (known !== undefined) return known;
  const m = /^type-(\d+)$/.exec(type);
  return m === null ? undefined : Number(m[1]);
}

export function typeFromCode(code: number): E820Type {
  for (const [name, c] of Object.entries(CODE_OF)) if (c === code) return name as E820Type;
  return `type-${code}`;
}

/** Accepts hvmpt's own JSON type names. */
export function parseTypeName(name: string): E820Type | undefined {
  if (name in CODE_OF || name === '1:1') return name as E820Type;
  const m = /^type-(\d{1,10})$/.exec(name);
  if (m === null) return undefined;
  const code = Number(m[1]);
  return code <= 0xffffffff ? typeFromCode(code) : undefined;
}

/**
 * Precedence when ranges overlap: the type that is safest to assume wins. Memory that some
 * entry says is unusable or reserved must never be handed out as RAM, ACPI NVS must survive
 * suspend so it beats reclaimable ACPI data, and plain RAM loses to everything. Linux's own
 * sanitizer lets the larger type code win, which would rank `type-20` or persistent memory
 * above `reserved`; hvmpt ranks every unknown type with `reserved`, because not knowing what a
 * range is means not touching it.
 */
export function typeRank(type: E820Type): number {
  switch (type) {
    case 'unusable':
      return 90;
    case 'reserved':
      return 80;
    case 'nvs':
      return 60;
    case 'acpi':
      return 50;
    case '1:1':
      return 40;
    case 'pmem':
      return 30;
    case 'pram':
      return 29;
    case 'soft-reserved':
      return 20;
    case 'usable':
      return 0;
    default:
      // Unknown firmware types are treated as reserved; ties broken by code so the result is deterministic.
      return 80 - 1 / (1 + (e820Code(type) ?? 0));
  }
}

export interface OverlapWarning {
  readonly kind: 'overlap';
  /** The overlapping piece. */
  readonly range: AddressRange;
  readonly types: readonly E820Type[];
  readonly winner: E820Type;
  readonly message: string;
}

export interface EmptyEntryWarning {
  readonly kind: 'empty';
  readonly start: bigint;
  readonly type: E820Type;
  readonly message: string;
}

export type E820Warning = OverlapWarning | EmptyEntryWarning;

export interface NormalizeResult {
  readonly map: E820Map;
  readonly warnings: readonly E820Warning[];
}

/**
 * Sorts, resolves overlaps by {@link typeRank} (warning once per overlapping piece), drops
 * empty entries (with a warning) and merges adjacent entries of the same type. The result is
 * a fixed point: normalizing it again changes nothing and warns about nothing.
 * Entries must already be within [0, 2^64) with start <= end; parsers guarantee that.
 */
export function normalizeE820(entries: readonly E820Entry[]): NormalizeResult {
  const warnings: E820Warning[] = [];
  const live: E820Entry[] = [];
  for (const e of entries) {
    if (e.start < 0n || e.end > ADDRESS_LIMIT || e.start > e.end) {
      throw new RangeError(`E820 entry [0x${e.start.toString(16)}, 0x${e.end.toString(16)}) is outside the 64-bit space`);
    }
    if (e.start === e.end) {
      warnings.push({
        kind: 'empty',
        start: e.start,
        type: e.type,
        message: `empty ${e.type} entry at 0x${e.start.toString(16)} dropped`,
      });
    } else {
      live.push(e);
    }
  }
  // Sweep over every boundary; between two consecutive boundaries the set of covering
  // entries is constant, so the winner is decided once per piece. Entries start and end in
  // sorted order and the covering set is kept as a count per type, so the sweep is
  // O(n log n) in entries (times the few distinct types where pieces overlap).
  const compare = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);
  // Maps come sorted more often than not: a check costs one pass, a sort of bigints many.
  const sortedBy = (key: 'start' | 'end'): E820Entry[] => (live.every((e, i) => i === 0 || live[i - 1]![key] <= e[key]) ? live : [...live].sort((a, b) => compare(a[key], b[key])));
  const byStart = sortedBy('start');
  const byEnd = sortedBy('end');
  // Every boundary once, in order: the two sorted lists merged.
  const points: bigint[] = [];
  for (let i = 0, j = 0; i < byStart.length || j < byEnd.length; ) {
    const p = j >= byEnd.length || (i < byStart.length && byStart[i]!.start <= byEnd[j]!.end) ? byStart[i++]!.start : byEnd[j++]!.end;
    if (points.length === 0 || points[points.length - 1] !== p) points.push(p);
  }
  const covering = new Map<E820Type, number>();
  // The types run in rank order, weakest first, each counted when several entries of it overlap (`usable ×2`).
  const overlaps: Array<{ start: bigint; end: bigint; types: E820Type[]; winner: E820Type; listed: string }> = [];
  let count = 0;
  let nextStart = 0;
  let nextEnd = 0;
  const out: E820Entry[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    const end = points[i + 1]!;
    for (; nextEnd < byEnd.length && byEnd[nextEnd]!.end <= start; nextEnd++) {
      const t = byEnd[nextEnd]!.type;
      const n = covering.get(t)! - 1;
      if (n === 0) covering.delete(t);
      else covering.set(t, n);
      count--;
    }
    for (; nextStart < byStart.length && byStart[nextStart]!.start <= start; nextStart++) {
      const t = byStart[nextStart]!.type;
      covering.set(t, (covering.get(t) ?? 0) + 1);
      count++;
    }
    if (count === 0) continue;
    let winner: E820Type | undefined;
    for (const t of covering.keys()) if (winner === undefined || typeRank(t) > typeRank(winner)) winner = t;
    if (count > 1) {
      // One warning per contiguous overlapping stretch with the same participants, not one per boundary.
      const types = [...covering.keys()].sort((x, y) => typeRank(x) - typeRank(y));
      const listed = types.map((t) => (covering.get(t)! > 1 ? `${t} ×${covering.get(t)}` : t)).join(', ');
      const prev = overlaps[overlaps.length - 1];
      if (prev !== undefined && prev.end === start && prev.listed === listed) prev.end = end;
      else overlaps.push({ start, end, types, winner: winner!, listed });
    }
    const last = out[out.length - 1];
    if (last !== undefined && last.end === start && last.type === winner) {
      out[out.length - 1] = { start: last.start, end, type: winner };
    } else {
      out.push({ start, end, type: winner! });
    }
  }
  for (const o of overlaps) {
    warnings.push({
      kind: 'overlap',
      range: { start: o.start, end: o.end },
      types: o.types,
      winner: o.winner,
      message: `entries overlap at [mem 0x${o.start.toString(16)}-0x${(o.end - 1n).toString(16)}] (${o.listed}): treated as ${o.winner}`,
    });
  }
  return { map: { entries: out }, warnings };
}

/** Total bytes of the given type (by default usable RAM). */
export function totalOfType(map: E820Map, type: E820Type = 'usable'): bigint {
  return map.entries.filter((e) => e.type === type).reduce((sum, e) => sum + (e.end - e.start), 0n);
}

/** The ranges of one type, in order. */
export function rangesOfType(map: E820Map, type: E820Type): AddressRange[] {
  return map.entries.filter((e) => e.type === type).map((e) => ({ start: e.start, end: e.end }));
}
