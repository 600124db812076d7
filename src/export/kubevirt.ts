/**
 * `hvmpt export --to kubevirt`: a KubeVirt `VirtualMachine` whose domain asks for the plan's
 * pass-through devices under `spec.template.spec.domain.devices.hostDevices`, and the part of
 * the `KubeVirt` CR the cluster admin applies so the nodes offer them
 * (`spec.configuration.permittedHostDevices.pciHostDevices`: a `VVVV:DDDD` selector and a
 * resource name). KubeVirt allocates host devices from a node's pool by IDs and places them on
 * its own PCIe root ports (machine q35): the plan's addresses, bridges, emulated devices,
 * tables and memory layout have no KubeVirt field, and each is noted.
 */
import { stringify } from 'yaml';
import { formatBdf } from '../hw/pci/address.js';
import { formatHostSelector } from '../plan/passthrough.js';
import { hostPreparation, preparationLines } from './host-prep.js';
import { busDevices, idPair, named, noteCaptured, noteGenerateSettings, noteUnsupportedMachine, systemStrings, uuidText, type ExportModel, type ExportResult, type Exporter } from './model.js';
import type { ExportNotes } from './notes.js';

/** The resource name a device plug-in announces for these IDs. */
export function resourceName(ids: { readonly vendorId: number; readonly deviceId: number }): string {
  return `hvmpt.io/${idPair(ids).replace(':', '_')}`;
}

/** A Kubernetes name: lower case letters, digits and '-'. */
function k8sName(s: string): string {
  return (
    s
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'hvmpt-guest'
  );
}

const MiB = 1n << 20n;

function quantity(bytes: bigint): string {
  return bytes % MiB === 0n ? `${bytes / MiB}Mi` : `${bytes}`;
}

