/**
 * The readiness analysis: for every PCI function of a collected machine, a verdict for
 * pass-through with an IOMMU (VFIO) and one for identity pass-through without one (the guest's
 * RAM mapped 1:1, the device driven through uio_pci_generic or vfio's no-IOMMU mode), each
 * with the facts behind it in plain words, then the host-side changes that would make the
 * chosen devices passable. Pure: a snapshot in, a report out.
 */
import type { AcpiNamespace } from '../acpi/namespace/namespace.js';
import { loadWorld, worldNamespace } from '../acpi/world/tables.js';
import { formatSize } from '../../util/format.js';
import { IdentityPlanError, planIdentity } from '../mem/identity.js';
import type { GuestWindows } from '../pci/allocator.js';
import { acsEnabled, compareGroups, predictGroups, type AcsMode, type GroupPrediction } from './groups.js';
import { ACS, isBridgeHeader, isDisplay, isPlatformBridge, isVga, REQUIRED_ACS, type BarFact } from './hardware.js';
import { HostPci, type HostFunction } from './host-pci.js';
import { HOST_USE_WORDS, hostUses, type HostUse } from './host-use.js';
import { IntxRouter, type IntxLookup } from './intx.js';
import { reservedRanges, type ReservedRange } from './reserved.js';
import { resetFacts, type ResetFacts } from './reset.js';
import type { HostSnapshot } from './snapshot.js';

export type Topic = 'kind' | 'host-use' | 'iommu' | 'group' | 'acs' | 'reset' | 'rom' | 'bars' | 'intx' | 'reserved' | 'msi' | 'driver' | 'link' | 'collection';

/**
 * How a fact weighs on a verdict: `ok` and `info` do not change it, `warn` works with a
 * caveat, `change` needs a host-side change first, `block` rules it out.
 */
export type Level = 'ok' | 'info' | 'warn' | 'change' | 'block';

export interface Fact {
  readonly topic: Topic;
  readonly level: Level;
  readonly text: string;
}

export type Outcome = 'yes' | 'after-changes' | 'no';

export interface Verdict {
  readonly outcome: Outcome;
  /** The back-end a plan would use: vfio with an IOMMU; uio or vfio-noiommu without. */
  readonly backend: 'vfio' | 'uio' | 'vfio-noiommu' | undefined;
  readonly facts: readonly Fact[];
}

export interface DeviceReport {
  readonly device: string;
  readonly vendorId: number | undefined;
  readonly deviceId: number | undefined;
  readonly classCode: number | undefined;
  readonly driver: string | undefined;
  /** endpoint: something to pass; platform: a bridge or chipset function, not passed. */
  readonly role: 'endpoint' | 'platform';
  readonly hostUse: readonly HostUse[];
  /** The kernel's IOMMU group, when the IOMMU is on. */
  readonly iommuGroup: number | undefined;
  /** Who shares the group: the kernel's group when the IOMMU is on, else Linux's rules applied to the config spaces. */
  readonly group: { readonly source: 'kernel' | 'predicted'; readonly members: ReadonlyArray<{ readonly device: string; readonly driver: string | undefined }> } | undefined;
  readonly reset: ResetFacts | undefined;
  readonly intx: IntxLookup;
  /** Functions whose INTx arrives on the same line (from _PRT), and the host's handlers there (/proc/interrupts). */
  readonly intxSharers: readonly string[];
  readonly reserved: readonly ReservedRange[];
  readonly bars: readonly BarFact[];
  readonly iommu: Verdict;
  readonly identity: Verdict;
  /** Facts that weigh on both verdicts the same way. */
  readonly common: readonly Fact[];
}

export interface MachineReport {
  readonly iommu: {
    readonly on: boolean;
    readonly units: readonly string[];
    /** What the firmware describes: a VT-d DMAR, an AMD-Vi IVRS, neither, or unknown (tables not collected). */
    readonly firmware: 'dmar' | 'ivrs' | 'none' | 'unknown';
    /** How to turn it on, when it is off and can be. */
    readonly enable: readonly string[];
    /** The DMA domain type of the groups (`DMA`, `identity`…), as the kernel set it. */
    readonly domainTypes: readonly string[];
  };
  readonly cpu: { readonly vendor: string | undefined; readonly model: string | undefined; readonly virtualization: string | undefined };
  readonly kernel: { readonly release: string | undefined; readonly cmdline: string | undefined };
  /** Identity pass-through back-ends this kernel offers. */
  readonly identityBackends: readonly ('uio' | 'vfio-noiommu')[];
  /** Whether this kernel has vfio-pci; undefined when its build options were not collected. */
  readonly vfio: boolean | undefined;
  readonly facts: readonly Fact[];
}

export interface HostChanges {
  /** The devices the changes are for. */
  readonly devices: readonly string[];
  readonly iommu: { readonly kernelParams: readonly string[]; readonly commands: readonly string[]; readonly notes: readonly string[] };
  readonly identity: { readonly kernelParams: readonly string[]; readonly commands: readonly string[]; readonly notes: readonly string[] };
}

export interface Analysis {
  readonly source: string;
  readonly machine: MachineReport;
  readonly devices: readonly DeviceReport[];
  readonly changes: HostChanges;
}

