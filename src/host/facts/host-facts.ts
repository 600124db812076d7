/**
 * A host-facts collection (`hvmpt collect`) as the host a plan is exported or reported for:
 * its PCI functions in the shape composition reads (config space, BAR sizes, driver, IOMMU
 * group with its members, reset methods) and its readiness analysis, run against the plan's
 * own pass-through devices once they are known (src/export/model.ts).
 */
import { analyze, type Analysis, type Fact } from '../../hw/facts/analyze.js';
import type { HostSnapshot } from '../../hw/facts/snapshot.js';
import { compareBdf, formatBdf } from '../../hw/pci/address.js';
import type { GuestWindows } from '../../hw/pci/allocator.js';
import type { GroupMember, HostFunction } from '../../hw/pci/host-function.js';
import type { HostFacts, HostFinding } from '../pci/host-facts.js';

const BRIDGE_CLASS = 0x0604;

/** The collection's functions whose config space was read (the others cannot be composed). */
export function hostFactsOfSnapshot(s: HostSnapshot): HostFacts {
  const members = new Map<number, GroupMember[]>();
  for (const f of s.pci.functions) {
    if (f.iommuGroup === undefined) continue;
    const list = members.get(f.iommuGroup) ?? [];
    list.push({ address: formatBdf(f.bdf, true), driver: f.driver, bridge: f.classCode !== undefined && f.classCode >>> 8 === BRIDGE_CLASS });
    members.set(f.iommuGroup, list);
  }
  for (const list of members.values()) list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const functions: HostFunction[] = s.pci.functions
    .flatMap((f) =>
      f.config === undefined
        ? []
        : [
            {
              address: f.bdf,
              sysfs: `${s.source} ${f.dir}`,
              capture: f.config,
              driver: f.driver,
              iommuGroup: f.iommuGroup,
              group: f.iommuGroup === undefined ? [] : (members.get(f.iommuGroup) ?? []),
              resetMethods: f.resetMethods ?? [],
            },
          ],
    )
    .sort((a, b) => compareBdf(a.address, b.address));
  const units = s.iommu.units.map((u) => u.name);
  const tables = s.acpi.tables?.map((t) => t.signature) ?? [];
  const iommuVendor = units.some((u) => u.startsWith('dmar')) || tables.includes('DMAR') ? 'intel' : units.some((u) => u.startsWith('ivhd')) || tables.includes('IVRS') ? 'amd' : s.cpu?.vendor === 'GenuineIntel' ? 'intel' : s.cpu?.vendor === 'AuthenticAMD' ? 'amd' : undefined;
  return { source: s.source, functions, iommuVendor, findings: [], collection: s };
}

/** How the analysis's levels read as findings: a host change the export cannot make for the user is worth a warning. */
const SEVERITY: Partial<Record<Fact['level'], { readonly severity: HostFinding['severity']; readonly prefix: string }>> = {
  block: { severity: 'blocker', prefix: 'rules it out: ' },
  warn: { severity: 'warning', prefix: '' },
  change: { severity: 'warning', prefix: 'needs a host change: ' },
};

/**
 * The collection's analysis for the plan's devices (sysfs names), on a guest with these PCI
 * windows and this much RAM: what the host must change, and the findings that say a device
 * cannot work or may not (the machine's own, without a device, first), for pass-through with an
 * IOMMU (VFIO, every exporter's) or identity pass-through without one. Each finding once.
 */
export function collectionAnalysis(
  s: HostSnapshot,
  devices: readonly string[],
  windows: GuestWindows,
  memory: bigint,
  verdict: 'iommu' | 'identity' = 'iommu',
): { readonly analysis: Analysis; readonly findings: readonly HostFinding[] } {
  const known = new Set(s.pci.functions.map((f) => formatBdf(f.bdf, true)));
  const analysis = analyze(s, { windows, memory, devices: devices.filter((d) => known.has(d)) });
  const findings: HostFinding[] = [];
  const seen = new Set<string>();
  const add = (f: Fact, device: string | undefined): void => {
    const how = SEVERITY[f.level];
    const key = `${device ?? ''} ${f.text}`;
    if (how === undefined || seen.has(key)) return;
    seen.add(key);
    findings.push({ severity: how.severity, device, message: `${device === undefined ? `${s.source}: ` : ''}${how.prefix}${f.text}` });
  };
  for (const f of analysis.machine.facts) add(f, undefined);
  for (const d of analysis.devices) for (const f of [...d.common, ...d[verdict].facts]) add(f, d.device);
  return { analysis, findings };
}
