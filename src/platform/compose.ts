import { normalizeE820, type E820Entry } from '../hw/mem/e820.js';
import { selectMap } from '../hw/mem/e820-parse.js';
import { IdentityPlanError, planIdentity, type GuestLayout, type IdentityPlan } from '../hw/mem/identity.js';
import { ProtectionMap, type Grant } from '../hw/mem/protection.js';
import { subtractRanges, unionRanges } from '../hw/mem/range.js';
import { parseBdf, sameBdf } from '../hw/pci/address.js';
import type { Capture } from '../hw/pci/capture.js';
import type { ComposedPci, FunctionPolicy } from '../hw/pci/compose.js';
import { hidingAlso, MESSAGE_SIGNALLED } from '../hw/pci/real.js';
import { passthroughName, pciComposeInput } from '../plan/pci.js';
import { DEFAULT_PM } from '../hw/acpi/generate/facts.js';
import { PlanError, type PlanProblem } from '../plan/load.js';
import { identityPlanPath, identityRequestFromPlan } from '../plan/memory.js';
import { parseOptionRom, romMismatch } from '../hw/pci/option-rom.js';
import { setRangesType } from '../hw/mem/e820-edit.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import { guestAcpi, type GuestAcpi } from './guest-acpi.js';
import { deviceUses, formatDeviceUses, type DeviceUse } from './device-use.js';
import type { PlatformInputs } from './inputs.js';
import { placePassthrough } from './passthrough.js';
import { placePlugins } from './plugins.js';
import { composePlatformPci, DEFAULT_ECAM_BASE, ECAM_BUSES, guestPciWindows, NO_CHIPSET_HOOKS, PCI_MEM32_END, PciWindowError, type PciMachineConfig } from './pci-platform.js';
import type { Plan } from '../plan/schema.js';
import { encodeSmbios, guestSmbiosStructures, SMBIOS_FILES, uuidFromText } from '../hw/smbios/index.js';
import { formatSize } from '../util/format.js';
import { ordinaryLayout, ramTotal, type RamLayout } from '../hw/mem/ram-layout.js';
import { defaultE820, type MachineConfig } from './machine-config.js';

