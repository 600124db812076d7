/**
 * The typed model of a host-facts collection: every file `hvmpt collect` gathered, parsed with
 * hvmpt's own codecs (PCI config space and sysfs resources through the PCI layer, the firmware
 * memory map through the E820 layer, ACPI tables through the table codec) and the /proc parsers
 * beside this file. Pure: the files come in as bytes.
 *
 * A file that is malformed is an error naming the archive and the file inside it; what the
 * collector could not read (without root, or not on this machine) is not an error: the model
 * says it is missing, and `unreadable` lists what the collector noted.
 */
import { HvmptError } from '../../errors.js';
import type { TableImage } from '../acpi/dump/image.js';
import { decodeTableOrRaw, splitTableBytes, type AcpiTable } from '../acpi/tables/table.js';
import { normalizeE820, type E820Map } from '../mem/e820.js';
import { parseSysfsMemmap } from '../mem/e820-parse.js';
import { compareBdf, formatBdf, parseBdf, type Bdf } from '../pci/address.js';
import type { Capture, CapturedFunction } from '../pci/capture.js';
import { CLASS_PROG, DEVICE_ID, REVISION_ID, VENDOR_ID } from '../pci/regs.js';
import { readLE } from '../pci/endian.js';
import { parseConfigBinary, parseResourceFile } from '../pci/sysfs-format.js';
import { FACTS_FORMAT, FactsError, FactsFiles } from './files.js';
import {
  moduleNames,
  parseCmdline,
  parseCpuinfo,
  parseInterrupts,
  parseIpv4Routes,
  parseIpv6Routes,
  parseKernelConfig,
  parseModules,
  parseMountinfo,
  parseReservedRegions,
  type CpuFacts,
  type DefaultRoute,
  type Fail,
  type InterruptRow,
  type KernelParam,
  type Mount,
  type ReservedRegion,
} from './proc.js';

export interface CollectorFacts {
  readonly format: number;
  readonly date: string | undefined;
  /** The collector's user ID; 0 is root, who may read everything. */
  readonly uid: number | undefined;
  readonly root: boolean;
  /** Whether ROM contents were asked for (`--rom`). */
  readonly rom: boolean;
  readonly machine: string | undefined;
}

/** Something the collector could not read: `denied` (permissions), `absent` (not on this machine), `error`. */
export interface Unreadable {
  readonly path: string;
  readonly why: string;
}

export interface KernelFacts {
  readonly release: string | undefined;
  readonly version: string | undefined;
  readonly cmdline: readonly KernelParam[] | undefined;
  /** CONFIG_ options that decide the back-ends (VFIO, UIO, IOMMU, DEVMEM), when the build config was readable. */
  readonly config: ReadonlyMap<string, string> | undefined;
  readonly configSource: string | undefined;
  readonly modulesLoaded: ReadonlySet<string> | undefined;
  readonly modulesBuiltin: ReadonlySet<string> | undefined;
  readonly modulesAvailable: ReadonlySet<string> | undefined;
  /** vfio's enable_unsafe_noiommu_mode, when vfio is loaded with that parameter. */
  readonly noiommuMode: boolean | undefined;
}

export interface SysfsResource {
  readonly start: bigint;
  readonly end: bigint;
  readonly flags: bigint;
}

