/**
 * The report's two pictures as SVG text: the memory map (columns over one address axis, each
 * interval between two boundaries of any column drawn with a height that grows with the log of
 * its size, so a 4 KiB hole and 32 GiB of RAM both stay readable) and the PCI tree (one node per
 * function, indented under the bridge it sits behind).
 */
import { formatBdf } from '../hw/pci/address.js';
import { formatSize } from '../util/format.js';
import type { MemoryView, Region, RegionKind } from './memory.js';
import type { TreeNode } from './tree.js';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Pixels for an interval of `size` bytes. */
function rowHeight(size: bigint): number {
  let log = 0;
  for (let s = size / 4096n; s > 1n; s >>= 1n) log++;
  return Math.min(84, 16 + 3 * log);
}

const AXIS = 150;
const COLUMN = 250;
const GAP = 24;
const TOP = 40;

export function memorySvg(view: MemoryView): string {
  const bounds = new Set<bigint>();
  for (const c of view.columns) for (const r of c.regions) bounds.add(r.start).add(r.end);
  const edges = [...bounds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const y = new Map<bigint, number>();
  let at = TOP;
  edges.forEach((e, i) => {
    y.set(e, at);
    const next = edges[i + 1];
    if (next !== undefined) at += rowHeight(next - e);
  });
  const height = at + 20;
  const width = AXIS + view.columns.length * (COLUMN + GAP);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" class="memmap" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="memory map">`];
  for (const e of edges) {
    const ey = y.get(e)!;
    out.push(`<line class="grid" x1="${AXIS - 6}" y1="${ey}" x2="${width}" y2="${ey}"/>`, `<text class="addr" x="${AXIS - 10}" y="${ey + 4}" text-anchor="end">${hex(e)}</text>`);
  }
  view.columns.forEach((c, i) => {
    const x = AXIS + i * (COLUMN + GAP);
    out.push(`<text class="coltitle" x="${x + COLUMN / 2}" y="${TOP - 14}" text-anchor="middle">${esc(c.title)}</text>`);
    out.push(`<rect class="hole" x="${x}" y="${TOP}" width="${COLUMN}" height="${at - TOP}"><title>hole: nothing in ${esc(c.title)}</title></rect>`);
    // Containers first (windows, ECAM, E820 entries), then what sits inside them (BARs).
    const order = (r: Region): number => (r.kind === 'bar' ? 1 : 0);
    for (const r of [...c.regions].sort((a, b) => order(a) - order(b))) {
      const y0 = y.get(r.start)!;
      const y1 = y.get(r.end)!;
      const inset = r.kind === 'bar' ? 100 : 0;
      const h = Math.max(1, y1 - y0);
      out.push(
        `<g class="region ${r.kind}" data-kind="${r.kind}"><rect x="${x + inset}" y="${y0}" width="${COLUMN - inset}" height="${h}"/>` +
          `<title>${esc(r.label)}: [${hex(r.start)}, ${hex(r.end)}) ${formatSize(r.end - r.start)}</title>` +
          (h >= 13 ? `<text x="${x + inset + 6}" y="${y0 + Math.min(h / 2 + 4, 14)}">${esc(`${r.label} · ${formatSize(r.end - r.start)}`)}</text>` : '') +
          '</g>',
      );
    }
  });
  out.push('</svg>');
  return out.join('\n');
}

export const KIND_WORDS: Record<RegionKind, string> = {
  ram: 'RAM',
  identity: 'identity RAM',
  carve: 'carve (1:1)',
  reserved: 'reserved',
  acpi: 'ACPI data',
  nvs: 'ACPI NVS',
  other: 'other',
  ecam: 'ECAM',
  window: 'PCI window',
  bar: 'BAR',
};

const NODE_W = 600;
const INDENT = 30;
const LINE = 15;

/** Characters a detail line holds in a node; longer ones wrap at their ' · ' separators. */
const LINE_CHARS = 92;

function wrap(line: string): string[] {
  if (line.length <= LINE_CHARS) return [line];
  const out: string[] = [];
  let cur = '';
  for (const part of line.split(' · ')) {
    const next = cur === '' ? part : `${cur} · ${part}`;
    if (next.length > LINE_CHARS && cur !== '') {
      out.push(cur);
      cur = `  ${part}`;
    } else cur = next;
  }
  if (cur !== '') out.push(cur);
  return out;
}

export function pciSvg(nodes: readonly TreeNode[]): string {
  const rows: string[] = [];
  let at = 20;
  let width = 0;
  const tops = new Map<string, number>();
  for (const n of nodes) {
    const x = 20 + n.depth * INDENT;
    const lines = n.lines.flatMap(wrap);
    const h = 10 + LINE * (lines.length + 1);
    width = Math.max(width, x + NODE_W + 20);
    if (n.kind === 'bus') {
      rows.push(`<g class="bus"><text x="${x}" y="${at + 14}">${esc(n.title)}</text></g>`);
      tops.set(n.key, at + 18);
      at += 26;
      continue;
    }
    const parentTop = n.parentKey === undefined ? undefined : tops.get(n.parentKey);
    if (parentTop !== undefined) rows.push(`<path class="edge" d="M${x - INDENT / 2} ${parentTop} V${at + h / 2} H${x}"/>`);
    const f = n.function!;
    const classes = ['fn', `kind-${f.kind}`, ...(n.hidden ? ['hidden'] : [])].join(' ');
    rows.push(
      `<g class="${classes}" data-bdf="${esc(formatBdf(f.bdf))}" data-id="${esc(f.id)}" data-kind="${f.kind}" data-hidden="${n.hidden}">` +
        `<rect x="${x}" y="${at}" width="${NODE_W}" height="${h}" rx="6"/>` +
        `<text class="title" x="${x + 10}" y="${at + 18}">${esc(n.title)}</text>` +
        lines.map((l, i) => `<text class="detail" x="${x + 10}" y="${at + 18 + LINE * (i + 1)}">${esc(l)}</text>`).join('') +
        `<text class="badge" x="${x + NODE_W - 10}" y="${at + 18}" text-anchor="end">${esc(n.badge)}</text>` +
        '</g>',
    );
    tops.set(n.key, at + h);
    at += h + 8;
  }
  return [`<svg xmlns="http://www.w3.org/2000/svg" class="pcitree" width="${width}" height="${at + 10}" viewBox="0 0 ${width} ${at + 10}" role="img" aria-label="PCI tree">`, ...rows, '</svg>'].join('\n');
}
