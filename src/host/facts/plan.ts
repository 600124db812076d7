/**
 * Plans made from a collection (`hvmpt plan --from`): the devices to pass through with the
 * back-end the analysis chose, the memory layout (identity when there is no usable IOMMU),
 * what the host keeps (hidden from the guest), and the ACPI world view (the host's own tables
 * rewritten for `--p2v`, hvmpt's generated ones otherwise). And the hardware twin: a machine
 * you do not have, replayed from its capture (`--twin`).
 *
 * The plan is plain data in the existing schema; the files it names (the host's memory map,
 * ACPI tables and PCI config spaces, copied byte for byte from the collection) are written
 * beside it by the caller. Every choice that makes the guest differ from the real machine is
 * listed with its reason.
 */
import { e820ToJson } from '../../hw/mem/e820-format.js';
import { totalOfType, type E820Map } from '../../hw/mem/e820.js';
import type { Analysis, DeviceReport } from '../../hw/facts/analyze.js';
import { HostPci, type HostFunction } from '../../hw/facts/host-pci.js';
import type { HostSnapshot } from '../../hw/facts/snapshot.js';
import { compareBdf, formatBdf, type Bdf } from '../../hw/pci/address.js';
import type { Capture, CapturedFunction } from '../../hw/pci/capture.js';
import { decodeCapturedBars } from '../../hw/pci/bars.js';
import { readLE } from '../../hw/pci/endian.js';
import { CLASS_DEVICE, HEADER_TYPE, SECONDARY_BUS, SUBORDINATE_BUS } from '../../hw/pci/regs.js';
import { InputError, UsageError } from '../../errors.js';
import { MADT_CPU_ENABLED } from '../../hw/acpi/tables/madt.js';
import { MAX_CPUS } from '../../hw/cpu/topology.js';
import { formatSize } from '../../util/format.js';

/** A file the plan names, relative to the plan's own directory. */
export interface PlanFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

export interface Difference {
  readonly what: string;
  readonly why: string;
}

export interface GeneratedPlan {
  /** The plan, as the YAML will hold it. */
  readonly plan: Record<string, unknown>;
  readonly files: readonly PlanFile[];
  readonly differences: readonly Difference[];
  /** What was passed, kept and why, for the user. */
  readonly summary: readonly string[];
}

/** The monitor's own chipset takes these root-bus slots (i440FX at 00:00.0, PIIX3 at 00:01.0). */
const CHIPSET_DEVICES = [0, 1];
/** Tables describing the host's IOMMU: a guest gets none (the monitor has no IOMMU). */
const IOMMU_TABLES = ['DMAR', 'IVRS'];
/** Tables describing hardware the monitor does not have, hidden from P2V guests. */
const ABSENT_HARDWARE: ReadonlyArray<readonly [string, string]> = [
  ['HPET', 'the monitor has no HPET'],
  ['SRAT', 'the guest has one vCPU and one NUMA node'],
  ['SLIT', 'the guest has one NUMA node'],
];

/** Class 06, subclass 00: a host bridge. */
const HOST_BRIDGE_CLASS = 0x0600;

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

function entryName(f: { readonly bdf: Bdf }): string {
  const b = f.bdf;
  return `pt${b.segment === 0 ? '' : `_${b.segment.toString(16)}`}_${hex2(b.bus)}_${hex2(b.device)}_${b.fn}`;
}

/** The sidecar folder's name for a plan file: `p2v.yaml` -> `p2v.files`. */
export function sidecarName(planBase: string): string {
  return `${planBase.replace(/\.(ya?ml|json)$/i, '')}.files`;
}

// ---------------------------------------------------------------- sidecar files

function pciFiles(dir: string, functions: readonly CapturedFunction[], s: HostSnapshot): PlanFile[] {
  const out: PlanFile[] = [];
  for (const c of functions) {
    const name = formatBdf(c.bdf, true);
    const f = s.pci.functions.find((x) => formatBdf(x.bdf, true) === name);
    out.push({ path: `${dir}/pci/${name}/config`, bytes: c.bytes });
    const res = f?.resources;
    if (res !== undefined) {
      const text = res.map((r) => `0x${r.start.toString(16).padStart(16, '0')} 0x${r.end.toString(16).padStart(16, '0')} 0x${r.flags.toString(16).padStart(16, '0')}`).join('\n') + '\n';
      out.push({ path: `${dir}/pci/${name}/resource`, bytes: new TextEncoder().encode(text) });
    }
  }
  return out;
}