export interface AnalyzeOptions {
  /** The guest's PCI windows on hvmpt's monitor (BARs must fit). */
  readonly windows: GuestWindows;
  /** The guest's RAM: an identity layout carves this much from the host (`memmap=`). */
  readonly memory: bigint;
  /** Restrict the report and the changes to these functions (sysfs names). */
  readonly devices?: readonly string[];
}

const hex4 = (n: number | undefined): string => (n === undefined ? '????' : n.toString(16).padStart(4, '0'));

/** The ACPI namespace of the collected tables; undefined when none were collected or none parse. */
export function snapshotNamespace(s: HostSnapshot): { ns: AcpiNamespace | undefined; problems: string[] } {
  if (s.acpi.tables === undefined || s.acpi.images.length === 0) return { ns: undefined, problems: [] };
  const world = loadWorld(s.acpi.images);
  const problems = world.tables.filter((t) => t.amlError !== undefined).map((t) => `${t.name}: its AML does not parse (${t.amlError!.message})`);
  return { ns: worldNamespace(world), problems };
}

// ---------------------------------------------------------------- machine

function machineReport(s: HostSnapshot, pci: HostPci): MachineReport {
  const facts: Fact[] = [];
  const tables = s.acpi.tables;
  const has = (sig: string): boolean => tables?.some((t) => t.signature === sig) ?? false;
  const firmware: MachineReport['iommu']['firmware'] = tables === undefined ? 'unknown' : has('DMAR') ? 'dmar' : has('IVRS') ? 'ivrs' : 'none';
  const on = s.iommu.units.length > 0 || s.pci.functions.some((f) => f.iommuGroup !== undefined);
  const params = new Map((s.kernel.cmdline ?? []).map((p) => [p.name, p.value]));
  const vendor = s.cpu?.vendor;
  const enable: string[] = [];
  if (!on) {
    if (firmware === 'dmar' || (firmware === 'unknown' && vendor === 'GenuineIntel')) enable.push('intel_iommu=on');
    if (firmware === 'ivrs' || (firmware === 'unknown' && vendor === 'AuthenticAMD')) enable.push(params.get('amd_iommu') === 'off' ? 'remove amd_iommu=off' : 'amd_iommu=on');
    if (params.get('iommu') === 'off') enable.push('remove iommu=off');
    if (params.get('intel_iommu') === 'off') enable.push('remove intel_iommu=off');
  }
  const domainTypes = [...new Set([...(s.iommu.groups?.values() ?? [])].map((g) => g.type).filter((t): t is string => t !== undefined))];
  const virt = s.cpu === undefined ? undefined : s.cpu.flags.has('vmx') ? 'VT-x (vmx)' : s.cpu.flags.has('svm') ? 'AMD-V (svm)' : 'no virtualization extensions';
  if (!s.collector.root) {
    facts.push({ topic: 'collection', level: 'warn', text: `collected without root (uid ${s.collector.uid ?? '?'}): config space beyond its first 64 bytes (capabilities: PCIe, ACS, MSI, FLR), the ACPI tables and /proc/iomem addresses were not readable, so findings that need them are unknown` });
  }
  if (s.pci.functions.length === 0) facts.push({ topic: 'collection', level: 'warn', text: 'no PCI functions: this is a machine or container without a PCI bus in its sysfs, so nothing can be passed through' });
  const denied = s.unreadable.filter((u) => u.why === 'denied');
  if (denied.length > 0) facts.push({ topic: 'collection', level: 'info', text: `${denied.length} file(s) could not be read (${denied.slice(0, 3).map((u) => u.path).join(', ')}${denied.length > 3 ? ', …' : ''})` });
  if (on) facts.push({ topic: 'iommu', level: 'ok', text: `the IOMMU is on: ${s.iommu.units.map((u) => u.name).join(', ') || 'groups exist'} remap${s.iommu.units.length === 1 ? 's' : ''} DMA${domainTypes.length > 0 ? ` (domain type ${domainTypes.join(', ')})` : ''}` });
  else if (firmware === 'none') facts.push({ topic: 'iommu', level: 'info', text: 'no IOMMU: the firmware describes none (no DMAR or IVRS table); if the machine has one, turn on VT-d or AMD-Vi in its firmware setup, otherwise use identity pass-through' });
  else facts.push({ topic: 'iommu', level: 'info', text: `the IOMMU is off${firmware === 'dmar' ? ' though the firmware describes VT-d (DMAR)' : firmware === 'ivrs' ? ' though the firmware describes AMD-Vi (IVRS)' : ''}${enable.length > 0 ? `: boot with ${enable.join(' ')}` : ''}` });
  const backends: ('uio' | 'vfio-noiommu')[] = [];
  const cfg = s.kernel.config;
  const mod = (name: string): boolean => (s.kernel.modulesLoaded?.has(name) ?? false) || (s.kernel.modulesBuiltin?.has(name) ?? false) || (s.kernel.modulesAvailable?.has(name) ?? false);
  if (cfg?.get('CONFIG_UIO_PCI_GENERIC') === 'y' || cfg?.get('CONFIG_UIO_PCI_GENERIC') === 'm' || mod('uio_pci_generic')) backends.push('uio');
  if (cfg?.get('CONFIG_VFIO_NOIOMMU') === 'y' || s.kernel.noiommuMode !== undefined) backends.push('vfio-noiommu');
  if (cfg !== undefined || s.kernel.modulesAvailable !== undefined) {
    facts.push({
      topic: 'iommu',
      level: 'info',
      text:
        backends.length === 0
          ? 'this kernel has neither uio_pci_generic nor vfio\'s no-IOMMU mode: identity pass-through needs one of them'
          : `identity pass-through back-ends this kernel offers: ${backends.map((b) => (b === 'uio' ? 'uio_pci_generic' : 'vfio no-IOMMU mode (CONFIG_VFIO_NOIOMMU)')).join(', ')}${cfg?.get('CONFIG_VFIO_NOIOMMU') === 'n' ? '; vfio\'s no-IOMMU mode is not built in' : ''}`,
    });
  }
  const vfio = cfg === undefined && s.kernel.modulesAvailable === undefined ? undefined : cfg?.get('CONFIG_VFIO_PCI') === 'y' || cfg?.get('CONFIG_VFIO_PCI') === 'm' || mod('vfio_pci');
  if (vfio === false) facts.push({ topic: 'iommu', level: 'info', text: 'this kernel has no vfio-pci (CONFIG_VFIO_PCI is not set): IOMMU pass-through needs it' });
  if (pci.composed !== undefined) for (const w of pci.composed.warnings) facts.push({ topic: 'collection', level: 'info', text: `PCI: ${w}` });
  const cmdline = s.kernel.cmdline?.map((p) => (p.value === undefined ? p.name : `${p.name}=${p.value}`)).join(' ');
  return {
    iommu: { on, units: s.iommu.units.map((u) => u.name), firmware, enable, domainTypes },
    cpu: { vendor, model: s.cpu?.model, virtualization: virt },
    kernel: { release: s.kernel.release, cmdline },
    identityBackends: backends,
    vfio,
    facts,
  };
}

