/** Half-open address ranges, for comparing memory maps a guest reports with the plan's. */
export interface Range {
  start: bigint;
  end: bigint;
}

export function subtract(ranges: Range[], holes: Range[]): Range[] {
  let out = ranges;
  for (const h of holes) {
    out = out.flatMap((r) => {
      if (h.end <= r.start || r.end <= h.start) return [r];
      const parts: Range[] = [];
      if (r.start < h.start) parts.push({ start: r.start, end: h.start });
      if (h.end < r.end) parts.push({ start: h.end, end: r.end });
      return parts;
    });
  }
  return out;
}

export function merge(ranges: Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start <= last.end) last.end = r.end > last.end ? r.end : last.end;
    else out.push({ ...r });
  }
  return out;
}

export const show = (rs: Range[]): string[] => rs.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`);
