import { readFileSync } from 'node:fs';
import { IoError } from '../errors.js';
import { buildGrubImage } from '../host/firmware/grub.js';
import { readFirmware } from '../host/firmware/locate.js';
import { readE820Input, readHostE820 } from '../host/mem/read.js';
import { normalizeE820, type E820Entry, type E820Map } from '../hw/mem/e820.js';
import { selectMap } from '../hw/mem/e820-parse.js';
import { planIdentity } from '../hw/mem/identity.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import { unionRanges } from '../hw/mem/range.js';
import { loadCapture } from '../host/pci/load.js';
import { parseBdf, sameBdf } from '../hw/pci/address.js';
import type { Capture } from '../hw/pci/capture.js';
import type { ComposedPci } from '../hw/pci/compose.js';
import { pciComposeInput } from '../plan/pci.js';
import { PlanError, planRelative, type PlanProblem } from '../plan/load.js';
import { identityRequestFromPlan } from '../plan/memory.js';
import { parseOptionRom, romMismatch } from '../host/firmware/option-rom.js';
import { setRangesType } from '../hw/mem/e820-edit.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import { guestAcpi, type GuestAcpi } from './guest-acpi.js';
import { deviceUses, formatDeviceUses, type DeviceUse } from './device-use.js';
import { composePlatformPci, DEFAULT_ECAM_BASE, ECAM_BUSES, guestPciWindows, NO_CHIPSET_HOOKS, PCI_MEM32_END, PciWindowError, type PciMachineConfig } from './pci-platform.js';
import type { Plan } from '../plan/schema.js';
import { encodeSmbios, guestSmbiosStructures, SMBIOS_FILES, uuidFromText } from '../hw/smbios/index.js';
import { formatSize } from '../util/format.js';
import { ordinaryLayout, ramTotal, type RamLayout } from './guest-memory.js';
import { defaultE820, VCPU_COUNT, type MachineConfig } from './machine-config.js';

/** What a plan becomes on the monitor: the machine to build, and the facts a report shows. */
export interface ComposedMachine {
  readonly config: MachineConfig;
  /** The guest's E820 as the plan defines it, with the ECAM window reserved (what GRUB's lsmmap must show, less firmware's own areas). */
  readonly e820: readonly E820Entry[];
  /** For identity layouts: what the guest may map (BARs are checked against it before mapping). */
  readonly protection: ProtectionMap | undefined;
  /** The guest's PCI bus as composed before boot (the firmware then programs it). */
  readonly pci: ComposedPci;
  /** Each device's category (real/emulated/fake, dedicated/dynamic, exclusive/shared). */
  readonly devices: readonly DeviceUse[];
  /** The guest's ACPI tables, as the firmware's table loader gets them. */
  readonly acpi: GuestAcpi;
  /** The host bridge's windows: the tables' _CRS, where the firmware places BARs. */
  readonly windows: GuestWindows;
  /** One line per decision, for the user. */
  readonly summary: readonly string[];
}