// ---------------------------------------------------------------- devices

/** Drivers that leave a group usable by vfio: they manage DMA themselves or claim nothing (pcieport, pci-stub). */
const GROUP_SAFE_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

function acsWords(caps: number): string {
  return Object.entries(ACS)
    .filter(([, bit]) => (caps & bit) !== 0 && (REQUIRED_ACS & bit) !== 0)
    .map(([k]) => k.toUpperCase())
    .join(' ');
}

function kindWords(f: HostFunction): string {
  const t = f.hw?.pcieType;
  if (t === 'root-port') return 'PCIe root port';
  if (t === 'downstream-port') return 'PCIe switch downstream port';
  if (t === 'upstream-port') return 'PCIe switch upstream port';
  if (t === 'pcie-to-pci-bridge') return 'PCIe-to-PCI bridge';
  if (f.hw !== undefined && isBridgeHeader(f.hw)) return 'conventional PCI bridge';
  return 'function';
}

function barWords(b: BarFact): string {
  const kind = b.kind === 'io' ? 'I/O' : b.kind === 'rom' ? 'ROM' : `${b.kind === 'mem64' ? '64-bit' : '32-bit'}${b.prefetchable ? ' prefetchable' : ''}`;
  return `BAR ${b.index === 6 ? 'ROM' : b.index} (${kind}${b.size === undefined ? ', size unknown' : `, ${formatSize(b.size)}`})`;
}

function windowSize(w: { base: bigint; limit: bigint } | undefined): bigint {
  return w === undefined ? 0n : w.limit - w.base + 1n;
}

interface Context {
  readonly s: HostSnapshot;
  readonly pci: HostPci;
  readonly machine: MachineReport;
  readonly uses: readonly HostUse[];
  readonly groups: GroupPrediction;
  readonly groupSource: 'kernel' | 'predicted';
  readonly router: IntxRouter | undefined;
  readonly reserved: Map<HostFunction, ReservedRange[]>;
  readonly options: AnalyzeOptions;
  readonly routes: Map<HostFunction, IntxLookup>;
}

function groupMembers(c: Context, f: HostFunction): HostFunction[] {
  if (c.groupSource === 'kernel') {
    if (f.facts.iommuGroup === undefined) return [f];
    return c.pci.functions.filter((x) => x.facts.iommuGroup === f.facts.iommuGroup);
  }
  const n = c.groups.groupOf.get(f);
  return n === undefined ? [f] : [...(c.groups.groups.get(n) ?? [f])];
}

function intxKey(r: IntxLookup): string | undefined {
  if (r.kind !== 'routed') return undefined;
  return r.route.gsi !== undefined ? `gsi:${r.route.gsi}` : r.route.link !== undefined ? `link:${r.route.link}` : undefined;
}

/** The handlers /proc/interrupts shows on a GSI (an IO-APIC line whose controller number is the GSI). */
function procHandlers(c: Context, gsi: number | undefined): string[] {
  if (gsi === undefined || c.s.interrupts === undefined) return [];
  return c.s.interrupts.filter((r) => /IO-APIC/.test(r.chip) && r.hwirq === gsi).flatMap((r) => r.actions);
}