function memmapFile(dir: string, map: E820Map): PlanFile {
  return { path: `${dir}/host-e820.json`, bytes: new TextEncoder().encode(JSON.stringify(e820ToJson(map), null, 2) + '\n') };
}

/** The firmware's static tables (dynamic/ ones were loaded by the host's own AML at run time). */
function acpiFiles(dir: string, s: HostSnapshot): PlanFile[] {
  return s.acpi.images.filter((im) => !im.name.startsWith('dynamic/')).map((im) => ({ path: `${dir}/acpi/${im.name}`, bytes: im.data }));
}

function tableRules(s: HostSnapshot, differences: Difference[]): Array<Record<string, unknown>> {
  const rules: Array<Record<string, unknown>> = [];
  const present = new Set(s.acpi.tables?.map((t) => t.signature) ?? []);
  for (const sig of IOMMU_TABLES) {
    if (!present.has(sig)) continue;
    rules.push({ action: 'hide-table', signature: sig });
    differences.push({ what: `the host's ${sig} table is not given to the guest`, why: 'it describes the host\'s IOMMU, and the guest has none' });
  }
  for (const [sig, why] of ABSENT_HARDWARE) {
    if (!present.has(sig)) continue;
    rules.push({ action: 'hide-table', signature: sig });
    differences.push({ what: `the host's ${sig} table is not given to the guest`, why });
  }
  const dynamic = s.acpi.images.filter((im) => im.name.startsWith('dynamic/'));
  if (dynamic.length > 0) differences.push({ what: `${dynamic.map((d) => d.name).join(', ')} are not given to the guest`, why: 'the host\'s AML loaded them at run time from its own memory; the guest\'s loads what it can' });
  return rules;
}

/**
 * The vCPUs a guest on the host's own MADT needs: the processors it lists as enabled, when their
 * APIC IDs are 0..N-1, the IDs KVM gives N vCPUs. Then the guest gets N vCPUs and the table holds
 * true; otherwise (other IDs, more than the monitor runs) one vCPU, and Linux finds processors
 * that never start.
 */
function madtCpus(s: HostSnapshot, machine: Record<string, unknown>, differences: Difference[], whose: string): void {
  const madt = s.acpi.tables?.find((t) => t.table.kind === 'madt')?.table;
  if (madt?.kind !== 'madt') return;
  const ids = madt.entries
    .flatMap((e) => (e.type === 'localApic' ? [{ id: e.apicId, flags: e.flags }] : e.type === 'localX2apic' ? [{ id: e.x2apicId, flags: e.flags }] : []))
    .filter((e) => (e.flags & MADT_CPU_ENABLED) !== 0)
    .map((e) => e.id)
    .sort((a, b) => a - b);
  if (ids.length > 0 && ids.length <= MAX_CPUS && ids.every((id, i) => id === i)) {
    if (ids.length > 1) machine.cpus = ids.length;
    differences.push({ what: `the guest's ${ids.length} vCPU${ids.length === 1 ? ' is' : 's are'} the monitor's, one for each processor ${whose} MADT lists (APIC IDs 0-${ids.length - 1})`, why: 'the vCPUs are KVM\'s; their IDs match the table\'s' });
    return;
  }
  differences.push({ what: `the guest has 1 vCPU; ${whose} MADT lists ${ids.length} processors (APIC IDs ${ids.join(', ')}) that the guest's OS will try and fail to start`, why: `the monitor gives N vCPUs the APIC IDs 0..N-1 (at most ${MAX_CPUS})` });
}

// ---------------------------------------------------------------- pass-through plans

export interface PassPlanRequest {
  readonly snapshot: HostSnapshot;
  readonly analysis: Analysis;
  readonly p2v: boolean;
  readonly pass: readonly string[] | undefined;
  readonly keep: readonly string[];
  readonly memory: bigint;
  /** The plan file's name without its directory (the sidecar folder is named after it). */
  readonly planBase: string;
}

type Mode = 'iommu' | 'identity';

function chooseMode(a: Analysis): Mode {
  const m = a.machine.iommu;
  return m.on || m.firmware === 'dmar' || m.firmware === 'ivrs' ? 'iommu' : 'identity';
}

function verdictOf(r: DeviceReport, mode: Mode): DeviceReport['iommu'] {
  return mode === 'iommu' ? r.iommu : r.identity;
}

function blockers(r: DeviceReport, mode: Mode): string[] {
  return verdictOf(r, mode).facts.filter((f) => f.level === 'block').map((f) => f.text);
}

