/**
 * The parts of a plan QEMU's `pc` machine takes the same way whether QEMU is run directly or
 * through libvirt: memory, the chipset, ACPI tables, SMBIOS, the boot image. Both exporters
 * call these, so a plan gets the same notes from both.
 */
import { bootPath, type ExportFile, type ExportModel } from './model.js';
import type { ExportNotes } from './notes.js';

/** Tables QEMU builds itself: one from the plan cannot replace them (and must not be listed twice). */
const QEMU_OWN_TABLES = new Set(['FACP', 'FACS', 'DSDT', 'APIC', 'MCFG', 'HPET', 'RSDT', 'XSDT', 'RSDP']);

/** Functions of QEMU's pc machine the plan's bus does not have (its i440FX and PIIX3 match hvmpt's). */
const PC_EXTRAS = '00:01.1 (PIIX3 IDE, 8086:7010) and 00:01.3 (PIIX4 ACPI/SMBus, 8086:7113)';

/**
 * `identity` says why the target has no identity layout (default: QEMU's reason); the target
 * may still express part of it, as Xen does with e820_host.
 */
export function noteMachine(model: ExportModel, notes: ExportNotes, target: string, identity?: string): void {
  const plan = model.plan;
  const m = plan.memory;
  if (m.layout === 'identity') {
    const carve = model.composed.identity?.kernelParams.join(' ') ?? 'memmap=';
    notes.cannot('memory.layout', identity ?? `${target} gives the guest RAM from QEMU's process, anywhere in host memory, and maps it through the IOMMU: guest frames are not machine frames, so the identity (1:1) layout and its host carve (${carve}) have no equivalent; the guest gets ${m.size} bytes of ordinary RAM`);
    if (m.reservations.length > 0) notes.cannot('memory.reservations', 'they shape the identity layout, which the target does not have');
  }
  if (m.lowMemory === 'none') notes.cannot('memory.lowMemory', `${target}'s PC always gives the guest the RAM below 1 MiB`);
  notes.differs('pci', `${target}'s pc machine also has ${PC_EXTRAS}, which the plan's bus does not`);
  const acpi = model.composed.acpi;
  const mcfg = acpi.tables.some((t) => t.signature === 'MCFG');
  if (mcfg) notes.cannot('machine.ecamBase', `the plan's guest has ECAM (MMCONFIG) at 0x${model.composed.config.pci!.ecamBase.toString(16)}; ${target}'s pc machine (i440FX) has none, so the guest reaches configuration space through CF8/CFC only (256 bytes per function: extended capabilities are out of reach)`);
  if (acpi.source === 'generated') {
    notes.differs('acpi', `${target} builds its own ${model.generatedTables.map((t) => t.signature).join(' ')} for the same i440FX/PIIX3 machine instead of hvmpt's`);
    const g = plan.acpi?.generate;
    if (g !== undefined) {
      for (const k of ['pm', 'reset', 'rtc', 'i8042', 'vga', 'com1', 'interrupts', 'ioApic'] as const) {
        if (g[k] !== undefined) notes.cannot(`acpi.generate.${k}`, `${target} describes its own machine in its own tables; hvmpt's setting does not reach them`);
      }
      if (g.oem?.dsdtTableId !== undefined || g.oem?.oemRevision !== undefined || g.oem?.creatorId !== undefined || g.oem?.creatorRevision !== undefined) {
        notes.cannot('acpi.generate.oem', `${target} takes an OEM ID and OEM table ID for its tables, nothing else of the OEM section`);
      }
    }
  }
  if (model.smbios === false) notes.differs('machine.smbios', `the plan gives the firmware no SMBIOS; ${target} always gives its own`);
}

/** The tables the target adds with its "add an ACPI table" option (one file each), noting the ones it builds itself. */
export function addedTableFiles(model: ExportModel, notes: ExportNotes, target: string): ExportFile[] {
  const files: ExportFile[] = [];
  model.addedTables.forEach((t, i) => {
    if (QEMU_OWN_TABLES.has(t.signature)) {
      // Only `acpi.tables: host` brings these: expose refuses them.
      notes.cannot('acpi.tables', `the host's ${t.signature} cannot replace ${target}'s own (it builds FACP, FACS, DSDT, APIC, MCFG and HPET for its machine)`);
      return;
    }
    const id = t.oemTableId.replace(/[^A-Za-z0-9_-]/g, '');
    files.push({ name: `acpi-${i}-${t.signature.toLowerCase()}${id === '' ? '' : `-${id.toLowerCase()}`}.aml`, bytes: t.bytes, what: `${t.name} (${t.path})` });
  });
  return files;
}

/** The boot target as the three Linux-boot settings every QEMU-based target has (kernel, initrd, command line), and the files hvmpt builds for it. */
export function bootSettings(model: ExportModel, filesDir: string): { kernel: string; initrd: string | undefined; cmdline: string; files: ExportFile[] } {
  const b = model.boot;
  return { kernel: bootPath(b.kernel, filesDir), initrd: b.initrd === undefined ? undefined : bootPath(b.initrd, filesDir), cmdline: b.cmdline, files: [...b.built] };
}