function deviceReport(c: Context, f: HostFunction): DeviceReport {
  const facts = f.facts;
  const common: Fact[] = [];
  const iommu: Fact[] = [];
  const identity: Fact[] = [];
  const both = (topic: Topic, level: Level, text: string): void => {
    common.push({ topic, level, text });
  };
  const hw = f.hw;
  const classCode = facts.classCode ?? hw?.classCode;
  const platform = (hw !== undefined && isBridgeHeader(hw)) || (classCode !== undefined && isPlatformBridge(classCode));
  if (platform) {
    both('kind', 'block', `a ${kindWords(f) === 'function' ? 'chipset bridge' : kindWords(f)}: it carries other devices and the platform; pass what is behind it, not the bridge`);
  }
  if (hw === undefined) both('collection', 'warn', 'its config space could not be read, so what it is made of is unknown');

  // Host use.
  const uses = c.uses.filter((u) => u.device === f.name);
  for (const u of uses) {
    const level: Level = u.kind === 'boot-disk' || u.kind === 'swap' ? 'block' : 'change';
    const then =
      level === 'block'
        ? 'the host cannot give it away'
        : u.kind === 'mounted'
          ? 'unmount it first'
          : u.kind === 'default-route'
            ? 'the host loses that route: move it to another interface first'
            : 'the host loses that console: give it another (a serial console, console=ttyS0) first';
    both('host-use', level, `${HOST_USE_WORDS[u.kind]}: ${u.detail}; ${then}`);
  }

  // Driver and link.
  if (facts.driver !== undefined && !platform) {
    both('driver', 'info', facts.driver === 'vfio-pci' ? 'bound to vfio-pci already' : `bound to ${facts.driver} now: it is unbound from it when passed`);
  }
  if (facts.link !== undefined && (facts.link.speed !== undefined || facts.link.width !== undefined)) {
    both('link', 'info', `PCIe link ${facts.link.speed ?? '?'} x${facts.link.width ?? '?'}${facts.link.maxSpeed !== undefined ? ` (the device can do ${facts.link.maxSpeed} x${facts.link.maxWidth ?? '?'})` : ''}`);
  }

  // Reset.
  const reset = hw === undefined && facts.resetMethods === undefined ? undefined : resetFacts(c.pci, f);
  if (reset !== undefined && !platform) {
    if (reset.methods.length === 0) {
      both('reset', 'warn', 'no reset method: the kernel cannot reset it, so its state (and any DMA it was told to do) carries over from one user to the next; give it to one guest for good (dedicated), and reboot the host to reset it');
    } else {
      for (const k of reset.consequences) both('reset', k.affects.length > 0 ? 'warn' : 'ok', `reset by ${k.method}: ${k.text}`);
      if (reset.source === 'derived') both('reset', 'info', 'the kernel does not list its reset methods (before Linux 5.15); these are what its config space offers');
    }
    if (reset.derived.length > 0) {
      both('reset', 'info', `its config space offers ${reset.derived.join(', ') || 'none'}; the kernel decided when the device was found (a bus reset is offered only to a function alone on its bus at that moment)`);
    }
  }

  // ROM.
  if (!platform && classCode !== undefined) {
    if (facts.romSize !== undefined && facts.romSize > 0) {
      const valid = facts.rom === undefined ? undefined : facts.rom[0] === 0x55 && facts.rom[1] === 0xaa;
      both('rom', valid === false ? 'warn' : 'ok', `expansion ROM of ${formatSize(BigInt(facts.romSize))}${valid === true ? ' (its image was collected and starts with 55 AA)' : valid === false ? ' (the collected image does not start with 55 AA: not a valid option ROM)' : ''}; rom: auto gives the guest the device's own`);
    } else if (isVga(classCode)) {
      both('rom', 'warn', 'a VGA device without an expansion ROM the kernel exposes: the guest\'s firmware needs its video BIOS to show anything before a driver loads; give it a ROM file (rom: FILE)');
    } else {
      both('rom', 'info', 'no expansion ROM');
    }
  }

  // BARs against the guest's windows.
  const bars = hw?.bars ?? [];
  if (!platform) {
    const w = c.options.windows;
    const mem32 = windowSize(w.mem32);
    const mem64 = windowSize(w.mem64);
    const io = windowSize(w.io);
    for (const b of bars.filter((x) => x.kind !== 'rom')) {
      if (b.size === undefined) {
        both('bars', 'info', `${barWords(b)}: its size was not collected`);
        continue;
      }
      const high = b.kind === 'mem64' && b.prefetchable;
      const room = b.kind === 'io' ? io : high ? mem64 : mem32;
      const where = b.kind === 'io' ? `the guest's I/O window (${formatSize(io)})` : high ? `the guest's 64-bit window (${formatSize(mem64)})` : `the guest's 32-bit window (${formatSize(mem32)})`;
      if (b.size > room) both('bars', 'block', `${barWords(b)} does not fit ${where}`);
      else both('bars', b.kind !== 'io' && b.size < 4096n ? 'info' : 'ok', `${barWords(b)} fits ${where}${b.kind !== 'io' && b.size < 4096n ? '; smaller than a page, so the monitor traps its accesses rather than mapping it' : ''}`);
    }
  }

  // MSI / MSI-X.
  if (!platform && hw !== undefined) {
    if (!hw.capabilitiesKnown) both('msi', 'info', 'MSI and MSI-X support unknown (its capabilities are beyond the 64 bytes a non-root collector reads)');
    else {
      const parts = [
        ...(hw.msi === undefined ? [] : [`MSI (${hw.msi.vectors} vector${hw.msi.vectors === 1 ? '' : 's'}${hw.msi.address64 ? ', 64-bit' : ''}${hw.msi.maskable ? ', maskable' : ''})`]),
        ...(hw.msix === undefined ? [] : [`MSI-X (${hw.msix.vectors} vectors)`]),
      ];
      iommu.push({ topic: 'msi', level: 'ok', text: parts.length === 0 ? 'no MSI or MSI-X: its interrupts are INTx only' : `supports ${parts.join(' and ')}` });
      if (parts.length > 0) identity.push({ topic: 'msi', level: 'warn', text: `supports ${parts.join(' and ')}, but uio_pci_generic forwards INTx only: the guest's driver must fall back to INTx` });
    }
  }

  // INTx: the line, and who shares it.
  const intx = c.routes.get(f) ?? { kind: 'unknown' as const, reason: 'its config space was not read' };
  const key = intxKey(intx);
  const sharers = key === undefined ? [] : c.pci.functions.filter((o) => o !== f && intxKey(c.routes.get(o) ?? { kind: 'no-pin' }) === key).map((o) => o.name);
  const handlers = intx.kind === 'routed' ? procHandlers(c, intx.route.gsi) : [];
  const ownHandler = (h: string): boolean => h.includes(f.name) || (facts.driver !== undefined && h.startsWith(facts.driver));
  const foreignHandlers = handlers.filter((h) => !ownHandler(h) && !sharers.some((s) => h.includes(s)));
  // A sharer drives the line when its driver takes INTx (no MSI vectors in use); the host's handlers on the line show in /proc/interrupts.
  const sharerFns = sharers.map((n) => c.pci.functions.find((x) => x.name === n)!);
  const drives = (x: HostFunction): boolean => x.facts.driver !== undefined && x.facts.driver !== 'vfio-pci' && (x.facts.msiIrqs === undefined || x.facts.msiIrqs.length === 0);
  const active = [...sharerFns.filter(drives).map((x) => `${x.name} (${x.facts.driver})`), ...foreignHandlers.map((h) => `the host's "${h}" handler`)];
  const idle = sharerFns.filter((x) => !drives(x)).map((x) => `${x.name}${x.facts.driver !== undefined ? ` (${x.facts.driver}, on MSI)` : ''}`);
  const sharerWords = [...active, ...idle];
  if (!platform) {
    if (intx.kind === 'no-pin') {
      iommu.push({ topic: 'intx', level: 'info', text: 'no INTx pin' });
      identity.push({ topic: 'intx', level: 'block', text: 'no INTx pin: uio_pci_generic forwards INTx only, so the guest would get no interrupts from it' });
    } else if (intx.kind === 'unknown') {
      const text = `INTx pin ${'ABCD'[(hw?.interruptPin ?? 1) - 1] ?? '?'}: where it is routed is unknown (${intx.reason})${facts.irq !== undefined && facts.irq > 0 ? `; the kernel has IRQ ${facts.irq} for it` : ''}`;
      iommu.push({ topic: 'intx', level: 'info', text });
      identity.push({ topic: 'intx', level: 'warn', text: `${text}: whether its line is shared could not be checked` });
    } else {
      const r = intx.route;
      const line = `INTx pin ${'ABCD'[r.pin - 1]} arrives as ${r.gsi !== undefined ? `GSI ${r.gsi}` : 'a link'}${r.link !== undefined ? ` through ${r.link}` : ''} (${r.via}, slot ${r.slot} pin ${'ABCD'[r.slotPin - 1]})`;
      if (sharerWords.length === 0) {
        iommu.push({ topic: 'intx', level: 'ok', text: `${line}, not shared` });
        identity.push({ topic: 'intx', level: 'ok', text: `${line}, not shared` });
      } else {
        iommu.push({ topic: 'intx', level: 'info', text: `${line}, shared with ${sharerWords.join(', ')}: vfio masks a shared line while the guest handles it; MSI avoids sharing` });
        if (active.length > 0) identity.push({ topic: 'intx', level: 'block', text: `${line}, shared with ${active.join(', ')}${idle.length > 0 ? ` (and ${idle.join(', ')})` : ''}: identity mode cannot accept a shared INTx line` });
        else identity.push({ topic: 'intx', level: 'warn', text: `${line}, wired together with ${idle.join(', ')}, which do not use it now: identity mode cannot accept a shared INTx line, so they must stay off it (no driver, or MSI)` });
      }
      identity.push({ topic: 'intx', level: 'info', text: 'uio_pci_generic also needs the device to mask INTx itself (PCI 2.3 Interrupt Disable); checking that takes a config write, which collection never does' });
    }
  }

  // Reserved memory regions.
  const reserved = c.reserved.get(f) ?? [];
  const groupDirect = c.s.iommu.groups?.get(facts.iommuGroup ?? -1)?.reserved.filter((r) => r.type.startsWith('direct')) ?? [];
  if (!platform) {
    const relaxable = classCode !== undefined && (classCode >>> 8 === 0x0c03 || isDisplay(classCode));
    for (const r of reserved) {
      iommu.push({
        topic: 'reserved',
        level: relaxable ? 'warn' : 'block',
        text: relaxable
          ? `${r.naming}: the firmware keeps using this memory for it; for USB and graphics devices Linux lets vfio take it anyway, and the firmware loses that memory`
          : `${r.naming}: the firmware keeps using memory through it, and vfio refuses such a device ("ineligible for IOMMU domain attach due to platform RMRR requirement")`,
      });
      identity.push({ topic: 'reserved', level: 'info', text: `${r.naming}: the guest's identity RAM must stay clear of [0x${r.start.toString(16)}, 0x${r.end.toString(16)}) (it is not host RAM, so a carve never takes it)` });
    }
    for (const r of groupDirect) {
      if (reserved.some((x) => x.start === r.start)) continue;
      iommu.push({ topic: 'reserved', level: 'warn', text: `its IOMMU group has a ${r.type} region [0x${r.start.toString(16)}-0x${r.end.toString(16)}] the kernel keeps mapped 1:1` });
    }
    if (reserved.length === 0 && groupDirect.length === 0) both('reserved', 'ok', c.s.acpi.tables === undefined ? 'no reserved memory regions known (the DMAR/IVRS tables were not collected)' : 'no RMRR or IVMD names it');
  }

  // IOMMU: state, group, ACS.
  const m = c.machine.iommu;
  let group: DeviceReport['group'];
  if (!platform) {
    if (m.on) iommu.push({ topic: 'iommu', level: 'ok', text: `the IOMMU is on (${m.units.join(', ') || 'groups exist'})` });
    else if (m.firmware === 'none') iommu.push({ topic: 'iommu', level: 'block', text: 'no IOMMU: the firmware describes none (no DMAR or IVRS)' });
    else iommu.push({ topic: 'iommu', level: 'change', text: `the IOMMU is off${m.enable.length > 0 ? `: boot with ${m.enable.join(' ')}` : ' (turn it on in the firmware and the kernel)'}` });
    const domain = c.s.iommu.groups?.get(facts.iommuGroup ?? -1)?.type;
    if (m.on && domain !== undefined && domain !== 'identity') {
      identity.push({ topic: 'iommu', level: 'change', text: `the IOMMU translates this device's DMA (group domain ${domain}): identity pass-through needs untranslated DMA, so boot with iommu=pt or turn the IOMMU off` });
    } else if (m.on && domain === 'identity') {
      identity.push({ topic: 'iommu', level: 'ok', text: 'the IOMMU passes its DMA through untranslated (identity domain)' });
    }
    if (hw !== undefined) {
      const members = groupMembers(c, f);
      group = { source: c.groupSource, members: members.map((x) => ({ device: x.name, driver: x.facts.driver })) };
      const others = members.filter((x) => x !== f);
      const label = c.groupSource === 'kernel' ? `IOMMU group ${facts.iommuGroup ?? '?'}` : 'its IOMMU group (as the kernel would form it with the IOMMU on)';
      if (others.length === 0) iommu.push({ topic: 'group', level: 'ok', text: `${label}: alone` });
      else {
        const blockers = others.filter((x) => c.uses.some((u) => u.device === x.name && (u.kind === 'boot-disk' || u.kind === 'swap')));
        const busy = others.filter((x) => x.facts.driver !== undefined && !GROUP_SAFE_DRIVERS.has(x.facts.driver) && !blockers.includes(x));
        const list = others.map((x) => `${x.name} (${x.facts.driver ?? 'no driver'}${x.hw !== undefined && isBridgeHeader(x.hw) ? ', a bridge' : ''})`).join(', ');
        if (blockers.length > 0) iommu.push({ topic: 'group', level: 'block', text: `${label} also holds ${list}; ${blockers.map((b) => b.name).join(', ')} ${blockers.length === 1 ? 'is' : 'are'} the host's boot disk, so the group cannot be given away` });
        else if (busy.length > 0) iommu.push({ topic: 'group', level: 'change', text: `${label} also holds ${list}: unbind ${busy.map((b) => b.name).join(', ')} from ${[...new Set(busy.map((b) => b.facts.driver))].join(', ')} (to vfio-pci, or no driver) for the group to be usable` });
        else iommu.push({ topic: 'group', level: 'ok', text: `${label} also holds ${list}: none of them has a driver that stops vfio` });
      }
      // ACS on the way up.
      const up = c.pci.upstream(f);
      const mode: AcsMode = m.on ? 'actual' : 'predicted';
      if (up.length === 0) iommu.push({ topic: 'acs', level: 'info', text: 'on a root bus: no port above it' });
      for (const p of up) {
        const kind = kindWords(p);
        if (p.hw?.pcieType === undefined) {
          iommu.push({ topic: 'acs', level: 'warn', text: `${kind} ${p.name} above it: conventional PCI cannot isolate, so everything behind it is one group` });
        } else if (p.hw.acs === undefined) {
          const relevant = p.hw.pcieType === 'root-port' || p.hw.pcieType === 'downstream-port';
          iommu.push({ topic: 'acs', level: relevant ? 'warn' : 'info', text: `${kind} ${p.name} above it has no ACS${relevant ? ': what is below it shares a group with its siblings (unless the kernel has a quirk for it)' : ''}` });
        } else {
          const ok = acsEnabled(p, mode);
          iommu.push({
            topic: 'acs',
            level: ok ? 'ok' : 'warn',
            text: `${kind} ${p.name} above it has ACS (${acsWords(p.hw.acs.capability) || 'none of SV RR CR UF'}${mode === 'actual' ? `; enabled: ${acsWords(p.hw.acs.control) || 'none'}` : ''})${ok ? ': it isolates what is below it' : ': not enough to isolate what is below it'}`,
          });
        }
      }
      if (hw.multifunction && hw.pcieType !== undefined && hw.acs === undefined && c.pci.slotSiblings(f).length > 0) {
        iommu.push({ topic: 'acs', level: 'info', text: `a multi-function device without ACS: its functions ${c.pci.slotSiblings(f).map((x) => x.name).join(', ')} can reach each other, so they share its group` });
      }
    }
  }

  if (!platform && c.machine.vfio === false) iommu.push({ topic: 'iommu', level: 'change', text: 'this kernel has no vfio-pci (CONFIG_VFIO_PCI is not set): build or install it' });

  // Verdicts.
  const verdict = (own: readonly Fact[], backend: Verdict['backend']): Verdict => {
    const all = [...common, ...own];
    const outcome: Outcome = all.some((x) => x.level === 'block') ? 'no' : all.some((x) => x.level === 'change') ? 'after-changes' : 'yes';
    return { outcome, backend: outcome === 'no' ? undefined : backend, facts: all };
  };
  const idBackend = c.machine.identityBackends[0] ?? 'uio';
  if (!platform && c.machine.identityBackends.length === 0 && (c.s.kernel.config !== undefined || c.s.kernel.modulesAvailable !== undefined)) {
    identity.push({ topic: 'iommu', level: 'change', text: 'this kernel offers no identity back-end (uio_pci_generic or vfio no-IOMMU mode): build or install uio_pci_generic' });
  }
  return {
    device: f.name,
    vendorId: facts.vendorId,
    deviceId: facts.deviceId,
    classCode,
    driver: facts.driver,
    role: platform ? 'platform' : 'endpoint',
    hostUse: uses,
    iommuGroup: facts.iommuGroup,
    group,
    reset,
    intx,
    intxSharers: sharerWords,
    reserved,
    bars,
    iommu: verdict(iommu, 'vfio'),
    identity: verdict(identity, idBackend),
    common,
  };
}