/** Everything the collection says about one PCI function. */
export interface PciFunctionFacts {
  readonly bdf: Bdf;
  /** Its folder in the archive (`sys/bus/pci/devices/0000:00:02.0`). */
  readonly dir: string;
  /** The config space as read: 64 bytes for a non-root collector; undefined when unreadable. */
  readonly config: CapturedFunction | undefined;
  readonly vendorId: number | undefined;
  readonly deviceId: number | undefined;
  /** 24 bits: class, subclass, programming interface. */
  readonly classCode: number | undefined;
  readonly revision: number | undefined;
  readonly subsystemVendorId: number | undefined;
  readonly subsystemId: number | undefined;
  readonly driver: string | undefined;
  readonly iommuGroup: number | undefined;
  /** `reset_method` (kernels from 5.15): the methods in the order the kernel tries them; [] when the attribute is absent on such a kernel. */
  readonly resetMethods: readonly string[] | undefined;
  /** The `reset` attribute is there (the kernel can reset the function somehow). */
  readonly resetAttribute: boolean;
  readonly numaNode: number | undefined;
  /** `enable`: how many drivers or users hold the function enabled. */
  readonly enableCount: number | undefined;
  /** The Linux IRQ number the function's INTx (or first MSI) uses. */
  readonly irq: number | undefined;
  /** MSI/MSI-X vectors in use: Linux IRQ and mode. */
  readonly msiIrqs: ReadonlyArray<{ readonly irq: number; readonly mode: string }> | undefined;
  readonly driverOverride: string | undefined;
  readonly link: { readonly speed?: string; readonly width?: string; readonly maxSpeed?: string; readonly maxWidth?: string } | undefined;
  /** Bytes of the expansion ROM the kernel exposes (a ROM BAR, or a VGA device's shadowed ROM). */
  readonly romSize: number | undefined;
  /** The ROM's contents (`hvmpt collect --rom`). */
  readonly rom: Uint8Array | undefined;
  readonly bootVga: boolean | undefined;
  readonly sysfsPath: string | undefined;
  /** The ACPI object describing it (`\_SB_.PCI0.S10`), from its firmware_node. */
  readonly acpiPath: string | undefined;
  /** A virtual function's parent. */
  readonly physfn: string | undefined;
  readonly sriov: { readonly total: number; readonly enabled: number } | undefined;
  /** sysfs `resource` lines 0-6 (BARs, ROM). */
  readonly resources: readonly SysfsResource[] | undefined;
  readonly label: string | undefined;
}

export interface AcpiTableFacts {
  /** The file's name below /sys/firmware/acpi/tables: `DSDT`, `SSDT1`, `dynamic/SSDT3`. */
  readonly name: string;
  readonly signature: string;
  readonly table: AcpiTable;
  /** The typed decode failed and the table is carried as raw bytes. */
  readonly problem: string | undefined;
}

export interface IommuGroupFacts {
  /** `DMA`, `DMA-FQ`, `identity`, `blocked`… */
  readonly type: string | undefined;
  readonly reserved: readonly ReservedRegion[];
}

export interface BlockDevice {
  readonly name: string;
  /** `major:minor`. */
  readonly dev: string | undefined;
  readonly path: string | undefined;
  /** The devices a device-mapper or md device is made of. */
  readonly slaves: readonly string[];
  /** A device-mapper device's name (`/dev/mapper/NAME`). */
  readonly dmName: string | undefined;
}

export interface HostSnapshot {
  readonly source: string;
  readonly collector: CollectorFacts;
  readonly unreadable: readonly Unreadable[];
  readonly kernel: KernelFacts;
  readonly cpu: CpuFacts | undefined;
  readonly pci: {
    readonly functions: readonly PciFunctionFacts[];
    /** The functions whose config space was read, for the PCI layer (BAR sizes from `resource`). */
    readonly capture: Capture | undefined;
  };
  readonly iommu: {
    /** /sys/class/iommu: the remapping units the kernel drives (`dmar0`, `ivhd0`). */
    readonly units: ReadonlyArray<{ readonly name: string; readonly path: string }>;
    /** /sys/kernel/iommu_groups; undefined when the folder was not there (no IOMMU in use). */
    readonly groups: ReadonlyMap<number, IommuGroupFacts> | undefined;
  };
  readonly acpi: {
    /** undefined when the tables were not collected (not root, or no ACPI). */
    readonly tables: readonly AcpiTableFacts[] | undefined;
    /** The same tables as images, for the world-view and namespace layers. */
    readonly images: readonly TableImage[];
  };
  readonly memory: {
    /** /sys/firmware/memmap, the firmware's E820 as the kernel received it. */
    readonly memmap: E820Map | undefined;
    readonly iomem: string | undefined;
    readonly ioports: string | undefined;
  };
  readonly interrupts: readonly InterruptRow[] | undefined;
  readonly host: {
    readonly mounts: readonly Mount[] | undefined;
    /** /proc/swaps: the swap devices and files. */
    readonly swaps: readonly string[] | undefined;
    readonly blocks: readonly BlockDevice[];
    readonly nets: ReadonlyArray<{ readonly name: string; readonly path: string | undefined; readonly lower: readonly string[] }>;
    /** virtio 9p shares: the tag a mount names, and where the device sits. */
    readonly shares: ReadonlyArray<{ readonly name: string; readonly path: string | undefined; readonly tag: string }>;
    /** Framebuffers and DRM cards (`fb0`, `card0`) and where each sits. */
    readonly displays: ReadonlyArray<{ readonly name: string; readonly path: string | undefined }>;
    /** /sys/class/tty/console/active: the kernel's consoles (`tty0 ttyS0`), each with its device path if it has one. */
    readonly consoles: ReadonlyArray<{ readonly name: string; readonly device: string | undefined }>;
    readonly vtconsoles: ReadonlyArray<{ readonly name: string; readonly bound: boolean }>;
    readonly routes: readonly DefaultRoute[] | undefined;
  };
}

