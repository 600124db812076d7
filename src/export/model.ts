/**
 * The shared mapping every exporter starts from: the composed platform (src/platform) read into
 * target-neutral parts — the guest's functions with their kinds, the pass-through entries with
 * their guest slots and, given host facts, their host functions; the ACPI tables the plan adds;
 * SMBIOS strings; the boot target; the memory layout; the host preparation. Each target module
 * then maps what it can and notes the rest.
 */
import { formatBdf, type Bdf } from '../hw/pci/address.js';
import { guestSmbiosStructures, uuidFromText, type Chassis, type SystemInfo } from '../hw/smbios/index.js';
import type { HostFunction } from '../hw/pci/host-function.js';
import { hostIds, type HostFacts, type HostFinding } from '../host/pci/host-facts.js';
import { collectionAnalysis } from '../host/facts/host-facts.js';
import type { Analysis } from '../hw/facts/analyze.js';
import { ramTotal } from '../hw/mem/ram-layout.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { PlanError } from '../plan/load.js';
import type { Plan } from '../plan/schema.js';
import type { ComposedMachine } from '../platform/compose.js';
import { passthroughInfo, platformFunctions, type PassthroughInfo, type PlatformFunction } from '../platform/functions.js';
import type { DeviceUse } from '../platform/device-use.js';
import type { GuestAcpiTable } from '../platform/guest-acpi.js';
import type { PlatformInputs } from '../platform/inputs.js';
import type { ExportNotes } from './notes.js';

/** A pass-through entry where the composed platform put it. */
export interface PassthroughPlacement extends PassthroughInfo {
  readonly guest: Bdf;
  /** The bridge it sits behind (a plan name or a captured address), or undefined on a root bus. */
  readonly behind: string | undefined;
  /** `plan`: the entry's `at`; `default`: the first free root slot. */
  readonly rule: 'plan' | 'default';
}

export interface ExportPassthrough {
  readonly placement: PassthroughPlacement;
  /** The host function composition described it from (this machine's sysfs, or --host). */
  readonly host: HostFunction;
  readonly hostBdf: Bdf;
  /** vendor:device on the host (the device's own, whatever IDs the guest is shown). */
  readonly hostIds: { readonly vendorId: number; readonly deviceId: number };
  /** `rom: FILE`, resolved against the plan's directory. */
  readonly romFile: string | undefined;
  /** Its category as the platform records it (the plan's `use`, else dedicated and exclusive). */
  readonly use: Pick<DeviceUse, 'allocation' | 'sharing'>;
}

/** What runs after the firmware: a Linux boot-protocol image (a kernel, or GRUB behind lnxboot.img), its initrd and command line. */
export interface ExportBoot {
  readonly kind: Plan['machine']['boot']['kind'];
  /** A file the plan names (its resolved path), or one hvmpt builds (a name in `built`). */
  readonly kernel: BootFile;
  readonly initrd: BootFile | undefined;
  readonly cmdline: string;
  /** What hvmpt builds for the boot (a GRUB image; the probe guest's kernel and initrd): the exporter writes them to the files directory. */
  readonly built: readonly ExportFile[];
  readonly summary: string;
}

export type BootFile = { readonly path: string } | { readonly built: string };

/** Where a boot file is for the target: its path, or the built file's in the files directory. */
export function bootPath(f: BootFile, filesDir: string): string {
  return 'path' in f ? f.path : `${filesDir.replace(/\/+$/, '')}/${f.built}`;
}

export interface ExportModel {
  readonly name: string;
  readonly planFile: string;
  readonly plan: Plan;
  readonly composed: ComposedMachine;
  /** Every function, hidden ones and pass-through entries included, in guest address order. */
  readonly functions: readonly PlatformFunction[];
  readonly passthrough: readonly ExportPassthrough[];
  /** Tables the plan adds to generated ones (SSDTs, exposed host tables), or, with `acpi.tables: host`, every host table. */
  readonly addedTables: readonly AddedTable[];
  /** hvmpt's own generated tables (a target makes its own). */
  readonly generatedTables: readonly GuestAcpiTable[];
  /** System and chassis strings, or false when the plan gives the firmware no SMBIOS. */
  readonly smbios: { readonly system: SystemInfo; readonly chassis: Chassis } | false;
  readonly boot: ExportBoot;
  /** machine.roms by device name: the file, resolved, and its size. */
  readonly deviceRoms: ReadonlyMap<string, { readonly path: string; readonly size: bigint }>;
  /** machine.firmware, resolved; undefined for the default (Debian's SeaBIOS, which every target also uses). */
  readonly firmware: string | undefined;
  readonly host: HostFacts | undefined;
  /** With a collection for the host (`--host <archive>`): its analysis for the plan's devices and the findings from it. */
  readonly hostAnalysis: { readonly analysis: Analysis; readonly findings: readonly HostFinding[] } | undefined;
}