export function passPlan(req: PassPlanRequest): GeneratedPlan {
  const { snapshot: s, analysis: a } = req;
  const mode = chooseMode(a);
  const pci = new HostPci(s);
  const dir = sidecarName(req.planBase);
  const differences: Difference[] = [];
  const summary: string[] = [];
  const reports = new Map(a.devices.map((r) => [r.device, r]));
  for (const d of [...(req.pass ?? []), ...req.keep]) if (!reports.has(d)) throw new UsageError(`${d}: no such function in ${s.source}`);

  // Which functions go to the guest.
  let passed: DeviceReport[];
  if (req.pass !== undefined) {
    passed = req.pass.map((d) => reports.get(d)!);
    const problems = passed.flatMap((r) => (r.role === 'platform' ? [`${r.device} is a bridge or chipset function`] : blockers(r, mode).map((b) => `${r.device}: ${b}`)));
    // A well-formed request the machine's facts rule out: a diagnosed refusal (exit 1), not a usage error.
    if (problems.length > 0) throw new InputError(`cannot pass ${problems.length === 1 ? 'it' : 'them'} (${mode === 'iommu' ? 'with the IOMMU' : 'identity, without an IOMMU'}): ${problems.join('; ')}`, { input: '--pass' });
  } else {
    passed = a.devices.filter((r) => r.role === 'endpoint' && !req.keep.includes(r.device) && r.hostUse.length === 0 && verdictOf(r, mode).outcome !== 'no');
  }
  const kept = a.devices.filter((r) => r.role === 'endpoint' && !passed.includes(r));
  for (const r of kept) {
    const why = req.keep.includes(r.device)
      ? 'you asked to keep it (--keep)'
      : r.hostUse.length > 0
        ? `the host uses it: ${r.hostUse.map((u) => u.detail).join('; ')}`
        : req.pass !== undefined
          ? 'not named in --pass'
          : blockers(r, mode).join('; ') || 'the analysis rules it out';
    if (req.p2v) differences.push({ what: `${r.device} stays with the host and is hidden from the guest`, why });
    summary.push(`kept by the host: ${r.device}: ${why}`);
  }

  // With an IOMMU the whole group goes: endpoints of a passed device's group that the plan keeps cannot be used by the host meanwhile.
  if (mode === 'iommu') {
    for (const r of passed) {
      for (const m of r.group?.members ?? []) {
        const other = reports.get(m.device);
        if (other?.role === 'endpoint' && !passed.includes(other)) summary.push(`${m.device} shares ${r.device}'s IOMMU group: it must stay unbound (no host driver) while the guest runs`);
      }
    }
  }

  const plan: Record<string, unknown> = { name: `${req.p2v ? 'p2v' : 'pass-through'} of ${s.source}` };
  const files: PlanFile[] = [];

  // Memory.
  const memory: Record<string, unknown> = { size: formatSize(req.memory) };
  const machine: Record<string, unknown> = {};
  if (mode === 'identity') {
    if (s.memory.memmap === undefined) throw new UsageError(`${s.source} has no memory map (/sys/firmware/memmap): an identity layout is carved from it`);
    memory.layout = 'identity';
    files.push(memmapFile(dir, s.memory.memmap));
    machine.hostMap = `${dir}/host-e820.json`;
    summary.push(`memory: identity layout of ${formatSize(req.memory)} carved from the host's map (no IOMMU: device DMA reaches machine addresses)`);
  } else {
    summary.push(`memory: ${formatSize(req.memory)} ordinary layout (the IOMMU translates device DMA)`);
  }
  plan.memory = memory;

  // PCI: the host's topology for P2V (so passed devices keep their addresses), the monitor's bus otherwise.
  const pciSection: Record<string, unknown> = {};
  const backendOf = (r: DeviceReport): string => (mode === 'iommu' ? 'vfio' : (verdictOf(r, mode).backend ?? a.machine.identityBackends[0] ?? 'uio'));
  const passedFns = passed.map((r) => pci.functions.find((f) => f.name === r.device)!);
  const entries: Array<Record<string, unknown>> = [];
  if (req.p2v) {
    const capture = s.pci.capture;
    if (capture === undefined) throw new UsageError(`${s.source} holds no PCI config space to reproduce the machine from`);
    const passedNames = new Set(passed.map((r) => r.device));
    const baseFns = capture.functions.filter((c) => !passedNames.has(formatBdf(c.bdf, true)));
    files.push(...pciFiles(dir, baseFns, s));
    // The monitor's i440FX and PIIX3 take 00:00.0 and 00:01.0.
    const used = new Set<number>();
    for (const c of capture.functions) if (c.bdf.segment === 0 && c.bdf.bus === 0) used.add(c.bdf.device);
    let nextFree = 2;
    const freeSlot = (): number => {
      while (used.has(nextFree) || CHIPSET_DEVICES.includes(nextFree)) nextFree++;
      if (nextFree > 31) throw new UsageError('no free slot on root bus 00 for the functions the monitor\'s chipset displaces');
      used.add(nextFree);
      return nextFree;
    };
    const moved = new Map<number, number>();
    const inChipsetSlot = (b: Bdf): boolean => b.segment === 0 && b.bus === 0 && CHIPSET_DEVICES.includes(b.device);
    // A bridge in a chipset slot with passed functions below it (an Intel desktop's PEG port at
    // 00:01.0, its GPU behind) moves to a free slot with what is below it, as pci.real entries;
    // the passed functions follow it by its new name. What the host keeps down there is left out.
    const real: Array<Record<string, unknown>> = [];
    const realName = new Map<string, string>();
    const outOfHostPci = new Set<string>();
    const realEntryName = (b: Bdf): string => `h_${hex2(b.bus)}_${hex2(b.device)}_${b.fn}`;
    const placeBelow = (bridge: HostFunction): void => {
      for (const x of pci.functions.filter((y) => pci.parent(y) === bridge)) {
        outOfHostPci.add(x.name);
        if (passedNames.has(x.name) || kept.some((k) => k.device === x.name)) continue;
        realName.set(x.name, realEntryName(x.facts.bdf));
        real.push({ name: realEntryName(x.facts.bdf), dump: `${dir}/pci`, bdf: x.name, at: `${realName.get(bridge.name)!}/${hex2(x.facts.bdf.device)}.${x.facts.bdf.fn}` });
        placeBelow(x);
      }
    };
    for (const f of pci.sorted()) {
      const b = f.facts.bdf;
      if (!inChipsetSlot(b) || passedNames.has(f.name) || !pci.below(f).some((x) => passedNames.has(x.name))) continue;
      if (!moved.has(b.device)) moved.set(b.device, freeSlot());
      const at = `00:${hex2(moved.get(b.device)!)}.${b.fn}`;
      outOfHostPci.add(f.name);
      realName.set(f.name, realEntryName(b));
      real.push({ name: realEntryName(b), dump: `${dir}/pci`, bdf: f.name, at });
      placeBelow(f);
      differences.push({ what: `the bridge ${f.name} is at ${at} in the guest, with what is below it`, why: `the monitor's chipset takes 00:0${b.device}.0, and passed functions sit below it` });
    }
    machine.hostPci = { capture: `${dir}/pci`, ...(outOfHostPci.size > 0 ? { functions: baseFns.map((c) => formatBdf(c.bdf, true)).filter((n) => !outOfHostPci.has(n)) } : {}) };
    if (real.length > 0) pciSection.real = real;
    const hide: Array<Record<string, unknown>> = [];
    for (const r of kept) if (baseFns.some((c) => formatBdf(c.bdf, true) === r.device) && !outOfHostPci.has(r.device)) hide.push({ bdf: r.device });
    for (const c of baseFns) {
      if (!inChipsetSlot(c.bdf) || outOfHostPci.has(formatBdf(c.bdf, true))) continue;
      if (!hide.some((h) => h.bdf === formatBdf(c.bdf, true))) hide.push({ bdf: formatBdf(c.bdf, true) });
      differences.push({ what: `the host's ${formatBdf(c.bdf, true)} is hidden`, why: `the monitor's own chipset sits at 00:0${c.bdf.device}.0 (i440FX host bridge, PIIX3 ISA bridge)` });
    }
    for (const f of passedFns) {
      const b = f.facts.bdf;
      const parent = pci.parent(f);
      let at: string;
      if (parent !== undefined) at = `${realName.get(parent.name) ?? formatBdf(parent.facts.bdf)}/${hex2(b.device)}.${b.fn}`;
      else if (b.segment === 0 && b.bus === 0 && CHIPSET_DEVICES.includes(b.device)) {
        if (!moved.has(b.device)) moved.set(b.device, freeSlot());
        at = `00:${hex2(moved.get(b.device)!)}.${b.fn}`;
        differences.push({ what: `${f.name} is at ${at} in the guest`, why: `the monitor's chipset takes 00:0${b.device}.0` });
      } else at = formatBdf(b, b.segment !== 0);
      entries.push({ name: entryName(f.facts), host: f.name, at, backend: backendOf(passed.find((r) => r.device === f.name)!), rom: 'auto' });
    }
    for (const f of passedFns) {
      // A function whose slot's function 0 stays hidden would be hidden with it.
      if (f.facts.bdf.fn === 0) continue;
      const f0 = pci.slotSiblings(f).find((x) => x.facts.bdf.fn === 0);
      if (f0 !== undefined && !passedFns.includes(f0) && hide.some((h) => h.bdf === f0.name)) {
        differences.push({ what: `${f.name} needs its slot's function 0, which the host keeps`, why: 'a slot without function 0 is empty to a guest: give the plan another slot for it (at:)' });
      }
    }
    if (hide.length > 0) pciSection.hide = hide;
    // ACPI: the host's own tables, what the host keeps hidden from them.
    if (s.acpi.tables !== undefined && s.acpi.images.length > 0) {
      files.push(...acpiFiles(dir, s));
      machine.acpiTables = `${dir}/acpi`;
      const rules = tableRules(s, differences);
      plan.acpi = { tables: 'host', ...(rules.length > 0 ? { rules } : {}), pciHidden: { references: 'neutralize' } };
      const mcfg = s.acpi.tables.find((t) => t.table.kind === 'mcfg')?.table;
      const base = mcfg?.kind === 'mcfg' ? mcfg.allocations[0]?.baseAddress : undefined;
      if (base !== undefined && base % (1n << 20n) === 0n && base + (256n << 20n) <= 0xfec0_0000n) machine.ecamBase = `0x${base.toString(16)}`;
      else if (base !== undefined) differences.push({ what: `the guest's ECAM window is at the monitor's 0xb0000000, not the host's 0x${base.toString(16)} (the MCFG still names the host's)`, why: 'the monitor decodes a 256-bus window that must end below the IOAPIC' });
      madtCpus(s, machine, differences, 'the host\'s');
    } else {
      differences.push({ what: 'the guest gets hvmpt\'s generated ACPI tables', why: 'the collection holds no ACPI tables (collect as root)' });
    }
    differences.push({ what: 'the guest\'s chipset is the monitor\'s i440FX and PIIX3; the host\'s host bridge, LPC and other chipset functions are replays of their captured config space', why: 'hvmpt\'s monitor emulates a PC of its own; only the functions passed through are the real hardware' });
    const ram = s.memory.memmap === undefined ? undefined : totalOfType(s.memory.memmap);
    differences.push({ what: `the guest has ${formatSize(req.memory)} of RAM${ram === undefined ? '' : `; the host has ${formatSize(ram)}`}`, why: 'the guest gets what --memory gives it (an identity layout carves it from the host)' });
  } else {
    // The monitor's bus: passed devices on root bus 00 from slot 2, functions of one device kept together.
    const bySlot = new Map<string, HostFunction[]>();
    for (const f of [...passedFns].sort((x, y) => compareBdf(x.facts.bdf, y.facts.bdf))) {
      const k = `${f.facts.bdf.segment}:${f.facts.bdf.bus}:${f.facts.bdf.device}`;
      bySlot.set(k, [...(bySlot.get(k) ?? []), f]);
    }
    let slot = 2;
    for (const fns of bySlot.values()) {
      if (slot > 31) throw new UsageError('more devices than the guest\'s root bus has slots (30): name fewer with --pass');
      // A slot whose function 0 stays home gets its functions renumbered from 0, or the guest would see none of them.
      const hasF0 = fns.some((f) => f.facts.bdf.fn === 0);
      for (const [i, f] of fns.entries()) {
        const fn = hasF0 ? f.facts.bdf.fn : i;
        if (fn !== f.facts.bdf.fn) differences.push({ what: `${f.name} is function ${fn} of its guest slot`, why: 'its own slot\'s function 0 is not passed, and a slot without function 0 is empty' });
        entries.push({ name: entryName(f.facts), host: f.name, at: `00:${hex2(slot)}.${fn}`, backend: backendOf(passed.find((r) => r.device === f.name)!), rom: 'auto' });
      }
      slot++;
    }
  }
  if (entries.length > 0) pciSection.passthrough = entries;
  if (Object.keys(pciSection).length > 0) plan.pci = pciSection;
  if (Object.keys(machine).length > 0) plan.machine = machine;
  for (const e of entries) summary.push(`passed: ${String(e.host)} at ${String(e.at)} (${String(e.backend)})`);
  if (entries.length === 0) summary.push('passed: nothing (no function the host can spare is passable)');
  return { plan, files, differences, summary };
}