const PCI_DIR = 'sys/bus/pci/devices';
const TABLES_DIR = 'sys/firmware/acpi/tables';

function failFor(files: FactsFiles, path: string): Fail {
  return (line, message) => {
    throw files.error(path, message, line);
  };
}

/** Runs a codec on one file and turns its typed error into one that names the file inside the archive. */
function within<T>(files: FactsFiles, path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof HvmptError && !(err instanceof FactsError)) throw files.error(path, err.detail, lineOf(err));
    throw err;
  }
}

function lineOf(err: HvmptError): number | undefined {
  const m = /line (\d+)/.exec(err.where.at ?? '');
  return m === null ? undefined : Number(m[1]);
}

function parsed<T>(files: FactsFiles, path: string, parse: (text: string, fail: Fail) => T): T | undefined {
  const text = files.text(path);
  return text === undefined ? undefined : parse(text, failFor(files, path));
}

function hexAttr(files: FactsFiles, path: string): number | undefined {
  const v = files.value(path)?.trim();
  if (v === undefined || v === '') return undefined;
  if (!/^0x[0-9a-f]+$/i.test(v)) throw files.error(path, `expected a hex number like 0x8086, got ${JSON.stringify(v.slice(0, 40))}`);
  return Number.parseInt(v, 16);
}

// ---------------------------------------------------------------- the collection as a whole

function readCollector(files: FactsFiles): CollectorFacts {
  const path = 'collector';
  const text = files.text(path);
  if (text === undefined) throw files.error(path, 'missing: this is not an archive `hvmpt collect` wrote (no hvmpt-facts/collector)');
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const format = Number(kv.get('format'));
  if (!Number.isInteger(format)) throw files.error(path, 'no format= line');
  if (format !== FACTS_FORMAT) throw files.error(path, `collection format ${format}; this hvmpt reads format ${FACTS_FORMAT}`);
  const uid = kv.get('uid') !== undefined && /^\d+$/.test(kv.get('uid')!) ? Number(kv.get('uid')) : undefined;
  return { format, date: kv.get('date') || undefined, uid, root: uid === 0, rom: kv.get('rom') === '1', machine: kv.get('machine') || undefined };
}