function readPlanFile(planFile: string, path: string, at: string): Uint8Array {
  const full = planRelative(planFile, path);
  try {
    return new Uint8Array(readFileSync(full));
  } catch (err) {
    throw new IoError(`cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { input: planFile, at }, { cause: err });
  }
}

function hostMap(plan: Plan, planFile: string): { map: E820Map; source: string } {
  const given = plan.machine.hostMap;
  if (given !== undefined) {
    const input = planRelative(planFile, given);
    return { map: normalizeE820(selectMap(readE820Input(input), input).entries).map, source: input };
  }
  const { result, source } = readHostE820();
  return { map: normalizeE820(selectMap(result, source).entries).map, source };
}

/** Turns a validated plan into the monitor's machine. Reads the files the plan names; nothing else. */
export function composeMachine(plan: Plan, planFile: string): ComposedMachine {
  const summary: string[] = [];
  const m = plan.machine;
  let ram: RamLayout;
  let e820: E820Entry[];
  let protection: ProtectionMap | undefined;
  if (plan.memory.layout === 'identity') {
    const host = hostMap(plan, planFile);
    const carved = planIdentity(host.map, identityRequestFromPlan(plan.memory));
    const guest = carved.guests[0]!;
    ram = { ranges: unionRanges([...guest.lowMemory, ...guest.identity]) };
    e820 = [...guest.e820.entries];
    protection = guest.protection;
    summary.push(
      `memory: identity layout from ${host.source}: ${guest.identity.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`).join(', ')}` +
        ` (host kernel needs ${carved.kernelParams.join(' ')})`,
    );
  } else {
    ram = ordinaryLayout(plan.memory.size);
    e820 = defaultE820(ram);
    summary.push(`memory: ${formatSize(plan.memory.size)} ordinary layout`);
  }

  const firmware =
    m.firmware === undefined
      ? { name: readFirmware('seabios').path, image: readFirmware('seabios').bytes }
      : { name: m.firmware, image: readPlanFile(planFile, m.firmware, 'machine.firmware') };
  summary.push(`firmware: ${firmware.name}`);

  let linuxBoot: MachineConfig['linuxBoot'];
  const optionRom = (): Uint8Array => readFirmware('linuxbootDma').bytes;
  const boot = m.boot;
  if (boot.kind === 'grub-report') {
    linuxBoot = { name: 'GRUB report image', kernel: buildGrubImage(), cmdline: '', optionRom: optionRom() };
    summary.push('boot: GRUB report image (lspci -i, lsmmap, lsacpi, then halt)');
  } else if (boot.kind === 'grub') {
    const modules = [...new Set(['serial', 'terminal', 'terminfo', ...boot.modules])];
    linuxBoot = { name: 'GRUB image', kernel: buildGrubImage(boot.config, modules), cmdline: '', optionRom: optionRom() };
    summary.push(`boot: GRUB image with modules ${modules.join(' ')}`);
  } else {
    linuxBoot = {
      name: boot.kernel,
      kernel: readPlanFile(planFile, boot.kernel, 'machine.boot.kernel'),
      initrd: boot.initrd === undefined ? undefined : readPlanFile(planFile, boot.initrd, 'machine.boot.initrd'),
      cmdline: boot.cmdline,
      optionRom: optionRom(),
    };
    summary.push(`boot: Linux kernel ${boot.kernel}${boot.initrd !== undefined ? ` with ${boot.initrd}` : ''}`);
  }
  const ecamBase = chooseEcamBase(plan, planFile);
  const pci = composePciConfig(plan, planFile, ram, ecamBase, summary);
  const devices = deviceUses(plan, pci.composed);
  if (devices.problems.length > 0) throw new PlanError(planFile, devices.problems);
  if (devices.uses.length > 0) summary.push(`pci: devices: ${formatDeviceUses(devices.uses)}`);
  // The platform's own address space: the ECAM window is reserved in the E820 (as firmware
  // does for an MMCONFIG window) and kept out of the host bridge's windows.
  const ecam = { start: ecamBase, end: ecamBase + BigInt(ECAM_BUSES) * 0x10_0000n };
  e820 = [...setRangesType({ entries: e820 }, [ecam], 'reserved').entries];
  let windows;
  try {
    windows = guestPciWindows(e820, ecam);
  } catch (err) {
    if (err instanceof PciWindowError) throw new PlanError(planFile, [{ path: 'machine.ecamBase', message: err.message }]);
    throw err;
  }
  summary.push(
    `pci: host bridge windows: I/O ${hexRange(windows.io!)}, 32-bit ${hexRange(windows.mem32)}, 64-bit ${hexRange(windows.mem64!)}; ECAM [0x${ecam.start.toString(16)}, 0x${ecam.end.toString(16)}) reserved in the E820`,
  );
  const acpi = guestAcpi(plan, planFile, { vcpus: VCPU_COUNT, ecam: { base: ecamBase, buses: ECAM_BUSES }, pci: pci.composed, windows });
  summary.push(...acpi.summary);
  const config: MachineConfig = {
    ram,
    e820,
    firmware,
    linuxBoot,
    pci: { ...pci.config, windows },
    // Built and linked here, in the main thread: the vCPU thread gets plain fw_cfg files.
    fwCfgFiles: [...acpi.files, ...smbiosFiles(plan, ram, summary)],
    acpiPmBase: acpi.pm.base,
    s5SleepType: acpi.pm.s5SleepType,
    ...(protection === undefined ? {} : { protection: protection.grants }),
  };
  return { config, e820, protection, pci: pci.composed, devices: devices.uses, acpi, windows, summary };
}

/**
 * The SMBIOS SeaBIOS installs (as QEMU hands it over): without it SeaBIOS builds a minimal set
 * itself, which also costs a quarter second of guest time under nested KVM.
 */
function smbiosFiles(plan: Plan, ram: RamLayout, summary: string[]): Array<{ name: string; data: Uint8Array }> {
  const s = plan.machine.smbios;
  if (s === false) {
    summary.push('SMBIOS: none given (the firmware makes its own)');
    return [];
  }
  const uuid = s?.uuid === undefined ? undefined : uuidFromText(s.uuid);
  const structures = guestSmbiosStructures({ ...s, uuid, cpus: VCPU_COUNT, ram: ram.ranges });
  const { anchor, tables } = encodeSmbios(structures);
  const system = structures.find((x) => x.type === 1);
  summary.push(`SMBIOS: ${system?.manufacturer} ${system?.product}, ${VCPU_COUNT} processor(s), ${formatSize(ramTotal(ram))} of memory (${tables.length} bytes)`);
  return [
    { name: SMBIOS_FILES.anchor, data: anchor },
    { name: SMBIOS_FILES.tables, data: tables },
  ];
}

const hexRange = (w: { base: bigint; limit: bigint }): string => `[0x${w.base.toString(16)}, 0x${w.limit.toString(16)}]`;

/**
 * Where the monitor decodes ECAM: machine.ecamBase, else the address the plan's generated MCFG
 * names, else QEMU q35's. The window must stay below the IOAPIC (0xFEC00000).
 */
function chooseEcamBase(plan: Plan, planFile: string): bigint {
  const given = plan.machine.ecamBase;
  const gen = plan.acpi?.generate?.ecam;
  const fromTables = gen === undefined || gen === false ? undefined : gen.base;
  const base = given ?? fromTables ?? DEFAULT_ECAM_BASE;
  const end = base + BigInt(ECAM_BUSES) * 0x10_0000n;
  if (base % 0x10_0000n !== 0n || end > PCI_MEM32_END) {
    throw new PlanError(planFile, [{ path: given !== undefined ? 'machine.ecamBase' : 'acpi.generate.ecam.base', message: `the 256 MiB ECAM window must be 1 MiB aligned and end at or below the IOAPIC (0x${PCI_MEM32_END.toString(16)}); 0x${base.toString(16)} ends at 0x${end.toString(16)}` }]);
  }
  return base;
}

/** The host capture the bus starts from, with only the functions the plan keeps. */
function hostCapture(plan: Plan, planFile: string): Capture | undefined {
  const h = plan.machine.hostPci;
  if (h === undefined) return undefined;
  const capture = loadCapture(planRelative(planFile, h.capture));
  if (h.functions === undefined) return capture;
  const problems: PlanProblem[] = [];
  const keep = h.functions.map((text, i) => {
    const b = parseBdf(text);
    if (b === undefined) problems.push({ path: `machine.hostPci.functions[${i}]`, message: `'${text}' is not a PCI address like 00:1f.3` });
    else if (!capture.functions.some((f) => sameBdf(f.bdf, b))) problems.push({ path: `machine.hostPci.functions[${i}]`, message: `${text} is not in ${capture.source}` });
    return b;
  });
  if (problems.length > 0) throw new PlanError(planFile, problems);
  return { ...capture, functions: capture.functions.filter((f) => keep.some((b) => b !== undefined && sameBdf(b, f.bdf))) };
}

/**
 * The PCI part: composes the bus once here (so every plan problem is reported, by path, before
 * anything runs), checks each ROM file against its device, and returns the plain data the vCPU
 * thread composes the same bus from.
 */
function composePciConfig(plan: Plan, planFile: string, ram: RamLayout, ecamBase: bigint, summary: string[]): { config: PciMachineConfig; composed: ComposedPci } {
  const m = plan.machine;
  const ecamEnd = ecamBase + BigInt(ECAM_BUSES) * 0x10_0000n;
  const problems: PlanProblem[] = [];
  const clash = ram.ranges.find((r) => ecamBase < r.end && r.start < ecamEnd);
  if (clash !== undefined) problems.push({ path: 'machine.ecamBase', message: `the ECAM window [0x${ecamBase.toString(16)}, 0x${ecamEnd.toString(16)}) overlaps guest RAM` });
  const roms = m.roms.map((r, i) => ({ device: r.device, name: r.file, bytes: readPlanFile(planFile, r.file, `machine.roms[${i}].file`) }));
  const base = hostCapture(plan, planFile);
  const input = plan.pci === undefined ? undefined : pciComposeInput(plan.pci, { planFile });
  const config: PciMachineConfig = { planFile, ...(base === undefined ? {} : { base }), ...(input === undefined ? {} : { input }), ecamBase, roms };
  try {
    structuredClone(config);
  } catch (err) {
    // A device model whose spec carries code must be instantiated in the vCPU thread itself.
    throw new PlanError(planFile, [{ path: 'pci.emulated', message: `a device model's spec cannot cross to the vCPU thread (${err instanceof Error ? err.message : String(err)})` }]);
  }
  const composed = composePlatformPci(config, NO_CHIPSET_HOOKS);
  roms.forEach((r, i) => {
    const entry = composed.entries.find((e) => e.fn.id === r.device);
    const path = `machine.roms[${i}]`;
    if (entry === undefined) {
      problems.push({ path: `${path}.device`, message: `no PCI device named '${r.device}' in the plan` });
      return;
    }
    let rom;
    try {
      rom = parseOptionRom(r.bytes, r.name);
    } catch (err) {
      problems.push({ path: `${path}.file`, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    const fn = entry.fn;
    const mismatch = romMismatch(rom, fn.read(0, 2), fn.read(2, 2));
    if (mismatch !== undefined) problems.push({ path: `${path}.file`, message: `${r.name} ${mismatch}` });
    const romBar = fn.bars?.layouts.find((b) => b.kind === 'rom');
    if (romBar === undefined || romBar.size === undefined) problems.push({ path: `${path}.device`, message: `${r.device} has no expansion ROM BAR of known size (give it romSize: ${rom.barSize})` });
    else if (romBar.size < BigInt(r.bytes.length)) problems.push({ path: `${path}.device`, message: `${r.device}'s ROM BAR decodes ${romBar.size} bytes, less than the ${r.bytes.length}-byte ROM (romSize: ${rom.barSize})` });
  });
  if (problems.length > 0) throw new PlanError(planFile, problems);
  const kinds = composed.entries.filter((e) => !e.fn.hidden).map((e) => `${composed.topology.addressOf(e.fn)} ${e.fn.id} (${e.origin === 'chipset' ? 'chipset' : e.fn.kind})`);
  summary.push(`pci: ${kinds.join(', ')}${composed.hidden.length > 0 ? `; hidden: ${composed.hidden.map((e) => e.fn.id).join(', ')}` : ''}; ECAM at 0x${ecamBase.toString(16)}`);
  for (const w of composed.warnings) summary.push(`pci: warning: ${w}`);
  for (const r of roms) summary.push(`rom: ${r.name} at ${r.device}'s ROM BAR`);
  return { config, composed };
}