export interface AddedTable extends GuestAcpiTable {
  /** The plan path that adds it (`acpi.generate.ssdts[0]`, `acpi.expose[1]`, `acpi.tables`). */
  readonly path: string;
  /** Its OEM table ID without padding, for messages. */
  readonly name: string;
}

/** Which plan path put a table the generated set does not have into the guest's. */
function tablePath(plan: Plan, t: GuestAcpiTable, source: 'generated' | 'host'): string {
  if (t.from.startsWith('acpi.')) return t.from;
  if (source === 'host') return 'acpi.tables';
  const trim = (x: string): string => x.replace(/[\s\0]+$/, '');
  const j = (plan.acpi?.expose ?? []).findIndex((sel) => sel.signature === t.signature && (sel.oemId === undefined || trim(sel.oemId) === trim(t.oemId)) && (sel.oemTableId === undefined || trim(sel.oemTableId) === trim(t.oemTableId)));
  return j >= 0 ? `acpi.expose[${j}]` : 'acpi.expose';
}

export interface ExportFile {
  /** A name inside the export's files directory. */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** For the user: what it is. */
  readonly what: string;
}

export interface ExportResult {
  readonly text: string;
  readonly files: readonly ExportFile[];
}

export interface ExportOptions {
  /** How the main text names the files directory (absolute, or relative to where the target reads it). */
  readonly filesDir: string;
  /** `sh` for QEMU: a runnable script instead of one argument per line. */
  readonly format: 'args' | 'sh' | undefined;
}

export interface Exporter {
  readonly target: string;
  readonly summary: string;
  run(model: ExportModel, notes: ExportNotes, options: ExportOptions): ExportResult;
}

function smbiosOf(plan: Plan, composed: ComposedMachine): ExportModel['smbios'] {
  const s = plan.machine.smbios;
  if (s === false) return false;
  const structures = guestSmbiosStructures({ ...s, uuid: s?.uuid === undefined ? undefined : uuidFromText(s.uuid), cpus: plan.machine.cpus, ram: composed.config.ram.ranges });
  const system = structures.find((x): x is SystemInfo => x.type === 1)!;
  const chassis = structures.find((x): x is Chassis => x.type === 3)!;
  return { system, chassis };
}

function bootOf(plan: Plan, inputs: PlatformInputs): ExportBoot {
  const b = plan.machine.boot;
  const img = inputs.boot;
  // A disk boot (a plug-in's disk that SeaBIOS boots from) has no kernel to hand a target.
  if (img === undefined) {
    throw new PlanError(inputs.files.planFile, [{ path: 'machine.boot.kind', message: `'${b.kind}' boots from a plug-in's disk, which no export target can carry yet: export a plan with a kernel boot` }]);
  }
  if (b.kind === 'linux') {
    return {
      kind: b.kind,
      kernel: { path: inputs.files.bytes('machine.boot.kernel').path },
      initrd: b.initrd === undefined ? undefined : { path: inputs.files.bytes('machine.boot.initrd').path },
      cmdline: b.cmdline,
      built: [],
      summary: img.summary,
    };
  }
  const kernel: ExportFile = { name: `${b.kind}.kernel`, bytes: img.kernel, what: img.summary };
  const initrd: ExportFile | undefined = img.initrd === undefined ? undefined : { name: `${b.kind}.initrd`, bytes: img.initrd, what: `${img.summary} (initrd)` };
  return {
    kind: b.kind,
    kernel: { built: kernel.name },
    initrd: initrd === undefined ? undefined : { built: initrd.name },
    cmdline: img.cmdline,
    built: initrd === undefined ? [kernel] : [kernel, initrd],
    summary: img.summary,
  };
}