/** What a plan becomes on the monitor: the machine to build, and the facts a report shows. */
export interface ComposedMachine {
  readonly config: MachineConfig;
  /** The guest's E820 as the plan defines it, with the ECAM window reserved (what GRUB's lsmmap must show, less firmware's own areas). */
  readonly e820: readonly E820Entry[];
  /** For identity layouts: what the guest may map (BARs are checked against it before mapping). */
  readonly protection: ProtectionMap | undefined;
  /** For identity layouts: the planner's whole answer (host map before and after the carve, kernel parameters, the guest's regions), for exporters and the report. */
  readonly identity: IdentityPlan | undefined;
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

/**
 * Turns a validated plan into the monitor's machine, from inputs read beforehand
 * (src/host/plan/inputs.ts): no I/O here, so every plan problem is found the same way whether
 * the plan runs, is exported or is only checked.
 */
export function composeMachine(plan: Plan, inputs: PlatformInputs): ComposedMachine {
  const planFile = inputs.planFile;
  const summary: string[] = [];
  let ram: RamLayout;
  let e820: E820Entry[];
  let protection: ProtectionMap | undefined;
  let identity: IdentityPlan | undefined;
  if (plan.memory.layout === 'identity') {
    const host = inputs.hostMap;
    if (host === undefined) throw new PlanError(planFile, [{ path: 'memory.layout', message: 'an identity layout needs the host E820 (machine.hostMap, or this machine\'s), and none was read' }]);
    const hostMap = normalizeE820(selectMap(host.result, host.source).entries).map;
    let carved: IdentityPlan;
    try {
      carved = planIdentity(hostMap, identityRequestFromPlan(plan.memory));
    } catch (err) {
      if (!(err instanceof IdentityPlanError)) throw err;
      throw new PlanError(planFile, [{ path: identityPlanPath(err.where.at ?? ''), message: `${err.detail} (host map: ${host.source})` }]);
    }
    identity = carved;
    const guest = carved.guests[0]!;
    ram = { ranges: unionRanges([...guest.lowMemory, ...guest.identity]) };
    e820 = [...guest.e820.entries];
    protection = guest.protection;
    for (const w of host.result.warnings ?? []) summary.push(`memory: warning: ${host.source}: ${w}`);
    if (host.live !== true) summary.push(`memory: ${host.source} is not this machine's own map (machine.hostMap): the guest's RAM is the monitor's own memory at the planned addresses, a rehearsal of the layout; a device without an IOMMU would DMA to the named host's addresses, not to it`);
    summary.push(
      `memory: identity layout from ${host.source}: ${guest.identity.map((r) => `[0x${r.start.toString(16)}, 0x${r.end.toString(16)})`).join(', ')}` +
        ` (host kernel needs ${carved.kernelParams.join(' ')})`,
    );
  } else {
    ram = ordinaryLayout(plan.memory.size);
    e820 = defaultE820(ram);
    summary.push(`memory: ${formatSize(plan.memory.size)} ordinary layout`);
  }

  const firmware = inputs.firmware;
  summary.push(`firmware: ${firmware.name}`);
  const b = inputs.boot;
  const linuxBoot: MachineConfig['linuxBoot'] = b === undefined ? undefined : { name: b.name, kernel: b.kernel, ...(b.initrd === undefined ? {} : { initrd: b.initrd }), cmdline: b.cmdline, optionRom: inputs.linuxbootRom };
  summary.push(b === undefined ? 'boot: from a disk, as the firmware finds one' : b.summary);
  const ecamBase = chooseEcamBase(plan, planFile);
  const pci = composePciConfig(plan, inputs, ram, ecamBase, summary);
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
    if (err instanceof PciWindowError) throw new PlanError(planFile, [{ path: ecamField(plan) ?? 'memory', message: err.message }]);
    throw err;
  }
  if (identity !== undefined && protection !== undefined) {
    protection = withBarWindows(identity.guests[0]!, protection, windows, [...ram.ranges, ecam]);
    const bars = protection.grants.filter((g) => g.kind === 'bar');
    summary.push(`memory: protection: BARs may be mapped only in ${bars.length === 0 ? 'no window (every BAR is refused)' : bars.map((g) => `[0x${g.start.toString(16)}, 0x${g.end.toString(16)})`).join(', ')} (the host bridge's windows less the host's memory)`);
  }
  summary.push(
    `pci: host bridge windows: I/O ${hexRange(windows.io!)}, 32-bit ${hexRange(windows.mem32)}, 64-bit ${hexRange(windows.mem64!)}; ECAM [0x${ecam.start.toString(16)}, 0x${ecam.end.toString(16)}) reserved in the E820`,
  );
  const hotplugSlots = hotplugSlotsOf(plan, pci.composed, devices.uses);
  const acpi = guestAcpi(plan, inputs.files, { vcpus: plan.machine.cpus, ecam: { base: ecamBase, buses: ECAM_BUSES }, pci: pci.composed, windows, ...(hotplugSlots === undefined ? {} : { hotplugSlots }) });
  summary.push(...acpi.summary);
  const config: MachineConfig = {
    cpus: plan.machine.cpus,
    ram,
    e820,
    firmware,
    ...(linuxBoot === undefined ? {} : { linuxBoot }),
    pci: { ...pci.config, windows },
    // Built and linked here, in the main thread: the vCPU thread gets plain fw_cfg files.
    fwCfgFiles: [...acpi.files, ...smbiosFiles(plan, ram, summary)],
    acpiPmBase: acpi.pm.base,
    s5SleepType: acpi.pm.s5SleepType,
    ...(acpi.hotplug === undefined ? {} : { hotplug: { ...acpi.hotplug, sciIrq: acpi.pm.sciIrq ?? DEFAULT_PM.sciIrq } }),
    ...(acpi.quietGpe === undefined ? {} : { quietGpe: acpi.quietGpe }),
    ...(protection === undefined ? {} : { protection: protection.grants }),
    // Only a carve of this machine's own map is real memory to take; a named map's is rehearsed.
    ...(identity === undefined || inputs.hostMap?.live !== true ? {} : { identityRam: identity.guests[0]!.identity }),
  };
  return { config, e820, protection, identity, pci: pci.composed, devices: devices.uses, acpi, windows, summary };
}

/**
 * The root slots ACPI PCI hot-plug declares (docs/hotplug.md): with `pci.hotplug`, or a
 * dynamic passthrough device, every root slot no function holds (slot 0 and the chipset's
 * aside) plus the slots of dynamic passthrough devices, which the guest may give back.
 */
