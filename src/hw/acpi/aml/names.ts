import { AmlEncodeError } from './errors.js';
import type { NameString } from './terms.js';

/**
 * Name strings between ASL text (`\_SB.PCI0.LPCB`, `^^EC0`, `_HID`) and the AML form
 * (prefixes plus 4-character segments padded with `_`).
 */

const SEG_RE = /^[A-Z_][A-Z0-9_]{0,3}$/;

/** Pads a segment to 4 characters the way ASL does (`EC0` -> `EC0_`); uppercases, validates. */
export function nameSeg(text: string): string {
  const up = text.toUpperCase();
  if (!SEG_RE.test(up)) {
    throw new AmlEncodeError(`invalid name segment "${text}": 1-4 of A-Z 0-9 _, not starting with a digit`);
  }
  return up.padEnd(4, '_');
}

/** Parses `\_SB.PCI0`, `^^FOO`, `FOO.BAR`, `\` into a NameString. */
export function nameString(text: string): NameString {
  let i = 0;
  let root = false;
  let parents = 0;
  if (text.startsWith('\\')) {
    root = true;
    i = 1;
  } else {
    while (text[i] === '^') {
      parents++;
      i++;
    }
  }
  const rest = text.slice(i);
  const segs = rest === '' ? [] : rest.split('.').map(nameSeg);
  if (!root && parents === 0 && segs.length === 0) throw new AmlEncodeError('empty name string');
  return { root, parents, segs };
}

/** Text form; `pad: false` trims trailing underscores per segment the way iasl prints names. */
export function formatName(name: NameString, pad = true): string {
  const prefix = name.root ? '\\' : '^'.repeat(name.parents);
  const segs = pad ? name.segs : name.segs.map(trimSeg);
  return prefix + segs.join('.');
}

export function trimSeg(seg: string): string {
  let end = seg.length;
  while (end > 1 && seg.charCodeAt(end - 1) === 0x5f) end--;
  return seg.slice(0, end);
}

/** Absolute path string of segments, canonical (padded) form: `\_SB_.PCI0`; the root is `\`. */
export function pathOf(segs: readonly string[]): string {
  return '\\' + segs.join('.');
}

/**
 * The segments of `name` made absolute against `scope` (itself absolute segments), without the
 * single-segment parent search (that needs a namespace; see namespace/). Returns undefined
 * when `^` climbs above the root.
 */
export function absoluteSegs(name: NameString, scope: readonly string[]): string[] | undefined {
  if (name.root) return [...name.segs];
  if (name.parents > scope.length) return undefined;
  return [...scope.slice(0, scope.length - name.parents), ...name.segs];
}

/** Splits an absolute path text (`\_SB.PCI0` or `\_SB_.PCI0`) into padded segments. */
export function parsePath(text: string): string[] {
  const ns = nameString(text.startsWith('\\') ? text : '\\' + text);
  return [...ns.segs];
}

/** True for a relative single-segment name: the only kind ACPI resolves by searching parents. */
export function isSearchable(name: NameString): boolean {
  return !name.root && name.parents === 0 && name.segs.length === 1;
}
