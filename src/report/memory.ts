/**
 * The memory map the report draws: three columns over one address axis — the host's E820
 * (after the identity carve, when there is one), the guest's E820 (its identity RAM marked),
 * and the guest's PCI space (the ECAM window, the host bridge's windows, each BAR where it is
 * mapped: as a run recorded it, as the plan's allocation placed it, or as hvmpt's allocator
 * predicts the firmware will).
 */
import type { E820Entry } from '../hw/mem/e820.js';
import { allocateResources } from '../hw/pci/allocator.js';
import { PciAllocationError } from '../hw/pci/errors.js';
import type { ComposedMachine } from '../platform/compose.js';
import { composePlatformPci, ECAM_BUSES, NO_CHIPSET_HOOKS } from '../platform/pci-platform.js';
import type { RunRecord } from './run-record.js';

export type RegionKind = 'ram' | 'identity' | 'carve' | 'reserved' | 'acpi' | 'nvs' | 'other' | 'ecam' | 'window' | 'bar';

export interface Region {
  readonly start: bigint;
  /** Exclusive. */
  readonly end: bigint;
  readonly kind: RegionKind;
  readonly label: string;
}

export interface MemoryColumn {
  readonly title: string;
  readonly regions: readonly Region[];
}

export interface MemoryView {
  readonly columns: readonly MemoryColumn[];
  /** Where the BARs' addresses come from, in words. */
  readonly barsFrom: string;
}

const E820_KIND: Record<string, RegionKind> = { usable: 'ram', reserved: 'reserved', acpi: 'acpi', nvs: 'nvs', '1:1': 'carve' };

function e820Regions(entries: readonly E820Entry[], identity: ReadonlyArray<{ start: bigint; end: bigint }> = []): Region[] {
  const out: Region[] = [];
  for (const e of entries) {
    const kind = E820_KIND[e.type] ?? 'other';
    if (kind !== 'ram' || identity.length === 0) {
      out.push({ start: e.start, end: e.end, kind, label: e.type === '1:1' ? 'carved for the guest (1:1)' : e.type });
      continue;
    }
    // Split usable RAM into its identity part and the rest.
    let at = e.start;
    for (const r of [...identity].sort((a, b) => (a.start < b.start ? -1 : 1))) {
      const s = r.start > at ? r.start : at;
      const t = r.end < e.end ? r.end : e.end;
      if (s >= t) continue;
      if (s > at) out.push({ start: at, end: s, kind: 'ram', label: 'usable (private)' });
      out.push({ start: s, end: t, kind: 'identity', label: 'identity RAM (1:1)' });
      at = t;
    }
    if (at < e.end) out.push({ start: at, end: e.end, kind: 'ram', label: 'usable (private)' });
  }
  return out;
}

function barRegions(composed: ComposedMachine, run: RunRecord | undefined): { regions: Region[]; from: string } {
  if (run !== undefined) {
    // The last mapping each BAR had in the run.
    const last = new Map<string, { device: string; bar: number | 'rom'; kind: string; address: bigint; size: bigint } | null>();
    for (const m of run.barMappings) last.set(`${m.device}/${m.bar}`, m.new === null ? null : { device: m.device, bar: m.bar, kind: m.kind, address: BigInt(m.new.address), size: BigInt(m.new.size) });
    const regions = [...last.values()]
      .filter((m): m is NonNullable<typeof m> => m !== null && m.kind !== 'io')
      .map((m) => ({ start: m.address, end: m.address + m.size, kind: 'bar' as const, label: `${m.device} ${m.bar === 'rom' ? 'ROM' : `BAR${m.bar}`}` }));
    return { regions, from: 'as the run recorded them (hvmpt run --report)' };
  }
  const config = composed.config.pci;
  if (config === undefined) return { regions: [], from: 'none' };
  let placed;
  let from: string;
  if (composed.pci.allocation !== undefined) {
    placed = composed.pci.allocation.bars;
    from = "as the plan's pci.allocation placed them";
  } else {
    // A fresh copy of the bus, placed the way firmware would place it.
    try {
      placed = allocateResources(composePlatformPci(config, NO_CHIPSET_HOOKS).topology, composed.windows).bars;
      from = "as hvmpt's allocator predicts (the firmware places them at boot)";
    } catch (err) {
      if (!(err instanceof PciAllocationError)) throw err;
      return { regions: [], from: `not predicted: ${err.detail}` };
    }
  }
  const regions = placed
    .filter((p) => p.bar.kind !== 'io' && p.bar.size !== undefined)
    .map((p) => ({ start: p.address, end: p.address + p.bar.size!, kind: 'bar' as const, label: `${p.fn.id} ${p.bar.kind === 'rom' ? 'ROM' : `BAR${p.bar.index}`}` }));
  return { regions, from };
}

export function memoryView(composed: ComposedMachine, run: RunRecord | undefined): MemoryView {
  const columns: MemoryColumn[] = [];
  const id = composed.identity;
  if (id !== undefined) columns.push({ title: 'host E820 after the carve', regions: e820Regions(id.hostAfter.entries) });
  columns.push({ title: 'guest E820', regions: e820Regions(composed.e820, id?.guests[0]?.identity) });
  const ecamBase = composed.config.pci?.ecamBase;
  const pci: Region[] = [];
  if (ecamBase !== undefined) pci.push({ start: ecamBase, end: ecamBase + BigInt(ECAM_BUSES) * 0x10_0000n, kind: 'ecam', label: `ECAM (${ECAM_BUSES} buses)` });
  const w = composed.windows;
  pci.push({ start: w.mem32.base, end: w.mem32.limit + 1n, kind: 'window', label: '32-bit window' });
  if (w.mem64 !== undefined) pci.push({ start: w.mem64.base, end: w.mem64.limit + 1n, kind: 'window', label: '64-bit window' });
  const bars = barRegions(composed, run);
  columns.push({ title: 'guest PCI space', regions: [...pci, ...bars.regions] });
  return { columns, barsFrom: bars.from };
}
