/**
 * The guest's PCI devices as QEMU devices, decided once for both QEMU and libvirt (which runs
 * QEMU): fake bridges become `pci-bridge`, emulated and fake devices the QEMU model with their
 * IDs, pass-through entries `vfio-pci`. Whatever QEMU cannot reproduce is noted.
 */
import { formatBdf } from '../hw/pci/address.js';
import { formatHostSelector } from '../plan/passthrough.js';
import type { PlatformFunction } from '../platform/functions.js';
import { busDevices, idPair, named, noteCaptured, type ExportModel, type ExportPassthrough } from './model.js';
import type { ExportNotes } from './notes.js';
import { modelDifferences, QEMU_MODELS, QEMU_PCI_BRIDGE, qemuModelFor, type QemuModel } from './qemu-models.js';

/** Where a device plugs in: the root bus, or behind a bridge the export also creates. */
export interface QemuBus {
  /** The bridge's QEMU id, or undefined for the root bus (`pci.0`). */
  readonly bridge: string | undefined;
  readonly device: number;
  readonly fn: number;
}

export type QemuDevice =
  | { readonly kind: 'bridge'; readonly id: string; readonly at: QemuBus; readonly chassis: number; readonly fn: PlatformFunction }
  | { readonly kind: 'model'; readonly id: string; readonly at: QemuBus; readonly model: QemuModel; readonly romFile: string | undefined; readonly noRom: boolean; readonly fn: PlatformFunction }
  | { readonly kind: 'vfio'; readonly id: string; readonly at: QemuBus; readonly host: string; readonly pt: ExportPassthrough };

export interface QemuPlan {
  readonly devices: readonly QemuDevice[];
  /** devfns of slots with more than one function, per bus, so function 0 says multifunction=on. */
  readonly multifunction: ReadonlySet<string>;
}

export function slotKey(at: QemuBus): string {
  return `${at.bridge ?? ''}/${at.device}`;
}

/** Smallest power of two at or above n (QEMU sizes a ROM BAR to its file this way). */
function pow2ceil(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/** Decides every device; `target` names the target in notes. */
export function planQemuDevices(model: ExportModel, notes: ExportNotes, target: string): QemuPlan {
  const devices: QemuDevice[] = [];
  const bridges = new Map<string, string>();
  noteCaptured(model, notes, target);
  const busFor = (f: { parent: string | undefined; bdf: { device: number; fn: number } }, path: string, what: string): QemuBus | undefined => {
    if (f.parent === undefined) return { bridge: undefined, device: f.bdf.device, fn: f.bdf.fn };
    const id = bridges.get(f.parent);
    if (id === undefined) {
      notes.cannot(path, `${what} sits behind ${f.parent}, which ${target} does not get (see its own note)`);
      return undefined;
    }
    return { bridge: id, device: f.bdf.device, fn: f.bdf.fn };
  };

  // Bridges first, parents before children (functions come in address order, and a bridge's
  // secondary bus number is above its own).
  let chassis = 1;
  for (const f of busDevices(model)) {
    if (!f.bridge || f.kind === 'captured') continue;
    const at = busFor(f, f.source, named(f));
    if (at === undefined) continue;
    const ids = f.ids!;
    if (ids.vendorId !== QEMU_PCI_BRIDGE.vendorId || ids.deviceId !== QEMU_PCI_BRIDGE.deviceId) {
      notes.cannot(`${f.source}.vendor`, `${named(f)} has IDs ${idPair(ids)}; ${target}'s ${QEMU_PCI_BRIDGE.device} is ${idPair(QEMU_PCI_BRIDGE)} and cannot change them`);
    }
    bridges.set(f.id, f.id);
    devices.push({ kind: 'bridge', id: f.id, at, chassis: chassis++, fn: f });
  }

  for (const f of busDevices(model)) {
    if (f.bridge || f.kind === 'captured') continue;
    const at = busFor(f, f.source, named(f));
    if (at === undefined) continue;
    const m = qemuModelFor(f);
    if (m === undefined) {
      notes.cannot(f.source, `${named(f)} has IDs ${idPair(f.ids!)}, which no ${target} device model has (models hvmpt maps: ${QEMU_MODELS.map((x) => `${x.device} ${idPair(x.ids)}`).join(', ')})`);
      continue;
    }
    const romFile = model.deviceRoms.get(f.id);
    const planRom = f.bars.find((b) => b.index === 6);
    // No ROM in the plan: turn off the model's default one.
    const noRom = romFile === undefined && planRom === undefined && m.defaultRom !== undefined;
    const rom = romFile !== undefined ? pow2ceil(romFile.size) : noRom ? undefined : m.defaultRom;
    const diffs = modelDifferences(m, f, rom);
    if (diffs.length > 0) notes.cannot(f.source, `${named(f)} becomes ${target}'s ${m.device}, which has ${diffs.join(', ')}`);
    if (f.kind === 'fake') notes.differs(f.source, `${named(f)} is a registers-only placeholder in the plan; ${target}'s ${m.device} is a working device`);
    devices.push({ kind: 'model', id: f.id, at, model: m, romFile: romFile?.path, noRom, fn: f });
  }

  for (const pt of model.passthrough) {
    const p = pt.placement;
    const what = `${p.name} (host ${formatHostSelector(p.entry.host)})`;
    const at = busFor({ parent: p.behind, bdf: p.guest }, `${p.path}.at`, what);
    if (at === undefined) continue;
    if (p.entry.backend !== 'vfio') {
      notes.cannot(`${p.path}.backend`, `${what} uses ${p.entry.backend}; ${target} passes devices through only with VFIO behind an IOMMU (${p.entry.backend === 'uio' ? 'it has no uio back-end' : 'it refuses no-IOMMU VFIO groups'}): the export uses vfio-pci, which needs the host to have an IOMMU`);
    }
    if (pt.use.sharing === 'shared') notes.cannot(`${p.path}.use.sharing`, `${what}: ${target} gives a VFIO device to one guest alone; sharing needs SR-IOV VFs or mediated devices, which the plan does not name`);
    devices.push({ kind: 'vfio', id: p.name, at, host: formatBdf(pt.hostBdf, true), pt });
  }

  const multifunction = new Set<string>();
  const perSlot = new Map<string, number>();
  for (const d of devices) perSlot.set(slotKey(d.at), (perSlot.get(slotKey(d.at)) ?? 0) + 1);
  for (const [k, n] of perSlot) if (n > 1) multifunction.add(k);
  for (const d of devices) {
    if (d.at.fn !== 0 && !devices.some((o) => o.at.fn === 0 && slotKey(o.at) === slotKey(d.at))) {
      notes.cannot(d.kind === 'vfio' ? `${d.pt.placement.path}.at` : d.fn.source, `${d.id} is function ${d.at.fn} of a slot whose function 0 ${target} does not get; a guest does not scan such a slot`);
    }
  }
  return { devices, multifunction };
}
