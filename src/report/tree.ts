/**
 * The PCI tree the report draws: root buses, and under each the functions in slot order, each
 * bridge followed by what sits behind it. Every function is one node — chipset, captured
 * (replayed), emulated, fake, passed through — and a hidden one (or one behind a hidden bridge)
 * is marked hidden.
 */
import { formatBdf, formatDevfn } from '../hw/pci/address.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { hostIds } from '../host/pci/host-facts.js';
import { formatHostSelector } from '../plan/passthrough.js';
import type { PlatformFunction } from '../platform/functions.js';
import { formatSize } from '../util/format.js';

export interface TreeNode {
  readonly key: string;
  readonly kind: 'bus' | 'function';
  readonly depth: number;
  readonly title: string;
  readonly lines: readonly string[];
  readonly badge: string;
  readonly hidden: boolean;
  readonly parentKey: string | undefined;
  readonly function: PlatformFunction | undefined;
}

const KIND_BADGE: Record<PlatformFunction['kind'], string> = {
  chipset: 'chipset',
  captured: 'real (replayed capture)',
  emulated: 'emulated',
  fake: 'fake',
  passthrough: 'passed through',
};

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

function barsLine(f: PlatformFunction): string {
  if (f.bars.length === 0) return 'no BARs';
  return f.bars
    .map((b) => `${b.index === 6 ? 'ROM' : `BAR${b.index} ${b.kind}${b.prefetchable ? ' pref' : ''}`} ${b.size === undefined ? '(size unknown)' : formatSize(b.size)}`)
    .join(' · ');
}

function describe(f: PlatformFunction): string[] {
  const ids = f.ids;
  const cls = ids.classCode.toString(16).padStart(6, '0');
  const idLine = `${hex4(ids.vendorId)}:${hex4(ids.deviceId)} class ${cls} rev ${ids.revision.toString(16).padStart(2, '0')} · subsystem ${hex4(ids.subsystemVendorId)}:${hex4(ids.subsystemId)}`;
  const p = f.passthrough;
  if (p === undefined) return [idLine, barsLine(f), f.source];
  const e = p.entry;
  const h = p.host;
  const own = hostIds(h);
  const mates = h.group.filter((m) => m.address !== sysfsName(h.address)).map((m) => m.address);
  const group = h.iommuGroup === undefined ? 'IOMMU group unknown (not read from sysfs)' : `IOMMU group ${h.iommuGroup}${mates.length === 0 ? '' : ` with ${mates.join(', ')}`}`;
  return [
    idLine,
    `back-end ${e.backend} · ROM ${e.rom.kind === 'file' ? e.rom.file : e.rom.kind} · host ${sysfsName(h.address)} ${hex4(own.vendorId)}:${hex4(own.deviceId)}${h.driver === undefined ? '' : ` · driver ${h.driver}`}`,
    group,
    barsLine(f),
    `${p.path} (host ${formatHostSelector(e.host)})${e.at === undefined ? ', placed in the first free root slot' : ''}`,
  ];
}

export function pciTree(functions: readonly PlatformFunction[]): TreeNode[] {
  const out: TreeNode[] = [];
  const children = new Map<string | undefined, PlatformFunction[]>();
  for (const f of functions) {
    const list = children.get(f.parent) ?? [];
    list.push(f);
    children.set(f.parent, list);
  }
  const bySlot = (a: PlatformFunction, b: PlatformFunction): number => a.bdf.device - b.bdf.device || a.bdf.fn - b.bdf.fn || a.id.localeCompare(b.id);
  const walk = (f: PlatformFunction, depth: number, parentKey: string, hiddenAbove: string | undefined): void => {
    const hidden = f.hidden || hiddenAbove !== undefined;
    const key = `fn:${f.id}`;
    const secondary = f.bridge && f.kind !== 'passthrough' ? children.get(f.id) : undefined;
    const bus = f.secondaryBus === undefined ? '' : ` → bus ${f.secondaryBus.toString(16).padStart(2, '0')}`;
    out.push({
      key,
      kind: 'function',
      depth,
      title: `${formatDevfn(f.bdf.device, f.bdf.fn)}  ${f.id}${f.id === formatBdf(f.bdf) ? '' : ` (${formatBdf(f.bdf)})`}${bus}`,
      lines: describe(f),
      badge: `${KIND_BADGE[f.kind]}${hidden ? ` · hidden${f.hidden ? '' : ` (behind ${hiddenAbove})`}` : ''}`,
      hidden,
      parentKey,
      function: f,
    });
    for (const c of [...(secondary ?? [])].sort(bySlot)) walk(c, depth + 1, key, f.hidden ? f.id : hiddenAbove);
  };
  const roots = children.get(undefined) ?? [];
  const buses = [...new Set(roots.map((f) => `${f.bdf.segment}:${f.bdf.bus}`))].sort();
  for (const b of buses) {
    const [segment, bus] = b.split(':').map(Number) as [number, number];
    const key = `bus:${b}`;
    out.push({ key, kind: 'bus', depth: 0, title: `root bus ${hex4(segment)}:${bus.toString(16).padStart(2, '0')}`, lines: [], badge: '', hidden: false, parentKey: undefined, function: undefined });
    for (const f of roots.filter((x) => x.bdf.segment === segment && x.bdf.bus === bus).sort(bySlot)) walk(f, 1, key, undefined);
  }
  return out;
}
