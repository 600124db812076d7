/**
 * /proc/iomem as the identity runtime reads it: every line (nested ones too) as a range and a
 * name, so a check can ask whether a range is System RAM and whether reserved entries cover it.
 */
import type { AddressRange } from './range.js';

export interface IomemEntry extends AddressRange {
  readonly name: string;
  /** 0 for a top-level entry, one more per two spaces of indentation. */
  readonly depth: number;
}

/** Parses /proc/iomem; ends become exclusive. Read by a non-root user every address is 0: undefined then. */
export function parseIomem(text: string): IomemEntry[] | undefined {
  const out: IomemEntry[] = [];
  let nonzero = false;
  for (const line of text.split('\n')) {
    const m = /^(\s*)([0-9a-f]+)-([0-9a-f]+) : (.*)$/i.exec(line);
    if (m === null) continue;
    const start = BigInt('0x' + m[2]!);
    const end = BigInt('0x' + m[3]!) + 1n;
    if (start !== 0n || end !== 1n) nonzero = true;
    out.push({ start, end, name: m[4]!.trim(), depth: m[1]!.length >> 1 });
  }
  return nonzero ? out : undefined;
}

/** The System RAM entries that overlap `r`. */
export function systemRamIn(entries: readonly IomemEntry[], r: AddressRange): IomemEntry[] {
  return entries.filter((e) => e.name === 'System RAM' && e.start < r.end && r.start < e.end);
}

/** Whether top-level reserved entries cover every byte of `r` (a memmap=…$… carve shows as `Reserved`). */
export function reservedCovers(entries: readonly IomemEntry[], r: AddressRange): boolean {
  const reserved = entries.filter((e) => e.depth === 0 && /^reserved$/i.test(e.name)).sort((a, b) => (a.start < b.start ? -1 : 1));
  let at = r.start;
  for (const e of reserved) {
    if (e.start > at) break;
    if (e.end > at) at = e.end;
    if (at >= r.end) return true;
  }
  return at >= r.end;
}