// ---------------------------------------------------------------- host-side changes

/** The sysfs commands that hand a function to a driver (and back from its current one). */
export function bindCommands(device: string, driver: string, current: string | undefined): string[] {
  const dev = `/sys/bus/pci/devices/${device}`;
  return [
    `echo ${driver} > ${dev}/driver_override`,
    ...(current !== undefined && current !== driver ? [`echo ${device} > ${dev}/driver/unbind`] : []),
    `echo ${device} > /sys/bus/pci/drivers_probe`,
  ];
}

function hostChanges(c: Context, reports: readonly DeviceReport[], targets: readonly DeviceReport[]): HostChanges {
  const m = c.machine;
  const iommuParams: string[] = [];
  const iommuCommands: string[] = [];
  const iommuNotes: string[] = [];
  const forIommu = targets.filter((r) => r.iommu.outcome !== 'no');
  if (forIommu.length > 0) {
    if (!m.iommu.on) iommuParams.push(...m.iommu.enable.filter((e) => !e.startsWith('remove')));
    if (!m.iommu.on) for (const e of m.iommu.enable.filter((x) => x.startsWith('remove'))) iommuNotes.push(`${e} from the kernel command line`);
    iommuParams.push('iommu=pt');
    iommuNotes.push('iommu=pt leaves the host\'s own devices untranslated (faster); vfio still confines the passed ones');
    // vfio-pci.ids= only for IDs no function the host keeps shares.
    const ids = new Set(forIommu.map((r) => `${hex4(r.vendorId)}:${hex4(r.deviceId)}`));
    const kept = reports.filter((r) => !forIommu.includes(r)).map((r) => `${hex4(r.vendorId)}:${hex4(r.deviceId)}`);
    const safe = [...ids].filter((id) => !kept.includes(id));
    if (safe.length > 0) iommuParams.push(`vfio-pci.ids=${safe.join(',')}`);
    const unsafe = [...ids].filter((id) => kept.includes(id));
    if (unsafe.length > 0) iommuNotes.push(`${unsafe.join(', ')} ${unsafe.length === 1 ? 'is' : 'are'} also the IDs of functions the host keeps, so they are bound by address (below), not by vfio-pci.ids`);
    iommuNotes.push('vfio-pci.ids binds at boot when vfio-pci loads before the devices\' own drivers (built in, or a modprobe.d softdep); the commands below do it at run time');
    iommuCommands.push('modprobe vfio-pci');
    const members = new Map<string, string | undefined>();
    for (const r of forIommu) {
      members.set(r.device, r.driver);
      for (const g of r.group?.members ?? []) {
        const rep = reports.find((x) => x.device === g.device);
        if (rep?.role === 'endpoint' && g.driver !== undefined && !GROUP_SAFE_DRIVERS.has(g.driver)) members.set(g.device, g.driver);
      }
    }
    for (const [device, driver] of members) iommuCommands.push(...bindCommands(device, 'vfio-pci', driver));
    iommuNotes.push(`with hvmpt on the host, \`hvmpt bind ${forIommu.map((r) => r.device).join(' ')}\` does the same (group mates included) and \`hvmpt unbind\` undoes it`);
  }
  const idParams: string[] = [];
  const idCommands: string[] = [];
  const idNotes: string[] = [];
  const forIdentity = targets.filter((r) => r.identity.outcome !== 'no');
  if (forIdentity.length > 0) {
    const carve = identityCarve(c.s, c.options.memory);
    if (carve === undefined) idNotes.push('the host\'s memory map was not collected: the memmap= carve for the guest\'s RAM cannot be computed');
    else if ('error' in carve) idNotes.push(`no memmap= carve: ${carve.error}`);
    else {
      idParams.push(...carve.params);
      idNotes.push(`memmap= keeps ${formatSize(carve.size)} of RAM from the host for the guest's identity layout (in /etc/default/grub write each $ as \\\\\\$)`);
    }
    if (m.iommu.on) idParams.push('iommu=pt');
    const backend = m.identityBackends[0] ?? 'uio';
    if (backend === 'uio') idCommands.push('modprobe uio_pci_generic');
    else idCommands.push('modprobe vfio enable_unsafe_noiommu_mode=1', 'modprobe vfio-pci');
    for (const r of forIdentity) idCommands.push(...bindCommands(r.device, backend === 'uio' ? 'uio_pci_generic' : 'vfio-pci', r.driver));
    if (backend === 'uio') idNotes.push(`with hvmpt on the host, \`hvmpt bind --driver uio_pci_generic ${forIdentity.map((r) => r.device).join(' ')}\` does the same`);
  }
  return {
    devices: targets.map((r) => r.device),
    iommu: { kernelParams: [...new Set(iommuParams)], commands: iommuCommands, notes: iommuNotes },
    identity: { kernelParams: [...new Set(idParams)], commands: idCommands, notes: idNotes },
  };
}