function noteEverythingElse(model: ExportModel, notes: ExportNotes): void {
  const plan = model.plan;
  noteCaptured(model, notes, 'KubeVirt');
  for (const f of busDevices(model)) {
    if (f.kind === 'captured') continue;
    if (f.bridge) notes.cannot(f.source, `${named(f)} is a fake bridge; KubeVirt builds the guest's PCI topology itself (PCIe root ports on q35) and takes no bridges`);
    else notes.cannot(f.source, `${named(f)} is an emulated device; KubeVirt adds only the devices its VirtualMachine fields name (disks, interfaces joined to pod networks, GPUs, host devices)`);
  }
  if (plan.memory.layout === 'identity') notes.cannot('memory.layout', 'KubeVirt guests get ordinary RAM from their pod; there is no identity (1:1) layout or host carve');
  if (plan.memory.lowMemory === 'none') notes.cannot('memory.lowMemory', 'a KubeVirt guest always has RAM below 1 MiB');
  notes.differs('pci', 'KubeVirt runs QEMU\'s q35 machine: the guest\'s chipset is Q35/ICH9 (00:00.0 8086:29c0, 00:1f.x) instead of hvmpt\'s i440FX/PIIX3, and its devices sit on PCIe root ports');
  for (const t of model.addedTables) notes.cannot(t.path, `KubeVirt adds no ACPI tables of a VM's own besides SLIC and MSDM (from Secrets): ${t.name} is not carried`);
  if (model.composed.acpi.source === 'generated') notes.differs('acpi', 'KubeVirt\'s QEMU builds the guest\'s ACPI tables for its q35 machine instead of hvmpt\'s');
  noteGenerateSettings(model, notes, 'KubeVirt has no setting for it');
  notes.cannot('machine.boot', `KubeVirt boots from disks, or a kernel from a container image (spec.domain.firmware.kernelBoot.container); ${model.boot.kind === 'linux' ? 'the plan names files on this machine' : `hvmpt's ${model.boot.summary.replace(/^boot: /, '')} is built on this machine`}`);
  noteUnsupportedMachine(model, notes, {
    firmware: 'KubeVirt chooses the firmware itself (BIOS or EFI)',
    roms: 'KubeVirt has no field for an option ROM file',
    serial: "a KubeVirt guest's serial console is reached with virtctl console, not a file or socket",
    firmwareLog: "KubeVirt has no field for the firmware's debug port",
    timeout: 'a VirtualMachine has no time limit',
  });
  if (model.composed.acpi.tables.some((t) => t.signature === 'MCFG')) notes.differs('machine.ecamBase', 'q35 has ECAM at its own address (0xb0000000), chosen by QEMU');
}

export const KUBEVIRT_EXPORTER: Exporter = {
  target: 'kubevirt',
  summary: 'a KubeVirt VirtualMachine with hostDevices, and the KubeVirt CR permittedHostDevices snippet (YAML)',
  run(model: ExportModel, notes: ExportNotes): ExportResult {
    const plan = model.plan;
    noteEverythingElse(model, notes);
    const hostDevices: Array<{ name: string; deviceName: string }> = [];
    const permitted = new Map<string, { pciVendorSelector: string; resourceName: string }>();
    for (const pt of model.passthrough) {
      const p = pt.placement;
      const e = p.entry;
      const what = `${p.name} (host ${formatHostSelector(e.host)})`;
      if (e.host.kind === 'address' || e.host.index > 0) notes.differs(`${p.path}.host`, `${what}: KubeVirt gives the guest any free ${idPair(pt.hostIds)} device of the node's pool, not ${e.host.kind === 'address' ? formatBdf(e.host.bdf, true) : `the function #${e.host.index}`}`);
      notes.cannot(`${p.path}.at`, `${what}: KubeVirt places host devices on its own root ports; the guest address ${formatBdf(p.guest)} is not kept`);
      if (e.backend !== 'vfio') notes.cannot(`${p.path}.backend`, `${what}: KubeVirt passes devices through with VFIO behind an IOMMU only, not ${e.backend}`);
      if (e.rom.kind !== 'auto') notes.cannot(`${p.path}.rom`, 'KubeVirt has no per-device ROM setting');
      if (e.ids !== undefined) notes.cannot(`${p.path}.ids`, 'KubeVirt cannot change the IDs a host device shows');
      if (pt.use.sharing === 'shared') notes.cannot(`${p.path}.use.sharing`, 'a KubeVirt host device belongs to one VM at a time (mediated devices are a different field)');
      if (pt.use.allocation === 'dedicated') notes.cannot(`${p.path}.use.allocation`, `${e.use?.allocation === undefined ? 'dedicated (the default for a real device)' : 'dedicated'}: KubeVirt allocates a device from the node's pool each time the VM starts; it cannot keep one for this VM alone`);
      const resource = resourceName(pt.hostIds);
      hostDevices.push({ name: k8sName(p.name), deviceName: resource });
      permitted.set(resource, { pciVendorSelector: idPair(pt.hostIds).toUpperCase(), resourceName: resource });
    }

    const firmware: Record<string, string> = {};
    if (model.smbios !== false) {
      const s = model.smbios.system;
      if (s.serial !== '') firmware.serial = s.serial;
      const uuid = uuidText(s.uuid);
      if (uuid !== undefined) firmware.uuid = uuid;
    } else notes.differs('machine.smbios', 'the plan gives the firmware no SMBIOS; KubeVirt always gives its own');
    const name = k8sName(model.name);
    const vm = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name, labels: { 'app.kubernetes.io/created-by': 'hvmpt' } },
      spec: {
        runStrategy: plan.machine.onReset === 'exit' ? 'Once' : 'Always',
        template: {
          metadata: { labels: { 'kubevirt.io/domain': name } },
          spec: {
            domain: {
              cpu: { cores: plan.machine.cpus, sockets: 1, threads: 1 },
              memory: { guest: quantity(plan.memory.size) },
              ...(Object.keys(firmware).length === 0 ? {} : { firmware }),
              devices: { ...(hostDevices.length === 0 ? {} : { hostDevices }) },
            },
          },
        },
      },
    };
    // SMBIOS strings are cluster-wide in KubeVirt: they go with the CR snippet.
    const smbios: Record<string, string> = {};
    if (model.smbios !== false) {
      for (const [k, v] of systemStrings(model.smbios.system)) if (k !== 'serial') smbios[k] = v;
      if (Object.keys(smbios).length > 0) notes.differs('machine.smbios', 'KubeVirt sets SMBIOS manufacturer, product, version and family for the whole cluster (KubeVirt CR spec.configuration.smbios), not per VM; only serial and UUID are the VM\'s own');
    }
    const cr = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'KubeVirt',
      metadata: { name: 'kubevirt', namespace: 'kubevirt' },
      spec: {
        configuration: {
          ...(permitted.size === 0 ? {} : { permittedHostDevices: { pciHostDevices: [...permitted.values()] } }),
          ...(Object.keys(smbios).length === 0 ? {} : { smbios }),
        },
      },
    };
    const head = [`${model.name}: exported by hvmpt from ${model.planFile}`, ...preparationLines(hostPreparation(model, 'kubevirt'))].map((l) => `# ${l}`);
    const text = [
      ...head,
      '# The VirtualMachine:',
      stringify(vm, { lineWidth: 0 }).trimEnd(),
      '---',
      '# For the cluster admin: merge into the KubeVirt CR (kubectl edit kubevirt -n kubevirt) so nodes offer these devices.',
      stringify(cr, { lineWidth: 0 }).trimEnd(),
    ].join('\n');
    return { text: text + '\n', files: [] };
  },
};
