/**
 * PCI addresses. A function is named by segment (domain), bus, device and function;
 * `devfn` packs device and function the way the hardware does (device << 3 | function).
 */
export interface Bdf {
  readonly segment: number;
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
}

export function devfnOf(device: number, fn: number): number {
  return ((device & 0x1f) << 3) | (fn & 7);
}

export function bdf(segment: number, bus: number, device: number, fn: number): Bdf {
  return { segment, bus, device, fn };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** `00:1f.3`, or `0000:00:1f.3` with the domain (always when the segment is not 0). */
export function formatBdf(a: Bdf, withDomain = false): string {
  const head = withDomain || a.segment !== 0 ? `${a.segment.toString(16).padStart(4, '0')}:` : '';
  return `${head}${hex2(a.bus)}:${hex2(a.device)}.${a.fn}`;
}

/** `dd.f`: a slot and function on a bus whose number is given elsewhere. */
export function formatDevfn(device: number, fn: number): string {
  return `${hex2(device)}.${fn}`;
}

const BDF_RE = /^(?:([0-9a-f]{1,5}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;

/** Parses `bb:dd.f` or `ssss:bb:dd.f`; undefined when the text is not one. */
export function parseBdf(text: string): Bdf | undefined {
  const m = BDF_RE.exec(text.trim());
  if (m === null) return undefined;
  const segment = m[1] === undefined ? 0 : parseInt(m[1], 16);
  const device = parseInt(m[3]!, 16);
  if (segment > 0xffff || device > 0x1f) return undefined;
  return { segment, bus: parseInt(m[2]!, 16), device, fn: parseInt(m[4]!, 10) };
}

const DEVFN_RE = /^([0-9a-f]{1,2})\.([0-7])$/i;

/** Parses `dd.f`. */
export function parseDevfn(text: string): { device: number; fn: number } | undefined {
  const m = DEVFN_RE.exec(text.trim());
  if (m === null) return undefined;
  const device = parseInt(m[1]!, 16);
  return device > 0x1f ? undefined : { device, fn: parseInt(m[2]!, 10) };
}

export function sameBdf(a: Bdf, b: Bdf): boolean {
  return a.segment === b.segment && a.bus === b.bus && a.device === b.device && a.fn === b.fn;
}

/** A total order: segment, bus, device, function (the order lspci prints in). */
export function compareBdf(a: Bdf, b: Bdf): number {
  return a.segment - b.segment || a.bus - b.bus || a.device - b.device || a.fn - b.fn;
}