/** The host kernel parameters that carve the guest's RAM from the collected memory map. */
export function identityCarve(s: HostSnapshot, size: bigint): { readonly params: readonly string[]; readonly size: bigint } | { readonly error: string } | undefined {
  if (s.memory.memmap === undefined) return undefined;
  try {
    return { params: planIdentity(s.memory.memmap, { size }).kernelParams, size };
  } catch (err) {
    if (err instanceof IdentityPlanError) return { error: err.detail };
    throw err;
  }
}

// ---------------------------------------------------------------- the whole

export function analyze(s: HostSnapshot, options: AnalyzeOptions): Analysis {
  const pci = new HostPci(s);
  const machine = machineReport(s, pci);
  const { ns, problems } = snapshotNamespace(s);
  const router = ns === undefined ? undefined : new IntxRouter(ns, pci);
  const groupSource: Context['groupSource'] = machine.iommu.on ? 'kernel' : 'predicted';
  const groups = predictGroups(pci, machine.iommu.on ? 'actual' : 'predicted');
  const machineFacts: Fact[] = [...machine.facts];
  for (const p of problems) machineFacts.push({ topic: 'collection', level: 'warn', text: `ACPI ${p}; INTx routes through it are unknown` });
  if (machine.iommu.on) {
    for (const d of compareGroups(groups, pci)) machineFacts.push({ topic: 'group', level: 'info', text: `${d} than hvmpt's reading of the ACS capabilities (a kernel quirk or an ACS override)` });
  }
  const routes = new Map<HostFunction, IntxLookup>();
  for (const f of pci.functions) {
    routes.set(f, router === undefined ? (f.hw?.interruptPin ? { kind: 'unknown', reason: s.acpi.tables === undefined ? 'the ACPI tables were not collected (they need root)' : 'no ACPI namespace' } : { kind: 'no-pin' }) : router.lookup(f));
  }
  const c: Context = {
    s,
    pci,
    machine: { ...machine, facts: machineFacts },
    uses: hostUses(s),
    groups,
    groupSource,
    router,
    reserved: reservedRanges(pci, s.acpi.tables ?? []),
    options,
    routes,
  };
  const all = pci.sorted().map((f) => deviceReport(c, f));
  const wanted = options.devices;
  const devices = wanted === undefined ? all : all.filter((r) => wanted.includes(r.device));
  const targets = devices.filter((r) => r.role === 'endpoint' && (wanted !== undefined || (r.hostUse.length === 0 && (r.iommu.outcome !== 'no' || r.identity.outcome !== 'no'))));
  return { source: s.source, machine: c.machine, devices, changes: hostChanges(c, all, targets) };
}

