/**
 * `hvmpt export --to nova`: OpenStack Nova's configuration for the plan's pass-through devices,
 * in the forms nova/conf/pci.py documents — one `[pci] device_spec` JSON object per host device
 * (`vendor_id`, `product_id`, `address`), one `alias` per plan entry (`name`, `vendor_id`,
 * `product_id`, `device_type`, `numa_policy`) — and the flavor that asks for them
 * (`pci_passthrough:alias=NAME:1,…`, RAM, one vCPU) as the `openstack` commands to run.
 * Nova schedules by flavor: everything about the guest's platform beyond RAM and the devices
 * has no Nova form, and each is noted.
 */
import { formatBdf } from '../hw/pci/address.js';
import { formatHostSelector } from '../plan/passthrough.js';
import { hostPreparation, preparationLines } from './host-prep.js';
import { busDevices, hex4, named, noteCaptured, noteGenerateSettings, noteUnsupportedMachine, type ExportModel, type ExportResult, type Exporter } from './model.js';
import type { ExportNotes } from './notes.js';

/** Nova's alias names: its flavor extra spec splits on ',' and ':'. */
function aliasName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, '-');
}

const MiB = 1n << 20n;

function noteEverythingElse(model: ExportModel, notes: ExportNotes): void {
  const plan = model.plan;
  noteCaptured(model, notes, 'Nova');
  for (const f of busDevices(model)) {
    if (f.kind === 'captured') continue;
    notes.cannot(f.source, `${named(f)}: a Nova flavor asks for host PCI devices by alias; the guest's other devices (${f.bridge ? 'bridges' : 'emulated devices'}) are Nova's and its hypervisor's to choose`);
  }
  if (plan.memory.layout === 'identity') notes.cannot('memory.layout', 'Nova guests get ordinary RAM; there is no identity (1:1) layout or host carve');
  if (plan.memory.lowMemory === 'none') notes.cannot('memory.lowMemory', 'Nova has no setting for it');
  notes.differs('pci', 'Nova\'s libvirt driver chooses the machine type (hw_machine_type), PCI addresses and chipset; the plan\'s i440FX/PIIX3 bus layout is not kept');
  for (const t of model.addedTables) notes.cannot(t.path, `Nova has no setting for a guest's own ACPI tables: ${t.name} is not carried`);
  noteGenerateSettings(model, notes, 'Nova has no setting for it');
  if (model.composed.acpi.source === 'generated') notes.differs('acpi', 'the hypervisor Nova drives builds the guest\'s ACPI tables instead of hvmpt\'s');
  if (model.smbios !== false) notes.cannot('machine.smbios', 'Nova writes its own SMBIOS system strings (OpenStack Foundation, OpenStack Nova, the instance UUID; [libvirt] sysinfo_serial chooses the serial)');
  notes.cannot('machine.boot', 'a Nova instance boots from a Glance image or a volume, not from files on this machine');
  noteUnsupportedMachine(model, notes, {
    firmware: 'Nova chooses the firmware (image property hw_firmware_type)',
    roms: 'Nova has no setting for an option ROM file',
    serial: 'Nova logs the serial console itself',
    firmwareLog: "Nova has no setting for the firmware's debug port",
    timeout: 'a Nova instance has no time limit',
  });
  if (model.composed.acpi.tables.some((t) => t.signature === 'MCFG')) notes.cannot('machine.ecamBase', 'the ECAM window is wherever the machine type Nova picks puts it');
}

export const NOVA_EXPORTER: Exporter = {
  target: 'nova',
  summary: 'nova.conf [pci] device_spec and alias entries, and the flavor with pci_passthrough:alias',
  run(model: ExportModel, notes: ExportNotes): ExportResult {
    noteEverythingElse(model, notes);
    const specs: string[] = [];
    const aliases: string[] = [];
    const requests: string[] = [];
    const seen = new Set<string>();
    for (const pt of model.passthrough) {
      const p = pt.placement;
      const e = p.entry;
      const what = `${p.name} (host ${formatHostSelector(e.host)})`;
      const vendor = hex4(pt.hostIds.vendorId);
      const product = hex4(pt.hostIds.deviceId);
      const spec: Record<string, string> = { vendor_id: vendor, product_id: product, address: formatBdf(pt.hostBdf, true) };
      const specText = JSON.stringify(spec);
      if (!seen.has(specText)) specs.push(specText);
      seen.add(specText);
      const name = aliasName(p.name);
      aliases.push(JSON.stringify({ name, vendor_id: vendor, product_id: product, device_type: 'type-PCI', numa_policy: 'legacy' }));
      requests.push(`${name}:1`);
      if (model.passthrough.some((o) => o !== pt && o.hostIds.vendorId === pt.hostIds.vendorId && o.hostIds.deviceId === pt.hostIds.deviceId)) {
        notes.differs(`${p.path}.host`, `${what}: Nova's alias takes whichever device its device_spec lists with those IDs, so which of the plan's ${vendor}:${product} devices this entry gets is Nova's choice`);
      }
      notes.cannot(`${p.path}.at`, `${what}: Nova's libvirt driver chooses the guest address; ${formatBdf(p.guest)} is not kept`);
      if (e.backend !== 'vfio') notes.cannot(`${p.path}.backend`, `${what}: Nova passes devices through with VFIO behind an IOMMU only, not ${e.backend}`);
      if (e.rom.kind !== 'auto') notes.cannot(`${p.path}.rom`, 'Nova has no per-device ROM setting');
      if (e.ids !== undefined) notes.cannot(`${p.path}.ids`, 'Nova cannot change the IDs a host device shows');
      if (pt.use.sharing === 'shared') notes.cannot(`${p.path}.use.sharing`, 'a Nova PCI device belongs to one instance at a time');
      if (pt.use.allocation === 'dedicated') notes.cannot(`${p.path}.use.allocation`, `${e.use?.allocation === undefined ? 'dedicated (the default for a real device)' : 'dedicated'}: Nova allocates a device from the compute host's pool when the instance is scheduled; it cannot keep one for this guest alone`);
    }
    const flavor = model.name.replace(/[^A-Za-z0-9_.-]+/g, '-');
    const size = model.plan.memory.size;
    if (size % MiB !== 0n) notes.cannot('memory.size', `a flavor's RAM is whole MiB; it gets ${size / MiB} MiB`);
    const lines = [
      `# ${model.name}: exported by hvmpt from ${model.planFile}`,
      ...preparationLines(hostPreparation(model, 'nova')).map((l) => `# ${l}`),
      '#',
      '# The flavor (run with admin credentials):',
      `#   openstack flavor create --ram ${size / MiB} --vcpus ${model.plan.machine.cpus} --disk 0 ${flavor}`,
      `#   openstack flavor set ${flavor} --property hw:cpu_sockets=1 --property hw:cpu_cores=${model.plan.machine.cpus} --property hw:cpu_threads=1`,
      ...(requests.length === 0 ? [] : [`#   openstack flavor set ${flavor} --property pci_passthrough:alias=${requests.join(',')}`]),
      '#',
      '# nova.conf on the compute hosts (device_spec and alias) and the API hosts (alias):',
      '[pci]',
      ...specs.map((s) => `device_spec = ${s}`),
      ...aliases.map((a) => `alias = ${a}`),
    ];
    return { text: lines.join('\n') + '\n', files: [] };
  },
};
