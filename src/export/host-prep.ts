/**
 * What the host must do before a target can start the guest: kernel parameters, commands, and
 * warnings where the host facts (`--host`) say a device will not work. Each target writes these
 * as comments in its own syntax.
 */
import { formatBdf } from '../hw/pci/address.js';
import { hostIds, passthroughFindings } from '../host/pci/host-facts.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { idPair, type ExportModel, type ExportPassthrough } from './model.js';

export interface HostPreparation {
  /** Host kernel command line additions, each with why. */
  readonly kernelParams: ReadonlyArray<{ readonly param: string; readonly why: string }>;
  /** Shell commands to run on the host before the guest starts. */
  readonly commands: readonly string[];
  /** Where the host facts say a device will not work as planned. */
  readonly warnings: readonly string[];
}

export type HostTarget = 'qemu' | 'libvirt' | 'xen' | 'kubevirt' | 'nova';

/** The host's address of an entry, for commands; a placeholder naming the selector when unknown. */
export function hostAddress(p: ExportPassthrough): string {
  return formatBdf(p.hostBdf, true);
}

function iommuParams(model: ExportModel): Array<{ param: string; why: string }> {
  const machine = model.hostAnalysis?.analysis.machine;
  if (machine !== undefined) {
    // The collection says what this host has: nothing to add where its IOMMU is on already.
    if (machine.iommu.on) return [];
    return machine.iommu.enable.map((e) => (e.startsWith('remove ') ? { param: e, why: 'it keeps the host\'s IOMMU off' } : { param: e, why: `turn on the host's IOMMU (${machine.iommu.firmware === 'dmar' ? 'its firmware describes VT-d' : machine.iommu.firmware === 'ivrs' ? 'its firmware describes AMD-Vi' : `its CPU is ${machine.cpu.vendor ?? 'unknown'}`})` }));
  }
  if (model.host?.iommuVendor === 'amd') return [];
  const why = model.host?.iommuVendor === 'intel' ? 'turn on the host\'s Intel VT-d' : 'turn on the IOMMU on an Intel host (AMD-Vi is on by default)';
  return [{ param: 'intel_iommu=on', why }];
}

/** One shell line moving a function to vfio-pci, from whatever driver it has. */
function bindToVfio(a: string): string {
  return `echo vfio-pci > /sys/bus/pci/devices/${a}/driver_override && { [ ! -e /sys/bus/pci/devices/${a}/driver ] || echo ${a} > /sys/bus/pci/devices/${a}/driver/unbind; } && echo ${a} > /sys/bus/pci/drivers_probe`;
}

export function hostPreparation(model: ExportModel, target: HostTarget): HostPreparation {
  const kernelParams: Array<{ param: string; why: string }> = [];
  const commands: string[] = [];
  const warnings: string[] = [];
  const pts = model.passthrough;
  if (pts.length === 0) return { kernelParams, commands, warnings };

  if (target === 'xen') {
    kernelParams.push({ param: 'iommu=1', why: 'Xen\'s own command line: pass-through needs the IOMMU (the default where one is present)' });
    const dedicated = pts.filter((p) => p.use.allocation === 'dedicated');
    if (dedicated.length > 0) {
      kernelParams.push({ param: `xen-pciback.hide=${dedicated.map((p) => `(${hostAddress(p)})`).join('')}`, why: 'dom0\'s command line: pciback claims the dedicated devices at boot' });
    }
  } else {
    kernelParams.push(...iommuParams(model));
    // libvirt (and Nova through it) detaches a managed device itself when the guest starts.
    const bindAtBoot = target === 'libvirt' || target === 'nova' ? pts.filter((p) => p.use.allocation === 'dedicated') : pts;
    // IDs a function the host keeps also has would take that function from the host at boot: those are bound by address.
    const passed = new Set(pts.map((p) => hostAddress(p)));
    const kept = new Set((model.host?.functions ?? []).filter((f) => !passed.has(sysfsName(f.address))).map((f) => idPair(hostIds(f))));
    const ids = [...new Set(bindAtBoot.map((p) => idPair(p.hostIds)))];
    const safe = ids.filter((id) => !kept.has(id));
    if (safe.length > 0) kernelParams.push({ param: `vfio-pci.ids=${safe.join(',')}`, why: 'vfio-pci claims these devices at boot (every device with these IDs)' });
    for (const id of ids.filter((x) => kept.has(x))) {
      const who = bindAtBoot.filter((p) => idPair(p.hostIds) === id).map((p) => hostAddress(p));
      commands.push(...who.map(bindToVfio));
      warnings.push(`${id} is also the ID of a function the host keeps, so vfio-pci.ids= would take that one too: ${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} bound by address instead`);
    }
    if (target === 'qemu') {
      for (const p of pts.filter((x) => x.use.allocation === 'dynamic' && !kept.has(idPair(x.hostIds)))) {
        const a = hostAddress(p);
        commands.push(bindToVfio(a));
      }
    }
  }

  // The host functions carry their IOMMU groups (from sysfs) whichever host describes them.
  const host = model.host ?? { source: "this machine's sysfs", functions: [], iommuVendor: undefined, findings: [] };
  const analysed = model.hostAnalysis?.findings ?? [];
  const facts = { ...host, findings: [...host.findings, ...analysed] };
  // The host's own state (its IOMMU, how it was collected) weighs on every device; Xen's IOMMU is its own, not dom0's.
  if (target !== 'xen') for (const f of analysed) if (f.device === undefined) warnings.push(f.message);
  // Xen's pciback assigns functions one by one: VFIO's whole-group rule is not its.
  for (const f of passthroughFindings(facts, pts.map((p) => p.placement), { vfioGroups: target !== 'xen' })) warnings.push(f.message);
  return { kernelParams, commands, warnings };
}

/** The preparation as comment lines (without the comment marker). */
export function preparationLines(prep: HostPreparation): string[] {
  const out: string[] = [];
  if (prep.kernelParams.length === 0 && prep.commands.length === 0 && prep.warnings.length === 0) return out;
  out.push('Host preparation:');
  for (const k of prep.kernelParams) out.push(`  kernel parameter ${k.param}  (${k.why})`);
  for (const c of prep.commands) out.push(`  before start: ${c}`);
  for (const w of prep.warnings) out.push(`  warning: ${w}`);
  return out;
}