/** Every file the MANIFEST names must be in the archive: a cut or edited archive is caught here. */
function checkManifest(files: FactsFiles): void {
  const text = files.text('MANIFEST');
  if (text === undefined) throw files.error('MANIFEST', 'missing: the archive is incomplete (the collector writes its list of files last)');
  const prefix = 'hvmpt-facts/';
  const missing = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (l.startsWith(prefix) ? l.slice(prefix.length) : l))
    .filter((p) => !files.has(p));
  if (missing.length > 0) {
    throw files.error(missing[0]!, `missing from the archive, though the MANIFEST lists it${missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1, 4).map(FactsFiles.label).join(', ')}${missing.length > 4 ? ', …' : ''})` : ''}: the archive is incomplete`);
  }
}

function readUnreadable(files: FactsFiles): Unreadable[] {
  const text = files.text('unreadable') ?? '';
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      const tab = l.lastIndexOf('\t');
      if (tab <= 0) throw files.error('unreadable', 'expected "PATH<tab>REASON"', i + 1);
      return { path: l.slice(0, tab), why: l.slice(tab + 1) };
    });
}

function readKernel(files: FactsFiles): KernelFacts {
  const cmd = files.value('proc/cmdline');
  const config = files.text('kernel/config');
  const loaded = files.text('proc/modules');
  const builtin = files.text('kernel/modules.builtin');
  const available = files.text('kernel/modules.available');
  const noiommu = files.value('sys/module/vfio/parameters/enable_unsafe_noiommu_mode');
  return {
    release: files.value('kernel/release')?.trim() || undefined,
    version: files.value('proc/version')?.trim() || undefined,
    cmdline: cmd === undefined ? undefined : parseCmdline(cmd),
    config: config === undefined ? undefined : parseKernelConfig(config),
    configSource: files.value('kernel/config-source')?.trim() || undefined,
    modulesLoaded: loaded === undefined ? undefined : parseModules(loaded),
    modulesBuiltin: builtin === undefined ? undefined : moduleNames(builtin),
    modulesAvailable: available === undefined ? undefined : moduleNames(available),
    noiommuMode: noiommu === undefined ? undefined : noiommu.trim() === 'Y' || noiommu.trim() === '1',
  };
}

// ---------------------------------------------------------------- PCI

function readResources(files: FactsFiles, path: string): SysfsResource[] | undefined {
  const text = files.text(path);
  if (text === undefined) return undefined;
  within(files, path, () => parseResourceFile(text, path)); // validates every line
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 7)
    .map((l) => {
      const [s, e, f] = l.trim().split(/\s+/);
      return { start: BigInt(s!), end: BigInt(e!), flags: BigInt(f!) };
    });
}

function readPciFunction(files: FactsFiles, name: string, kernelHasResetMethod: boolean): PciFunctionFacts {
  const dir = `${PCI_DIR}/${name}`;
  const bdf = parseBdf(name);
  if (bdf === undefined) throw files.error(dir, `"${name}" is not a PCI address like 0000:00:1f.3`);
  const a = (attr: string): string => `${dir}/${attr}`;
  const configBytes = files.bytes(a('config'));
  let config: CapturedFunction | undefined;
  if (configBytes !== undefined) {
    const bytes = within(files, a('config'), () => parseConfigBinary(configBytes, a('config')));
    const text = files.text(a('resource'));
    const barSizes = text === undefined ? new Map<number, bigint>() : within(files, a('resource'), () => parseResourceFile(text, a('resource')));
    config = { bdf, bytes, barSizes, description: 'sysfs', at: FactsFiles.label(dir) };
  }
  const fromConfig = (offset: number, size: 1 | 2 | 4): number | undefined => (config === undefined ? undefined : readLE(config.bytes, offset, size));
  const resetText = files.value(a('reset_method'));
  const msi = files.text(a('msi_irqs'));
  const link = {
    ...(files.value(a('current_link_speed')) === undefined ? {} : { speed: files.value(a('current_link_speed'))!.trim() }),
    ...(files.value(a('current_link_width')) === undefined ? {} : { width: files.value(a('current_link_width'))!.trim() }),
    ...(files.value(a('max_link_speed')) === undefined ? {} : { maxSpeed: files.value(a('max_link_speed'))!.trim() }),
    ...(files.value(a('max_link_width')) === undefined ? {} : { maxWidth: files.value(a('max_link_width'))!.trim() }),
  };
  const override = files.value(a('driver_override'))?.trim();
  const total = files.number(a('sriov_totalvfs'));
  const classAttr = hexAttr(files, a('class'));
  const classFromConfig = config === undefined ? undefined : (readLE(config.bytes, CLASS_PROG, 1) | (readLE(config.bytes, CLASS_PROG + 1, 2) << 8)) >>> 0;
  const bootVga = files.value(a('boot_vga'));
  const romSize = files.number(a('rom_size'));
  return {
    bdf,
    dir,
    config,
    vendorId: hexAttr(files, a('vendor')) ?? fromConfig(VENDOR_ID, 2),
    deviceId: hexAttr(files, a('device')) ?? fromConfig(DEVICE_ID, 2),
    classCode: classAttr ?? classFromConfig,
    revision: hexAttr(files, a('revision')) ?? fromConfig(REVISION_ID, 1),
    subsystemVendorId: hexAttr(files, a('subsystem_vendor')),
    subsystemId: hexAttr(files, a('subsystem_device')),
    driver: files.value(a('driver'))?.trim() || undefined,
    iommuGroup: files.number(a('iommu_group')),
    resetMethods: resetText !== undefined ? resetText.trim().split(/\s+/).filter((m) => m !== '') : kernelHasResetMethod && !files.unreadable(a('reset_method')) ? [] : undefined,
    resetAttribute: files.has(a('reset')),
    numaNode: files.number(a('numa_node')),
    enableCount: files.number(a('enable')),
    irq: files.number(a('irq')),
    msiIrqs:
      msi === undefined
        ? undefined
        : msi
            .split('\n')
            .filter((l) => l.trim() !== '')
            .map((l, i) => {
              const m = /^(\d+)\s*(\S*)$/.exec(l.trim());
              if (m === null) throw files.error(a('msi_irqs'), 'expected "IRQ MODE"', i + 1);
              return { irq: Number(m[1]), mode: m[2] ?? '' };
            }),
    driverOverride: override === undefined || override === '' || override === '(null)' ? undefined : override,
    link: Object.keys(link).length === 0 ? undefined : link,
    romSize,
    rom: files.bytes(a('rom')),
    bootVga: bootVga === undefined ? undefined : bootVga.trim() === '1',
    sysfsPath: files.value(a('path'))?.trim() || undefined,
    acpiPath: files.value(a('acpi_path'))?.trim() || undefined,
    physfn: files.value(a('physfn'))?.trim() || undefined,
    sriov: total === undefined ? undefined : { total, enabled: files.number(a('sriov_numvfs')) ?? 0 },
    resources: readResources(files, a('resource')),
    label: files.value(a('label'))?.trim() || undefined,
  };
}

/** Linux 5.15 added reset_method, visible only when the function has a method: from then on its absence means none. */
function hasResetMethodAttribute(release: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  return m !== null && (Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 15));
}

function readPci(files: FactsFiles, release: string | undefined): HostSnapshot['pci'] {
  const withAttribute = hasResetMethodAttribute(release);
  const functions = files
    .list(PCI_DIR)
    .map((n) => readPciFunction(files, n, withAttribute))
    .sort((x, y) => compareBdf(x.bdf, y.bdf));
  const captured = functions.flatMap((f) => (f.config === undefined ? [] : [f.config]));
  return {
    functions,
    capture: captured.length === 0 ? undefined : { source: `${files.source}: ${FactsFiles.label(PCI_DIR)}`, functions: captured, withDomains: true },
  };
}

// ---------------------------------------------------------------- ACPI, memory, IOMMU

function readAcpi(files: FactsFiles): HostSnapshot['acpi'] {
  const names = [...files.list(TABLES_DIR).filter((n) => n !== 'dynamic' && n !== 'data'), ...files.list(`${TABLES_DIR}/dynamic`).map((n) => `dynamic/${n}`)];
  const images: TableImage[] = [];
  const tables: AcpiTableFacts[] = [];
  for (const name of names) {
    const path = `${TABLES_DIR}/${name}`;
    const data = files.bytes(path);
    if (data === undefined) continue; // a folder
    const input = `${files.source}: ${FactsFiles.label(path)}`;
    const { table, problem } = within(files, path, () => {
      const { table: bytes } = splitTableBytes(data, input);
      return decodeTableOrRaw(bytes, { input });
    });
    const signature = table.kind === 'rsdp' ? 'RSDP' : table.kind === 'facs' ? 'FACS' : table.header.signature;
    images.push({ origin: input, name, signature, data });
    tables.push({ name, signature, table, problem: problem?.detail });
  }
  return { tables: names.length === 0 ? undefined : tables, images };
}

function readMemmap(files: FactsFiles): E820Map | undefined {
  const dir = 'sys/firmware/memmap';
  const entries = files.list(dir);
  if (entries.length === 0) return undefined;
  const records = entries.map((name) => ({
    name,
    start: files.value(`${dir}/${name}/start`)?.trim(),
    end: files.value(`${dir}/${name}/end`)?.trim(),
    type: files.value(`${dir}/${name}/type`)?.trim(),
  }));
  const found = within(files, dir, () => parseSysfsMemmap(records, `${files.source}: ${FactsFiles.label(dir)}`));
  return normalizeE820(found.entries).map;
}

function readIommu(files: FactsFiles): HostSnapshot['iommu'] {
  const unitsText = files.text('sys/class/iommu/units') ?? '';
  const units = unitsText
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const sp = l.indexOf(' ');
      return { name: sp < 0 ? l : l.slice(0, sp), path: sp < 0 ? '' : l.slice(sp + 1) };
    });
  const dir = 'sys/kernel/iommu_groups';
  const groupNames = files.list(dir);
  const absent = groupNames.length === 0 && readUnreadable(files).some((u) => u.path === '/sys/kernel/iommu_groups');
  let groups: Map<number, IommuGroupFacts> | undefined;
  if (!absent) {
    groups = new Map();
    for (const n of groupNames) {
      if (!/^\d+$/.test(n)) throw files.error(`${dir}/${n}`, 'an IOMMU group folder is named by its number');
      groups.set(Number(n), {
        type: files.value(`${dir}/${n}/type`)?.trim() || undefined,
        reserved: parsed(files, `${dir}/${n}/reserved_regions`, parseReservedRegions) ?? [],
      });
    }
  }
  return { units, groups };
}

function readHostUse(files: FactsFiles): HostSnapshot['host'] {
  const route4 = parsed(files, 'proc/net/route', parseIpv4Routes);
  const route6 = parsed(files, 'proc/net/ipv6_route', parseIpv6Routes);
  const pathOf = (dir: string): string | undefined => files.value(`${dir}/path`)?.trim() || undefined;
  const lines = (path: string): string[] => (files.text(path) ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const swaps = files.text('proc/swaps');
  const active = (files.value('sys/class/tty/console/active') ?? '').trim().split(/\s+/).filter((n) => n !== '');
  return {
    mounts: parsed(files, 'proc/mountinfo', parseMountinfo),
    swaps: swaps === undefined ? undefined : swaps.split('\n').slice(1).map((l) => l.split(/\s+/)[0]!).filter((p) => p !== ''),
    blocks: files.list('sys/class/block').map((name) => {
      const d = `sys/class/block/${name}`;
      return { name, dev: files.value(`${d}/dev`)?.trim(), path: pathOf(d), slaves: lines(`${d}/slaves`), dmName: files.value(`${d}/dm-name`)?.trim() || undefined };
    }),
    nets: files.list('sys/class/net').map((name) => ({ name, path: pathOf(`sys/class/net/${name}`), lower: lines(`sys/class/net/${name}/lower`) })),
    shares: files.list('sys/bus/virtio/devices').flatMap((name) => {
      const tag = files.value(`sys/bus/virtio/devices/${name}/mount_tag`)?.replace(/\0+$/, '').trim();
      return tag === undefined || tag === '' ? [] : [{ name, path: pathOf(`sys/bus/virtio/devices/${name}`), tag }];
    }),
    displays: [...files.list('sys/class/graphics').map((n) => `graphics/${n}`), ...files.list('sys/class/drm').map((n) => `drm/${n}`)].map((n) => ({
      name: n.slice(n.indexOf('/') + 1),
      path: pathOf(`sys/class/${n}`),
    })),
    consoles: active.map((name) => ({ name: name.replace(/[-+]$/, ''), device: files.value(`sys/class/tty/${name.replace(/[-+]$/, '')}/device`)?.trim() || undefined })),
    vtconsoles: files.list('sys/class/vtconsole').map((n) => ({
      name: files.value(`sys/class/vtconsole/${n}/name`)?.trim() ?? n,
      bound: files.value(`sys/class/vtconsole/${n}/bind`)?.trim() === '1',
    })),
    routes: route4 === undefined && route6 === undefined ? undefined : [...(route4 ?? []), ...(route6 ?? [])],
  };
}

/** Reads a whole collection into its typed model; a malformed file is a FactsError naming it. */
export function readSnapshot(files: FactsFiles): HostSnapshot {
  const collector = readCollector(files);
  checkManifest(files);
  const cpuinfo = files.text('proc/cpuinfo');
  const kernel = readKernel(files);
  return {
    source: files.source,
    collector,
    unreadable: readUnreadable(files),
    kernel,
    cpu: cpuinfo === undefined ? undefined : parseCpuinfo(cpuinfo, files.number('proc/cpu-count')),
    pci: readPci(files, kernel.release),
    iommu: readIommu(files),
    acpi: readAcpi(files),
    memory: { memmap: readMemmap(files), iomem: files.text('proc/iomem'), ioports: files.text('proc/ioports') },
    interrupts: parsed(files, 'proc/interrupts', parseInterrupts),
    host: readHostUse(files),
  };
}

/** A function's address as the analysis prints it (with its domain, as sysfs names it). */
export function functionName(f: { readonly bdf: Bdf }): string {
  return formatBdf(f.bdf, true);
}
