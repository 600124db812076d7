import type { ComposedPci } from '../hw/pci/compose.js';
import { formatBdf, parseBdf } from '../hw/pci/address.js';
import type { PlanProblem } from '../plan/load.js';
import { passthroughName } from '../plan/pci.js';
import type { Plan } from '../plan/schema.js';
import { pluginName } from '../plan/pci.js';

/** One guest-visible device's category, as the plan records it (docs/pci.md, "Device categories"). */
export interface DeviceUse {
  readonly device: string;
  readonly kind: 'real' | 'emulated' | 'fake';
  readonly allocation: 'dedicated' | 'dynamic';
  readonly sharing: 'exclusive' | 'shared';
  /** The plan entry that says so, or undefined for the default. */
  readonly path: string | undefined;
}

/**
 * Every visible function the plan put on the bus (the monitor's own chipset aside) with its
 * category: as the plan's `use` says, else real devices dedicated and exclusive, emulated and
 * fake ones dynamic (made for each run) and exclusive.
 *
 * The monitor enforces what it can now: in an identity layout (no IOMMU) a real device cannot
 * be shared, since its DMA reaches machine addresses and nothing would keep it to this guest's
 * memory. Reset and hand-back rules for dynamic devices belong to the pass-through back-ends.
 */
export function deviceUses(plan: Plan, pci: ComposedPci): { uses: DeviceUse[]; problems: PlanProblem[] } {
  const section = plan.pci ?? {};
  const declared = new Map<string, { use: { allocation?: DeviceUse['allocation']; sharing?: DeviceUse['sharing'] }; path: string }>();
  section.emulated?.forEach((e, i) => e.use !== undefined && declared.set(e.name, { use: e.use, path: `pci.emulated[${i}].use` }));
  section.real?.forEach((r, i) => r.use !== undefined && declared.set(r.name, { use: r.use, path: `pci.real[${i}].use` }));
  section.plugins?.forEach((p, i) => p.use !== undefined && declared.set(pluginName(p, i), { use: p.use, path: `pci.plugins[${i}].use` }));
  section.passthrough?.forEach((p, i) => p.use !== undefined && declared.set(passthroughName(p, i), { use: p.use, path: `pci.passthrough[${i}].use` }));
  section.functions?.forEach((f, i) => {
    if (f.use === undefined) return;
    const b = parseBdf(f.target);
    declared.set(b === undefined ? f.target : formatBdf(b), { use: f.use, path: `pci.functions[${i}].use` });
  });
  const uses: DeviceUse[] = [];
  const problems: PlanProblem[] = [];
  for (const e of pci.entries) {
    if (e.fn.hidden || e.origin === 'chipset') continue;
    const d = declared.get(e.fn.id);
    const kind = e.fn.kind;
    const use: DeviceUse = {
      device: e.fn.id,
      kind,
      allocation: d?.use.allocation ?? (kind === 'real' ? 'dedicated' : 'dynamic'),
      sharing: d?.use.sharing ?? 'exclusive',
      path: d?.path,
    };
    if (kind === 'real' && use.sharing === 'shared' && plan.memory.layout === 'identity') {
      problems.push({
        path: `${d!.path}.sharing`,
        message: `${use.device} is a real device: shared with the host or other guests it needs an IOMMU to keep its DMA to this guest's memory, and an identity layout (memory.layout) has none`,
      });
    }
    uses.push(use);
  }
  return { uses, problems };
}

export function formatDeviceUses(uses: readonly DeviceUse[]): string {
  return uses.map((u) => `${u.device} ${u.kind} ${u.allocation}/${u.sharing}`).join(', ');
}
