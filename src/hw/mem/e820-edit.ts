/** Editing a normalized map without going through overlap resolution (and its warnings). */
import type { E820Entry, E820Map, E820Type } from './e820.js';
import { compareRanges, subtractRanges, unionRanges, type AddressRange } from './range.js';

/** Every byte of `ranges` becomes `type`, whatever it was; the rest of the map is unchanged. */
export function setRangesType(map: E820Map, ranges: readonly AddressRange[], type: E820Type): E820Map {
  const cut = unionRanges(ranges);
  const kept: E820Entry[] = map.entries.flatMap((e) => subtractRanges([e], cut).map((r) => ({ ...r, type: e.type })));
  return { entries: mergeAdjacent([...kept, ...cut.map((r) => ({ ...r, type }))]) };
}

/** Removes `ranges` from the map (they become holes). */
export function removeRanges(map: E820Map, ranges: readonly AddressRange[]): E820Map {
  const cut = unionRanges(ranges);
  return { entries: mergeAdjacent(map.entries.flatMap((e) => subtractRanges([e], cut).map((r) => ({ ...r, type: e.type })))) };
}

/** Sorts disjoint entries and joins touching ones of the same type. */
export function mergeAdjacent(entries: readonly E820Entry[]): E820Entry[] {
  const out: E820Entry[] = [];
  for (const e of [...entries].sort(compareRanges)) {
    const last = out[out.length - 1];
    if (last !== undefined && last.end === e.start && last.type === e.type) out[out.length - 1] = { ...last, end: e.end };
    else out.push({ start: e.start, end: e.end, type: e.type });
  }
  return out;
}