function hotplugSlotsOf(plan: Plan, pci: ComposedPci, uses: readonly DeviceUse[]): number[] | undefined {
  const dynamic = new Set((plan.pci?.passthrough ?? []).map((p, i) => passthroughName(p, i)).filter((n) => uses.some((u) => u.device === n && u.allocation === 'dynamic')));
  if (plan.pci?.hotplug !== true && dynamic.size === 0) return undefined;
  if (plan.pci?.hotplug === false) return undefined;
  const root = pci.topology.rootBus(0, 0);
  if (root === undefined) return undefined;
  const slots: number[] = [];
  for (let device = 1; device < 32; device++) {
    const here = root.functions().filter((f) => f.device === device && !f.hidden);
    if (here.length === 0 || (here.every((f) => dynamic.has(f.id)) && here.some((f) => f.fn === 0))) slots.push(device);
  }
  return slots;
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
  const cpus = plan.machine.cpus;
  const structures = guestSmbiosStructures({ ...s, uuid, cpus, ram: ram.ranges });
  const { anchor, tables } = encodeSmbios(structures);
  const system = structures.find((x) => x.type === 1);
  summary.push(`SMBIOS: ${system?.manufacturer} ${system?.product}, ${cpus} vCPU${cpus === 1 ? '' : 's'}, ${formatSize(ramTotal(ram))} of memory (${tables.length} bytes)`);
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

/** The plan field that placed the ECAM window; undefined when it sits at the monitor's default place. */
function ecamField(plan: Plan): string | undefined {
  if (plan.machine.ecamBase !== undefined) return 'machine.ecamBase';
  const gen = plan.acpi?.generate?.ecam;
  return gen !== undefined && gen !== false ? 'acpi.generate.ecam.base' : undefined;
}

/** Guest RAM over the ECAM window: the field that placed the window is to blame, else the memory that grew into it. */
function ecamClash(plan: Plan, ram: { start: bigint; end: bigint }, base: bigint, end: bigint): PlanProblem {
  const window = `the ECAM window [0x${base.toString(16)}, 0x${end.toString(16)})`;
  const field = ecamField(plan);
  if (field !== undefined) return { path: field, message: `${window} overlaps guest RAM [0x${ram.start.toString(16)}, 0x${ram.end.toString(16)})` };
  const above = ((ram.end + 0xf_ffffn) >> 20n) << 20n;
  const fix = above + (end - base) <= PCI_MEM32_END ? `set machine.ecamBase to 0x${above.toString(16)} (above the RAM) or give less memory` : 'give less memory';
  return {
    path: plan.memory.layout === 'identity' ? 'memory' : 'memory.size',
    message: `the guest's RAM [0x${ram.start.toString(16)}, 0x${ram.end.toString(16)}) runs over ${window}, where the monitor puts it unless told: ${fix}`,
  };
}

/** The host capture the bus starts from, with only the functions the plan keeps. */
function hostCapture(plan: Plan, inputs: PlatformInputs): Capture | undefined {
  const planFile = inputs.planFile;
  const h = plan.machine.hostPci;
  if (h === undefined) return undefined;
  const capture = inputs.files.capture('machine.hostPci.capture').capture;
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
function composePciConfig(plan: Plan, inputs: PlatformInputs, ram: RamLayout, ecamBase: bigint, summary: string[]): { config: PciMachineConfig; composed: ComposedPci } {
  const planFile = inputs.planFile;
  const m = plan.machine;
  const ecamEnd = ecamBase + BigInt(ECAM_BUSES) * 0x10_0000n;
  const problems: PlanProblem[] = [];
  const clash = ram.ranges.find((r) => ecamBase < r.end && r.start < ecamEnd);
  if (clash !== undefined) problems.push(ecamClash(plan, clash, ecamBase, ecamEnd));
  const roms = m.roms.map((r, i) => ({ device: r.device, name: r.file, bytes: inputs.files.bytes(`machine.roms[${i}].file`).bytes }));
  const base = hostCapture(plan, inputs);
  const planned = plan.pci === undefined ? undefined : pciComposeInput(plan.pci, { planFile, files: inputs.files });
  const pluginEntries = plan.pci?.plugins ?? [];
  if (pluginEntries.length > 0 && inputs.plugins === undefined) {
    problems.push({ path: 'pci.plugins', message: 'plug-ins are loaded by hvmpt run (and the plug-in layer\'s preparePlan); this command composes without them' });
  }
  const plugins = placePlugins(inputs.plugins ?? []);
  const taken = rootSlotsTaken(base, planned);
  for (const p of inputs.plugins ?? []) if (p.at.kind === 'root' && p.at.segment === 0 && p.at.bus === 0) taken.add(p.at.device);
  const pt = placePassthrough(plan.pci, inputs, taken);
  problems.push(...pt.problems);
  if (problems.length > 0) throw new PlanError(planFile, problems);
  const withPlugins = planned === undefined ? undefined : { ...planned, emulated: [...(planned.emulated ?? []), ...plugins.emulated], real: [...(planned.real ?? []), ...plugins.real] };
  const placedInput = withPlugins === undefined ? undefined : pt.placed.length === 0 ? withPlugins : { ...withPlugins, real: [...(withPlugins.real ?? []), ...pt.placed.map((p) => p.real)] };
  const input = placedInput === undefined ? undefined : withUioPolicies(placedInput, plan);
  const ptRoms = pt.placed.flatMap((p) => (p.rom === undefined ? [] : [p.rom]));
  const attachments = [...pt.placed.flatMap((p) => (p.attachment === undefined ? [] : [p.attachment])), ...plugins.live];
  const config: PciMachineConfig = {
    planFile,
    ...(base === undefined ? {} : { base }),
    ...(input === undefined ? {} : { input }),
    ecamBase,
    roms: [...roms, ...ptRoms],
    ...(attachments.length === 0 ? {} : { passthrough: attachments }),
    ...(plugins.attachments.length === 0 ? {} : { plugins: plugins.attachments }),
  };
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
  for (const p of pt.placed) summary.push(`pci: passthrough ${p.summary}`);
  for (const p of inputs.plugins ?? []) summary.push(`pci: plug-in ${p.summary}`);
  return { config, composed };
}

/**
 * The protection map with the guest's BAR windows granted: the host bridge's 32- and 64-bit
 * windows, less everything the guest must never map (host RAM and the host's reserved ranges,
 * the low MiB) and less the guest's own RAM and ECAM. A BAR the guest moves anywhere else is
 * refused by the monitor and left disabled.
 */
function withBarWindows(guest: GuestLayout, protection: ProtectionMap, windows: GuestWindows, own: ReadonlyArray<{ readonly start: bigint; readonly end: bigint }>): ProtectionMap {
  const page = 0x1000n;
  const spans = [windows.mem32, windows.mem64].flatMap((w) => (w === undefined ? [] : [{ start: w.base, end: w.limit + 1n }]));
  const pieces = subtractRanges(spans, [...guest.forbidden, ...own])
    .map((r) => ({ start: ((r.start + page - 1n) / page) * page, end: (r.end / page) * page }))
    .filter((r) => r.end > r.start);
  const bars: Grant[] = pieces.map((r, i) => ({ ...r, kind: 'bar', access: 'rw', name: `PCI window piece ${i}` }));
  return ProtectionMap.build([...protection.grants, ...bars], guest.forbidden);
}

/**
 * Without an IOMMU a device's MSI write would land on the host's own LAPIC, and no host driver
 * owns its vectors: every uio function's MSI and MSI-X capabilities are unlinked from the chain
 * the guest walks, in both threads' compositions alike.
 */
function withUioPolicies<T extends { readonly functions?: readonly FunctionPolicy[] }>(input: T, plan: Plan): T {
  const uio = (plan.pci?.passthrough ?? []).flatMap((e, i) => (e.backend === 'uio' ? [{ name: passthroughName(e, i), path: `pci.passthrough[${i}].backend` }] : []));
  if (uio.length === 0) return input;
  const functions = [...(input.functions ?? [])];
  for (const u of uio) {
    const i = functions.findIndex((f) => f.target === u.name);
    const have = i < 0 ? undefined : functions[i]!;
    const policy: FunctionPolicy = { ...(have ?? { target: u.name, path: u.path }), capabilities: hidingAlso(have?.capabilities ?? {}, MESSAGE_SIGNALLED) };
    if (i < 0) functions.push(policy);
    else functions[i] = policy;
  }
  return { ...input, functions };
}

/** Device numbers on root bus 00 that something other than a passthrough device takes. */
function rootSlotsTaken(base: Capture | undefined, planned: ReturnType<typeof pciComposeInput> | undefined): Set<number> {
  // The monitor's i440FX and PIIX3.
  const taken = new Set([0, 1]);
  for (const f of base?.functions ?? []) if (f.bdf.segment === 0 && f.bdf.bus === 0) taken.add(f.bdf.device);
  for (const item of [...(planned?.bridges ?? []), ...(planned?.emulated ?? []), ...(planned?.real ?? [])]) {
    if (item.at.kind === 'root' && item.at.segment === 0 && item.at.bus === 0) taken.add(item.at.device);
  }
  return taken;
}
