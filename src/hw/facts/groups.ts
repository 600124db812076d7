/**
 * IOMMU groups as Linux forms them (drivers/iommu/iommu.c pci_device_group, with
 * pci_for_each_dma_alias and pci_acs_enabled from drivers/pci): a function shares a group with
 * whatever can reach it by peer-to-peer DMA the IOMMU cannot see, which is decided by the
 * bridges above it (conventional PCI bridges alias everything behind them; a PCIe port isolates
 * what is below it only with ACS source validation, request and completion redirect and
 * upstream forwarding) and by the other functions of a multi-function slot without ACS.
 *
 * `mode: 'actual'` reads ACS control as the collection captured it (the kernel enables ACS when
 * an IOMMU is in use); `mode: 'predicted'` assumes the kernel would enable every ACS feature the
 * capability offers, as pci_std_enable_acs does: the groups you would get by turning the IOMMU
 * on. The kernel's device-specific ACS quirks (some Intel and AMD root ports that isolate
 * without advertising ACS) are not modelled, so a prediction can be coarser than the kernel's.
 */
import { ACS, REQUIRED_ACS, type HardwareFacts } from './hardware.js';
import type { HostFunction, HostPci } from './host-pci.js';

export type AcsMode = 'actual' | 'predicted';

/** pci_acs_flags_enabled: features the capability lacks count as hard-wired on (egress control aside). */
function acsFlagsEnabled(hw: HardwareFacts, flags: number, mode: AcsMode): boolean {
  if (hw.acs === undefined) return false;
  const wanted = flags & (hw.acs.capability | ACS.ec);
  const control = mode === 'actual' ? hw.acs.control : hw.acs.capability & (ACS.sv | ACS.rr | ACS.cr | ACS.uf);
  return (control & wanted) === wanted;
}

/** pci_acs_enabled: does this function keep its own traffic (or its port's) isolated? */
export function acsEnabled(f: HostFunction, mode: AcsMode, flags = REQUIRED_ACS): boolean {
  const hw = f.hw;
  // Conventional PCI and PCI-X: the shared bus lets any device see any other's DMA.
  if (hw === undefined || hw.pcieType === undefined) return false;
  switch (hw.pcieType) {
    case 'pci-to-pcie-bridge':
    case 'downstream-port':
    case 'root-port':
      return acsFlagsEnabled(hw, flags, mode);
    case 'pcie-to-pci-bridge':
      return false;
    case 'endpoint':
    case 'legacy-endpoint':
    case 'rc-integrated-endpoint':
      return hw.multifunction ? acsFlagsEnabled(hw, flags, mode) : true;
    default:
      // Upstream ports and event collectors: ACS does not apply to them.
      return true;
  }
}

/** pci_acs_path_enabled(start, NULL): ACS all the way from `start` up to its root bus. */
export function acsPathEnabled(pci: HostPci, start: HostFunction, mode: AcsMode): boolean {
  for (let p: HostFunction | undefined = start; p !== undefined; p = pci.parent(p)) {
    if (!acsEnabled(p, mode)) return false;
  }
  return true;
}

/**
 * The topmost device whose requester ID the function's DMA may carry (pci_for_each_dma_alias):
 * a conventional bridge above it, or a PCIe-to-PCI bridge, takes over the requester ID of
 * everything behind it.
 */
export function dmaAliasRoot(pci: HostPci, f: HostFunction): HostFunction {
  let alias = f;
  for (const up of pci.upstream(f)) {
    const t = up.hw?.pcieType;
    if (t === 'root-port' || t === 'upstream-port' || t === 'downstream-port') continue;
    alias = up;
  }
  return alias;
}

export interface GroupPrediction {
  /** Each function's group, as a number (the group of the first function in address order that anchors it). */
  readonly groupOf: ReadonlyMap<HostFunction, number>;
  /** The members of each group, in address order. */
  readonly groups: ReadonlyMap<number, readonly HostFunction[]>;
}

/** Groups every function of the host as pci_device_group would. */
export function predictGroups(pci: HostPci, mode: AcsMode): GroupPrediction {
  const order = pci.sorted().filter((f) => f.fn !== undefined);
  // The device a group is anchored on: the DMA alias root, then up past every bridge that does not isolate.
  const anchorOf = (f: HostFunction): HostFunction => {
    let pdev = dmaAliasRoot(pci, f);
    for (let bridge = pci.parent(pdev); bridge !== undefined; bridge = pci.parent(bridge)) {
      if (acsPathEnabled(pci, bridge, mode)) break;
      pdev = bridge;
    }
    return pdev;
  };
  const parent = new Map<HostFunction, HostFunction>();
  const find = (x: HostFunction): HostFunction => {
    let r = x;
    while (parent.get(r) !== undefined && parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  const union = (a: HostFunction, b: HostFunction): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  };
  for (const f of order) {
    parent.set(f, f);
  }
  for (const f of order) {
    const anchor = anchorOf(f);
    union(anchor, f);
    // Functions of one slot without ACS between them (get_pci_function_alias_group).
    if (anchor.hw?.multifunction === true && !acsEnabled(anchor, mode)) {
      for (const s of pci.slotSiblings(anchor)) if (s.fn !== undefined && !acsEnabled(s, mode)) union(anchor, s);
    }
  }
  const numbers = new Map<HostFunction, number>();
  const groupOf = new Map<HostFunction, number>();
  const groups = new Map<number, HostFunction[]>();
  for (const f of order) {
    const root = find(f);
    if (!numbers.has(root)) numbers.set(root, numbers.size);
    const n = numbers.get(root)!;
    groupOf.set(f, n);
    groups.set(n, [...(groups.get(n) ?? []), f]);
  }
  return { groupOf, groups };
}

/**
 * Compares a prediction with the kernel's groups (sysfs iommu_group): the sets of functions
 * that disagree, in words. Empty when they partition the functions the same way.
 */
export function compareGroups(prediction: GroupPrediction, pci: HostPci): string[] {
  const actual = new Map<number, HostFunction[]>();
  for (const f of pci.functions) {
    if (f.facts.iommuGroup === undefined || !prediction.groupOf.has(f)) continue;
    actual.set(f.facts.iommuGroup, [...(actual.get(f.facts.iommuGroup) ?? []), f]);
  }
  const key = (fs: readonly HostFunction[]): string => fs.map((f) => f.name).sort().join(' ');
  const predicted = new Set([...prediction.groups.values()].map(key));
  const real = new Set([...actual.values()].map(key));
  return [...real].filter((k) => !predicted.has(k)).map((k) => `the kernel groups {${k}} differently`);
}
