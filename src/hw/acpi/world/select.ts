import type { AcpiNamespace, NsNode } from '../namespace/namespace.js';

/**
 * Finding devices in a namespace the way rules name them: by path, by _HID/_CID, by _ADR under a
 * bridge, or by PCI address, and telling which PCI function a device object describes.
 */

export const PCI_ROOT_IDS: readonly string[] = ['PNP0A03', 'PNP0A08'];

export interface RootBridge {
  readonly node: NsNode;
  /** _SEG and _BBN, 0 when absent; undefined when computed at run time. */
  readonly segment: number | undefined;
  readonly bus: number | undefined;
}

function staticNumber(ns: AcpiNamespace, device: NsNode, name: string): number | undefined | 'absent' {
  const child = device.children.get(name);
  if (child === undefined) return 'absent';
  const v = ns.valueOf(child);
  return v?.kind === 'Integer' && v.value <= 0xffffn ? Number(v.value) : undefined;
}

/** The PCI host bridges: devices whose _HID or _CID is PNP0A03 or PNP0A08, in namespace order. */
export function rootBridges(ns: AcpiNamespace): RootBridge[] {
  const seen = new Set<NsNode>();
  const out: RootBridge[] = [];
  for (const d of ns.devices()) {
    const ids = [ns.hid(d), ...ns.cids(d)];
    if (!ids.some((id) => id !== undefined && PCI_ROOT_IDS.includes(id.toUpperCase())) || seen.has(d)) continue;
    seen.add(d);
    const seg = staticNumber(ns, d, '_SEG');
    const bbn = staticNumber(ns, d, '_BBN');
    out.push({ node: d, segment: seg === 'absent' ? 0 : seg, bus: bbn === 'absent' ? 0 : bbn });
  }
  return out;
}

/** A parsed PCI selector: segment, root bus, then (device, function) hops from the root bus down. */
export interface PciPath {
  readonly segment: number;
  readonly bus: number;
  readonly hops: readonly { readonly device: number; readonly fn: number }[];
}

const HOP = /^([0-9a-f]{1,2})\.([0-7])$/i;

/** Parses `00:1f.3`, `0001:00:1f.3` or `00:1c.4/00.0`; undefined when it is not one. */
export function parsePciPath(text: string): PciPath | undefined {
  const parts = text.trim().split('/');
  const head = /^(?:([0-9a-f]{1,4}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i.exec(parts[0]!);
  if (head === null) return undefined;
  const hops = [{ device: parseInt(head[3]!, 16), fn: Number(head[4]) }];
  for (const p of parts.slice(1)) {
    const m = HOP.exec(p.trim());
    if (m === null) return undefined;
    hops.push({ device: parseInt(m[1]!, 16), fn: Number(m[2]) });
  }
  if (hops.some((h) => h.device > 31)) return undefined;
  return { segment: head[1] === undefined ? 0 : parseInt(head[1], 16), bus: parseInt(head[2]!, 16), hops };
}

export function formatPciPath(p: PciPath): string {
  const h2 = (n: number): string => n.toString(16).padStart(2, '0');
  const seg = p.segment === 0 ? '' : `${p.segment.toString(16).padStart(4, '0')}:`;
  return `${seg}${h2(p.bus)}:` + p.hops.map((h) => `${h2(h.device)}.${h.fn}`).join('/');
}

function childDevices(node: NsNode): NsNode[] {
  return [...node.children.values()].filter((n) => n.kind === 'Device');
}

/** Devices under `parent` (its direct children) with this _ADR. */
export function childrenByAdr(ns: AcpiNamespace, parent: NsNode, adr: number): NsNode[] {
  return childDevices(parent).filter((d) => ns.adr(d) === adr);
}

/**
 * The roots a PCI path starts from: root bridges with its segment and bus. A bridge whose
 * _SEG/_BBN is computed at run time counts as segment 0, bus 0 when it is the only one.
 */
function rootsFor(ns: AcpiNamespace, segment: number, bus: number): NsNode[] {
  const roots = rootBridges(ns);
  return roots
    .filter((r) => {
      const seg = r.segment ?? (roots.length === 1 ? 0 : undefined);
      const bbn = r.bus ?? (roots.length === 1 ? 0 : undefined);
      return seg === segment && bbn === bus;
    })
    .map((r) => r.node);
}

/** Every device object describing the function at `path` (several when tables describe it twice). */
export function devicesAtPciPath(ns: AcpiNamespace, path: PciPath): NsNode[] {
  let level = rootsFor(ns, path.segment, path.bus);
  for (const hop of path.hops) {
    const adr = (hop.device << 16) | hop.fn;
    level = level.flatMap((p) => childrenByAdr(ns, p, adr));
  }
  return level;
}

/**
 * The PCI path of a device object: its _ADR and its parents' up to a root bridge. Undefined
 * when it is not under a root bridge, or an _ADR on the way is not a constant.
 */
export function pciPathOf(ns: AcpiNamespace, device: NsNode, roots: readonly RootBridge[] = rootBridges(ns)): PciPath | undefined {
  const hops: { device: number; fn: number }[] = [];
  for (let n: NsNode | null = device; n !== null; n = n.parent) {
    const root = roots.find((r) => r.node === n);
    if (root !== undefined) {
      if (hops.length === 0) return undefined;
      const single = roots.length === 1;
      const segment = root.segment ?? (single ? 0 : undefined);
      const bus = root.bus ?? (single ? 0 : undefined);
      return segment === undefined || bus === undefined ? undefined : { segment, bus, hops: hops.reverse() };
    }
    if (n.kind !== 'Device') return undefined;
    const adr = ns.adr(n);
    if (adr === undefined || adr > 0xffffffff) return undefined;
    const fn = adr & 0xffff;
    hops.push({ device: adr >>> 16, fn: fn === 0xffff ? 0 : fn });
    if ((adr >>> 16) > 31 || (fn > 7 && fn !== 0xffff)) return undefined;
  }
  return undefined;
}

/** Other device objects for the same PCI function: siblings with the same _ADR under a PCI parent. */
export function sameFunction(ns: AcpiNamespace, device: NsNode, roots: readonly RootBridge[]): NsNode[] {
  const parent = device.parent;
  const adr = ns.adr(device);
  if (parent === null || adr === undefined) return [device];
  const parentIsPci = roots.some((r) => r.node === parent) || (parent.kind === 'Device' && pciPathOf(ns, parent, roots) !== undefined);
  return parentIsPci ? childrenByAdr(ns, parent, adr) : [device];
}
