/**
 * `hvmpt export --to xen`: an `xl.cfg` for an HVM guest — `pci=[ 'BDF@VSLOT,permissive=…,
 * seize=…,rdm_policy=…,msitranslate=…,power_mgmt=…' ]`, `rdm=strategy=host`, `e820_host=` (Xen's nearest
 * thing to an identity layout), `acpi_firmware=` for the plan's added tables, `smbios_firmware=`
 * for its SMBIOS strings, the boot target, and Xen's QEMU arguments for emulated devices. The
 * dom0 and Xen command-line parameters (`xen-pciback.hide=`, `iommu=`) are comments at the top.
 */
import { encodeStructure } from '../hw/smbios/index.js';
import { formatBdf } from '../hw/pci/address.js';
import { formatHostSelector } from '../plan/passthrough.js';
import { hostPreparation, preparationLines } from './host-prep.js';
import { noteUnsupportedMachine, type ExportFile, type ExportModel, type ExportOptions, type ExportResult, type Exporter } from './model.js';
import type { ExportNotes } from './notes.js';
import { addedTableFiles, bootSettings, noteMachine } from './qemu-machine.js';
import { planQemuDevices } from './qemu-devices.js';
import { deviceArgs } from './qemu.js';

/** An xl.cfg string: double-quoted, with the escapes libxlutil's lexer reads. */
function xlString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function xlList(items: readonly string[]): string {
  return items.length === 0 ? '[ ]' : `[\n${items.map((i) => `  ${xlString(i)},`).join('\n')}\n]`;
}

const MiB = 1n << 20n;

/** The `pci=` entries, one per pass-through entry Xen can take. */
function pciEntries(model: ExportModel, notes: ExportNotes): string[] {
  const out: string[] = [];
  const unclaimed = model.plan.pci?.unclaimed ?? 'pass';
  for (const pt of model.passthrough) {
    const p = pt.placement;
    const e = p.entry;
    const what = `${p.name} (host ${formatHostSelector(e.host)})`;
    if (p.behind !== undefined || p.guest.bus !== 0 || p.guest.segment !== 0) {
      notes.cannot(`${p.path}.at`, `${what} sits at ${formatBdf(p.guest)}${p.behind === undefined ? '' : ` behind ${p.behind}`}; Xen puts pass-through devices on the guest's root bus 00 only`);
      continue;
    }
    // xl puts a single function at function 0 of its virtual slot: one at function n > 0 gets a slot of its own.
    const vslot = p.guest.fn === 0 ? `@${p.guest.device.toString(16).padStart(2, '0')}` : '';
    if (p.guest.fn !== 0) notes.cannot(`${p.path}.at`, `${what}: xl makes a single function function 0 of a virtual slot, so it cannot be ${formatBdf(p.guest)}; Xen picks a slot of its own for it`);
    if (e.backend !== 'vfio') notes.cannot(`${p.path}.backend`, `${what} uses ${e.backend}; Xen passes a device to an HVM guest only behind the IOMMU (the entry assumes the host has one)`);
    if (e.rom.kind !== 'auto') notes.cannot(`${p.path}.rom`, `xl has no per-device ROM setting: the guest sees the device's own ROM`);
    if (e.ids !== undefined) notes.cannot(`${p.path}.ids`, 'xl cannot change the IDs a passed-through device shows');
    if (pt.use.sharing === 'shared') notes.cannot(`${p.path}.use.sharing`, 'Xen assigns a device to one domain at a time');
    if (unclaimed === 'hide') notes.cannot('pci.unclaimed', 'Xen either passes unvirtualized registers through (permissive=1) or makes them read-only (permissive=0); it cannot hide them');
    const opts = [
      `permissive=${unclaimed === 'pass' ? 1 : 0}`,
      // A dynamic device is taken from its host driver when the domain is created.
      `seize=${pt.use.allocation === 'dynamic' ? 1 : 0}`,
      'rdm_policy=strict',
      'msitranslate=0',
      'power_mgmt=0',
    ];
    out.push(`${formatBdf(pt.hostBdf, true)}${vslot},${opts.join(',')}`);
  }
  return out;
}

/** xl's smbios_firmware: each structure preceded by its length as a 32-bit little-endian integer. */
function smbiosFile(model: ExportModel): ExportFile | undefined {
  if (model.smbios === false) return undefined;
  const parts = [encodeStructure(model.smbios.system), encodeStructure(model.smbios.chassis)];
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const v = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    v.setUint32(at, p.length, true);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return { name: 'smbios.bin', bytes: out, what: 'SMBIOS system (type 1) and chassis (type 3) structures for smbios_firmware' };
}