export function exportModel(plan: Plan, composed: ComposedMachine, inputs: PlatformInputs, host: HostFacts | undefined): ExportModel {
  const infos = passthroughInfo(plan, inputs);
  const functions = platformFunctions(composed.pci, infos);
  const passthrough = functions.flatMap((f): ExportPassthrough[] => {
    const p = f.passthrough;
    if (p === undefined) return [];
    return [
      {
        placement: { ...p, guest: f.bdf, behind: f.parent, rule: p.entry.at === undefined ? 'default' : 'plan' },
        host: p.host,
        hostBdf: p.host.address,
        hostIds: hostIds(p.host),
        romFile: p.entry.rom.kind === 'file' ? inputs.files.bytes(`${p.path}.rom`).path : undefined,
        use: composed.devices.find((d) => d.device === p.name) ?? { allocation: 'dedicated', sharing: 'exclusive' },
      },
    ];
  }).sort((a, b) => a.placement.index - b.placement.index);
  const tables = composed.acpi.tables;
  return {
    name: plan.name ?? inputs.planFile.replace(/^.*\//, '').replace(/\.(ya?ml|json)$/i, ''),
    planFile: inputs.planFile,
    plan,
    composed,
    functions,
    passthrough,
    addedTables: tables.filter((t) => t.origin !== 'generated').map((t) => ({ ...t, path: tablePath(plan, t, composed.acpi.source), name: `${t.signature} ${t.oemTableId.replace(/[\s\0]+$/, '')}` })),
    generatedTables: tables.filter((t) => t.origin === 'generated'),
    smbios: smbiosOf(plan, composed),
    boot: bootOf(plan, inputs),
    deviceRoms: new Map(
      plan.machine.roms.map((r, i) => {
        const f = inputs.files.bytes(`machine.roms[${i}].file`);
        return [r.device, { path: f.path, size: BigInt(f.bytes.length) }] as const;
      }),
    ),
    firmware: plan.machine.firmware === undefined ? undefined : inputs.firmware.name,
    host,
    hostAnalysis: host?.collection === undefined ? undefined : collectionAnalysis(host.collection, passthrough.map((p) => sysfsName(p.hostBdf)), composed.windows, ramTotal(composed.config.ram)),
  };
}

// ---------------------------------------------------------------- helpers the targets share

export const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

/** `VVVV:DDDD`, as lspci -n, KubeVirt and vfio-pci.ids write it. */
export function idPair(ids: { readonly vendorId: number; readonly deviceId: number }): string {
  return `${hex4(ids.vendorId)}:${hex4(ids.deviceId)}`;
}

/** The SMBIOS system strings the plan sets (or hvmpt's defaults), by the names QEMU, libvirt and KubeVirt share; empty ones left out. */
export function systemStrings(system: SystemInfo): Array<[key: 'manufacturer' | 'product' | 'version' | 'serial' | 'family', value: string]> {
  const all: Array<['manufacturer' | 'product' | 'version' | 'serial' | 'family', string]> = [
    ['manufacturer', system.manufacturer],
    ['product', system.product],
    ['version', system.version],
    ['serial', system.serial],
    ['family', system.family],
  ];
  return all.filter(([, v]) => v !== '');
}

/** A UUID's text form, or undefined for the all-zero "not set" UUID. */
export function uuidText(bytes: Uint8Array): string | undefined {
  if (bytes.every((b) => b === 0)) return undefined;
  const x = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A short name for a function in notes: `nic (00:03.0)`. */
export function named(f: PlatformFunction): string {
  return `${f.id} (${formatBdf(f.bdf)})`;
}

/** The functions a target must carry (the guest reaches them) that are neither the chipset nor passed through. */
export function busDevices(model: ExportModel): PlatformFunction[] {
  return model.functions.filter((f) => !f.hidden && f.kind !== 'chipset' && f.kind !== 'passthrough');
}

/** The plan path that put a function on the bus: its own for plan devices, machine.hostPci for a host capture's. */
export function planPathOf(model: ExportModel, f: PlatformFunction): string {
  if (f.kind !== 'captured') return f.source;
  const i = model.plan.pci?.real?.findIndex((r) => r.name === f.id) ?? -1;
  return i >= 0 ? `pci.real[${i}]` : 'machine.hostPci';
}

/** Settings of acpi.generate that only describe hvmpt's own tables (SSDTs are carried, or noted, with the tables). */
export function noteGenerateSettings(model: ExportModel, notes: ExportNotes, reason: string): void {
  const g = model.plan.acpi?.generate;
  if (g === undefined) return;
  for (const [k, v] of Object.entries(g)) if (k !== 'ssdts' && k !== 'cpus' && v !== undefined) notes.cannot(`acpi.generate.${k}`, reason);
}

type MachineSetting = 'firmware' | 'roms' | 'serial' | 'firmwareLog' | 'timeout';

/** Machine settings a target has no form for: each one the plan sets is a note, with the target's reason. */
export function noteUnsupportedMachine(model: ExportModel, notes: ExportNotes, reasons: Partial<Record<MachineSetting, string>>): void {
  const m = model.plan.machine;
  const set: Record<MachineSetting, boolean> = { firmware: m.firmware !== undefined, roms: m.roms.length > 0, serial: m.serial !== 'stdout', firmwareLog: m.firmwareLog !== undefined, timeout: m.timeout !== undefined };
  for (const [k, why] of Object.entries(reasons) as Array<[MachineSetting, string]>) if (set[k]) notes.cannot(`machine.${k}`, why);
}

/**
 * Notes shared by targets that cannot replay a captured config space: each captured function
 * the guest would see (the plan's `machine.hostPci` and `pci.real`) is one note.
 */
export function noteCaptured(model: ExportModel, notes: ExportNotes, target: string): void {
  for (const f of busDevices(model)) {
    if (f.kind !== 'captured') continue;
    notes.cannot(planPathOf(model, f), `${named(f)} is replayed from a captured config space; ${target} has no device that replays a capture (pass the real device through with pci.passthrough instead)`);
  }
}