// ---------------------------------------------------------------- the hardware twin

export interface TwinRequest {
  /** The captured machine's PCI functions. */
  readonly capture: Capture;
  /** When the twin comes from a collection: its memory map, ACPI tables and sysfs resources. */
  readonly snapshot: HostSnapshot | undefined;
  /** The capture file the plan names in place (an lspci dump); undefined to write the config spaces beside the plan. */
  readonly captureFile: string | undefined;
  readonly memory: bigint;
  readonly planBase: string;
}

export function twinPlan(req: TwinRequest): GeneratedPlan {
  const dir = sidecarName(req.planBase);
  const files: PlanFile[] = [];
  const differences: Difference[] = [];
  const summary: string[] = [];
  const cap = req.capture;
  const s = req.snapshot;
  const dumpPath = req.captureFile ?? `${dir}/pci`;
  if (req.captureFile === undefined && s !== undefined) files.push(...pciFiles(dir, cap.functions, s));
  const name = (c: CapturedFunction): string => `h_${c.bdf.segment === 0 ? '' : `${c.bdf.segment.toString(16)}_`}${hex2(c.bdf.bus)}_${hex2(c.bdf.device)}_${c.bdf.fn}`;
  const isBridge = (c: CapturedFunction): boolean => [1, 2].includes((c.bytes[HEADER_TYPE] ?? 0) & 0x7f);
  const childrenOf = (c: CapturedFunction): CapturedFunction[] => {
    const sec = c.bytes[SECONDARY_BUS];
    return sec === undefined || sec === 0 || sec === c.bdf.bus ? [] : cap.functions.filter((x) => x.bdf.segment === c.bdf.segment && x.bdf.bus === sec);
  };
  // Root-bus functions in the monitor's chipset slots move to free slots; the host bridge at 00:00.0 becomes the monitor's.
  const rootZero = cap.functions.filter((c) => c.bdf.segment === 0 && c.bdf.bus === 0);
  const used = new Set(rootZero.map((c) => c.bdf.device));
  let next = 2;
  const free = (): number => {
    while (used.has(next) || CHIPSET_DEVICES.includes(next)) next++;
    if (next > 31) throw new UsageError('no free slot on root bus 00 for the functions the monitor\'s chipset displaces');
    used.add(next);
    return next;
  };
  const hide: Array<Record<string, unknown>> = [];
  const real: Array<Record<string, unknown>> = [];
  const excluded = new Set<CapturedFunction>();
  const slotMap = new Map<number, number>();
  const place = (c: CapturedFunction, at: string): void => {
    excluded.add(c);
    real.push({ name: name(c), dump: dumpPath, bdf: formatBdf(c.bdf, cap.withDomains), at });
    for (const child of childrenOf(c)) place(child, `${name(c)}/${hex2(child.bdf.device)}.${child.bdf.fn}`);
  };
  for (const c of rootZero.sort((x, y) => compareBdf(x.bdf, y.bdf))) {
    if (!CHIPSET_DEVICES.includes(c.bdf.device)) continue;
    const hostBridge = c.bdf.device === 0 && c.bdf.fn === 0 && readLE(c.bytes, CLASS_DEVICE, 2) === HOST_BRIDGE_CLASS;
    if (hostBridge) {
      hide.push({ bdf: formatBdf(c.bdf, cap.withDomains) });
      differences.push({ what: `${formatBdf(c.bdf)} (the host bridge) is the monitor's i440FX (8086:1237), not the captured one`, why: 'the root bus\'s own chipset is the monitor\'s: it decodes config cycles, PAM and SMRAM' });
      continue;
    }
    if (!slotMap.has(c.bdf.device)) slotMap.set(c.bdf.device, free());
    const at = `00:${hex2(slotMap.get(c.bdf.device)!)}.${c.bdf.fn}`;
    place(c, at);
    differences.push({ what: `${formatBdf(c.bdf)} is at ${at}${isBridge(c) ? ', with everything behind it' : ''}`, why: `the monitor's ${c.bdf.device === 0 ? 'i440FX' : 'PIIX3'} takes slot 00:0${c.bdf.device}` });
  }
  differences.push({ what: 'root bus 00 has the monitor\'s i440FX host bridge at 00:00.0 and PIIX3 ISA bridge at 00:01.0', why: 'they are the guest\'s chipset: config cycles, PAM, SMRAM and the PIRQ routers SeaBIOS and the DSDT use' });
  // SeaBIOS sizes a CardBus bridge's bus and window registers as if they were BARs, asks for
  // gigabytes and stops: the twin leaves CardBus bridges, and the cards behind them, out. The
  // other functions of a hidden function 0's slot move to a free slot of the same bus.
  for (const c of cap.functions) {
    if (((c.bytes[HEADER_TYPE] ?? 0) & 0x7f) !== 2 || excluded.has(c)) continue;
    hide.push({ bdf: formatBdf(c.bdf, cap.withDomains) });
    const behind = cap.functions.filter((x) => x.bdf.segment === c.bdf.segment && x.bdf.bus >= (c.bytes[SECONDARY_BUS] ?? 256) && x.bdf.bus <= (c.bytes[SUBORDINATE_BUS] ?? 0));
    differences.push({ what: `the CardBus bridge ${formatBdf(c.bdf)}${behind.length > 0 ? ` and the card${behind.length > 1 ? 's' : ''} behind it (${behind.map((x) => formatBdf(x.bdf)).join(', ')})` : ''} ${behind.length > 0 ? 'are' : 'is'} hidden`, why: 'the guest\'s SeaBIOS takes a CardBus bridge\'s bus and window registers for BARs and runs out of address space' });
    if (c.bdf.fn !== 0) continue;
    const mates = cap.functions.filter((x) => x !== c && x.bdf.segment === c.bdf.segment && x.bdf.bus === c.bdf.bus && x.bdf.device === c.bdf.device && ((x.bytes[HEADER_TYPE] ?? 0) & 0x7f) !== 2);
    if (mates.length === 0) continue;
    const onBus = new Set(cap.functions.filter((x) => x.bdf.segment === c.bdf.segment && x.bdf.bus === c.bdf.bus).map((x) => x.bdf.device));
    const root = c.bdf.segment === 0 && c.bdf.bus === 0;
    let slot = root ? 2 : 0;
    while (onBus.has(slot) || (root && (used.has(slot) || CHIPSET_DEVICES.includes(slot)))) slot++;
    if (slot > 31) continue;
    if (root) used.add(slot);
    const parent = cap.functions.find((p) => p.bdf.segment === c.bdf.segment && [1, 2].includes((p.bytes[HEADER_TYPE] ?? 0) & 0x7f) && p.bytes[SECONDARY_BUS] === c.bdf.bus && p.bdf.bus !== c.bdf.bus);
    if (!root && parent === undefined) continue;
    mates.forEach((m, i) => {
      const at = root ? `00:${hex2(slot)}.${i}` : `${excluded.has(parent!) ? name(parent!) : formatBdf(parent!.bdf, cap.withDomains)}/${hex2(slot)}.${i}`;
      excluded.add(m);
      real.push({ name: name(m), dump: dumpPath, bdf: formatBdf(m.bdf, cap.withDomains), at });
      differences.push({ what: `${formatBdf(m.bdf)} is function ${i} of slot ${hex2(slot)} on its bus`, why: `its slot's function 0, the CardBus bridge ${formatBdf(c.bdf)}, is hidden, and a slot without function 0 is empty` });
    });
  }
  const functions = cap.functions.filter((c) => !excluded.has(c)).map((c) => formatBdf(c.bdf, cap.withDomains));
  const machine: Record<string, unknown> = { hostPci: { capture: dumpPath, ...(excluded.size > 0 ? { functions } : {}) } };
  const pciSection: Record<string, unknown> = {};
  if (hide.length > 0) pciSection.hide = hide;
  if (real.length > 0) pciSection.real = real;
  const sizes = cap.functions.every((c) => c.barSizes.size > 0 || usedBars(c) === 0);
  if (!sizes) {
    pciSection.unknownBarSize = 'alignment';
    differences.push({ what: 'BARs whose size the capture lacks are sized by their address\'s alignment', why: 'a hex dump without lspci -v\'s [size=] lines does not say; the alignment is an upper bound, so the guest gets at least the room the device decodes' });
  }
  const segments = [...new Set(cap.functions.map((c) => c.bdf.segment))].filter((n) => n !== 0);
  if (segments.length > 0) {
    differences.push({ what: `the functions of PCI segment${segments.length > 1 ? 's' : ''} ${segments.map((n) => n.toString(16).padStart(4, '0')).join(', ')} are composed but no guest reaches them`, why: 'the monitor serves one segment (0) through CF8/CFC and its ECAM window' });
  }
  const roots = new Set(cap.functions.filter((c) => c.bdf.segment === 0 && !cap.functions.some((p) => p.bdf.segment === 0 && [1, 2].includes((p.bytes[HEADER_TYPE] ?? 0) & 0x7f) && p.bytes[SECONDARY_BUS] === c.bdf.bus && p.bdf.bus !== c.bdf.bus)).map((c) => c.bdf.bus));
  roots.delete(0);
  if (roots.size > 0) {
    differences.push({ what: `root bus${roots.size > 1 ? 'es' : ''} ${[...roots].map(hex2).join(', ')} (another host bridge) ${roots.size > 1 ? 'are' : 'is'} composed, but the guest's firmware and OS look below bus 00 only`, why: 'the monitor\'s generated DSDT describes one host bridge, \\_SB.PCI0' });
  }
  differences.push({ what: 'every function is a replay of its captured config space: BARs are backed by memory, and nothing behind them behaves like the device', why: 'a twin has no hardware; drivers see the registers as captured' });
  differences.push({ what: 'bus numbers are the guest firmware\'s', why: 'SeaBIOS numbers the bridges again, depth first; the tree is the captured one' });
  const plan: Record<string, unknown> = { name: `twin of ${cap.source}` };
  const memory: Record<string, unknown> = { size: formatSize(req.memory) };
  if (s?.memory.memmap !== undefined) {
    files.push(memmapFile(dir, s.memory.memmap));
    // A twin runs on another machine: none of the captured RAM need stay with a host, but one region must hold it all.
    const block = largestRamBlock(s.memory.memmap);
    const size = req.memory < block ? req.memory : block;
    if (size === 0n) throw new UsageError(`${s.source}: its memory map has no usable RAM above 1 MiB for the twin`);
    memory.size = formatSize(size);
    memory.layout = 'identity';
    memory.identity = { hostKeep: 0 };
    machine.hostMap = `${dir}/host-e820.json`;
    differences.push({ what: `the guest's E820 mirrors the captured machine's, with ${formatSize(size)} of its RAM in one region (it had ${formatSize(totalOfType(s.memory.memmap))})`, why: 'an identity layout on the captured map keeps its holes and reserved ranges where they were' });
  } else {
    differences.push({ what: 'the guest\'s E820 is the monitor\'s ordinary one', why: 'the capture has no memory map' });
  }
  plan.memory = memory;
  if (s !== undefined && s.acpi.tables !== undefined && s.acpi.images.length > 0) {
    files.push(...acpiFiles(dir, s));
    machine.acpiTables = `${dir}/acpi`;
    const rules = tableRules(s, differences);
    plan.acpi = { tables: 'host', ...(rules.length > 0 ? { rules } : {}), pciHidden: { references: 'neutralize' } };
    madtCpus(s, machine, differences, 'the captured');
  } else {
    differences.push({ what: 'the guest gets hvmpt\'s generated ACPI tables (its DSDT describes the replayed bus)', why: s === undefined ? 'an lspci dump has no ACPI tables' : 'the collection holds no ACPI tables (collect as root)' });
  }
  if (Object.keys(pciSection).length > 0) plan.pci = pciSection;
  plan.machine = machine;
  summary.push(`twin: ${cap.functions.length} functions replayed from ${cap.source}${excluded.size > 0 ? ` (${excluded.size} moved)` : ''}${hide.length > 0 ? `, ${hide.length} replaced by the monitor's chipset` : ''}`);
  return { plan, files, differences, summary };
}

/** The largest run of usable RAM above 1 MiB, in whole 2 MiB pages (what one identity region can take). */
function largestRamBlock(map: E820Map): bigint {
  const MiB = 1n << 20n;
  let best = 0n;
  for (const e of map.entries) {
    if (e.type !== 'usable') continue;
    const start = ((e.start > MiB ? e.start : MiB) + 2n * MiB - 1n) & ~(2n * MiB - 1n);
    const end = e.end & ~(2n * MiB - 1n);
    if (end > start && end - start > best) best = end - start;
  }
  return best;
}

/** BAR registers in use (a function with none needs no sizes). */
function usedBars(c: CapturedFunction): number {
  const type = (c.bytes[HEADER_TYPE] ?? 0) & 0x7f;
  return decodeCapturedBars((o) => readLE(c.bytes, o, 4), type, () => false).filter((b) => b.kind !== 'rom').length;
}