export const XEN_EXPORTER: Exporter = {
  target: 'xen',
  summary: 'an xl.cfg for an HVM guest (pci=, rdm=, e820_host=, acpi_firmware=, smbios_firmware=) with the dom0 parameters',
  run(model: ExportModel, notes: ExportNotes, options: ExportOptions): ExportResult {
    const target = 'Xen';
    const plan = model.plan;
    const dir = options.filesDir.replace(/\/+$/, '');
    noteMachine(
      model,
      notes,
      target,
      'Xen does not place an HVM guest\'s RAM at machine addresses (its DMA goes through the IOMMU): e820_host=1 mirrors the host\'s holes in the guest\'s E820 (which Xen honours for PV guests) and rdm=strategy=host reserves the host\'s RMRR ranges, but the 1:1 layout itself has no equivalent',
    );
    const lines: string[] = [`# ${model.name}: exported by hvmpt from ${model.planFile}`];
    for (const l of preparationLines(hostPreparation(model, 'xen'))) lines.push(`# ${l}`);
    const set = (k: string, v: string): void => void lines.push(`${k} = ${v}`);
    set('name', xlString(model.name));
    set('type', xlString('hvm'));
    if (plan.memory.size % MiB !== 0n) notes.cannot('memory.size', `xl gives memory in MiB; the guest gets ${plan.memory.size / MiB} MiB`);
    set('memory', String(plan.memory.size / MiB));
    set('vcpus', String(plan.machine.cpus));
    if (plan.machine.cpus > 1) notes.differs('machine.cpus', `Xen builds the CPUID topology of an HVM guest's ${plan.machine.cpus} vCPUs itself; xl.cfg has no setting for one package of ${plan.machine.cpus} cores`);
    set('device_model_version', xlString('qemu-xen'));
    if (model.firmware !== undefined) set('bios_override', xlString(model.firmware));
    else set('bios', xlString('seabios'));
    set('vga', xlString('none'));
    set('xen_platform_pci', '0');
    notes.differs('pci', 'xen_platform_pci=0: the guest gets no Xen platform device (and so no PV drivers), as the plan\'s bus has none');
    set('serial', plan.machine.serial === 'stdout' ? xlString('pty') : xlList([plan.machine.serial.startsWith('unix:') || plan.machine.serial.startsWith('tcp:') ? plan.machine.serial : `file:${plan.machine.serial}`]));
    if (plan.machine.onReset === 'exit') set('on_reboot', xlString('destroy'));
    noteUnsupportedMachine(model, notes, { timeout: 'xl has no time limit for a domain' });
    const boot = bootSettings(model, dir);
    const files: ExportFile[] = boot.files;
    set('kernel', xlString(boot.kernel));
    if (boot.initrd !== undefined) set('ramdisk', xlString(boot.initrd));
    if (boot.cmdline !== '') set('cmdline', xlString(boot.cmdline));
    const tables = addedTableFiles(model, notes, target);
    if (tables.length > 0) {
      const all = new Uint8Array(tables.reduce((n, t) => n + t.bytes.length, 0));
      let at = 0;
      for (const t of tables) {
        all.set(t.bytes, at);
        at += t.bytes.length;
      }
      files.push({ name: 'acpi-firmware.bin', bytes: all, what: `${tables.map((t) => t.what).join('; ')} (concatenated for acpi_firmware)` });
      set('acpi_firmware', xlString(`${dir}/acpi-firmware.bin`));
    }
    const smbios = smbiosFile(model);
    if (smbios !== undefined) {
      files.push(smbios);
      set('smbios_firmware', xlString(`${dir}/${smbios.name}`));
    }
    const oem = plan.acpi?.generate?.oem;
    if (oem !== undefined) notes.cannot('acpi.generate.oem', 'hvmloader writes its own OEM IDs in the tables it builds');
    if (plan.memory.layout === 'identity') set('e820_host', '1');
    const pci = pciEntries(model, notes);
    if (pci.length > 0) {
      set('pci', xlList(pci));
      // Only the strategy: Debian's libxlutil (Xen 4.17) refuses any rdm= string with a policy
      // (xlu_rdm_parse returns ERROR_INVAL), so the strict policy goes on each pci= entry.
      set('rdm', xlString('strategy=host'));
    }
    // Emulated devices and fake bridges: arguments for Xen's QEMU (the device model).
    const emulated = planQemuDevices({ ...model, passthrough: [] }, notes, target);
    const dmArgs = emulated.devices.flatMap((d) => deviceArgs(d, emulated.multifunction));
    if (plan.machine.firmwareLog !== undefined) dmArgs.push('-chardev', `file,id=firmware-log,path=${plan.machine.firmwareLog}`, '-device', 'isa-debugcon,iobase=0x402,chardev=firmware-log');
    if (dmArgs.length > 0) {
      const what = [...emulated.devices.map((d) => d.id), ...(plan.machine.firmwareLog === undefined ? [] : ['the firmware log (machine.firmwareLog)'])];
      notes.differs('pci', `Xen has no xl.cfg setting for ${what.join(', ')}: they go to its QEMU through device_model_args_hvm`);
      set('device_model_args_hvm', xlList(dmArgs));
    }
    return { text: lines.join('\n') + '\n', files };
  },
};
