import { HvmptError } from '../errors.js';
import { DEFAULT_IOAPIC, GuestFactsError, type GuestAcpiFacts, type PciDeviceFact, type PciFacts, type SsdtFact } from '../hw/acpi/generate/facts.js';
import { generateGuestTables, type GeneratedTables } from '../hw/acpi/generate/generate.js';
import { pciFactsFromTopology } from '../hw/acpi/generate/pci.js';
import { HEADER_SIZE, readTableHeader, type GenericAddress } from '../hw/acpi/tables/index.js';
import { applyRules, loadWorld, worldNamespace, type OutputTable, type RewriteResult } from '../hw/acpi/world/index.js';
import { ACPI_PM_BASE, ACPI_PM_LENGTH } from '../hw/chipset/acpi-pm.js';
import { GPE0_BASE, PCIHP_BASE } from '../hw/chipset/pci-hotplug.js';
import { CMOS, CMOS_INDEX_PORT } from '../hw/chipset/cmos.js';
import { DEBUG_EXIT_PORT, DEBUGCON_PORT, POST_PORT } from '../hw/chipset/debug-ports.js';
import { FW_CFG_PORT_COUNT, FW_CFG_PORT_SELECTOR, type FwCfgFile } from '../hw/chipset/fw-cfg.js';
import { I8042_DATA_PORT, I8042_STATUS_PORT, SYSTEM_CONTROL_PORT_A } from '../hw/chipset/i8042.js';
import { RESET_CONTROL_PORT } from '../hw/chipset/reset-control.js';
import { COM1_IRQ, COM1_PORT } from '../hw/chipset/uart8250.js';
import { CF8_PORT, CF8_PORT_COUNT } from '../hw/pci/cf8.js';
import { AcpiLinkError, linkAcpiTables } from '../hw/chipset/acpi-table-loader.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import type { ComposedPci } from '../hw/pci/compose.js';
import { acpiRules } from '../plan/acpi.js';
import type { PlanFiles } from '../plan/files.js';
import { PlanError, type PlanProblem } from '../plan/load.js';
import type { Plan } from '../plan/schema.js';

/**
 * The guest's ACPI tables on hvmpt's monitor, as the plan's `acpi` section chooses them:
 *
 * - `tables: generated` (the default): hvmpt's own tables, generated in-process from the
 *   machine the monitor really emulates — its vCPUs, the PM block it serves, the ECAM window
 *   it decodes, the composed PCI bus (hidden functions are on no route, so no table names
 *   them) with its INTx routes through the PIIX3 PIRQ router, the host bridge's windows the
 *   firmware places BARs in, COM1 — plus the SSDTs `acpi.generate.ssdts` adds and the host
 *   tables `acpi.expose` picks from `machine.acpiTables` (after `acpi.rules` and `pci.hide`);
 * - `tables: host`: `machine.acpiTables` rewritten by `acpi.rules` and `pci.hide`, linked as
 *   they are; the monitor serves the PM block where their FADT puts it, when it can.
 *
 * Either way every function `pci.hide` hides is absent from every table the guest gets.
 */

export interface MachineAcpiFacts {
  readonly vcpus: number;
  /** The ECAM window the monitor decodes. */
  readonly ecam: { readonly base: bigint; readonly buses: number };
  /** The bus as composed for the guest (hidden functions included, marked). */
  readonly pci: ComposedPci;
  /** The host bridge's windows (see guestPciWindows). */
  readonly windows: GuestWindows;
  /** Root slots that take a device while the guest runs (ACPI PCI hot-plug), when the plan names some. */
  readonly hotplugSlots?: readonly number[];
}

export interface GuestAcpiTable {
  readonly signature: string;
  readonly oemId: string;
  readonly oemTableId: string;
  /** generated: hvmpt's own; plan: an SSDT the plan adds; host: from machine.acpiTables. */
  readonly origin: 'generated' | 'plan' | 'host';
  /** Where it came from, for people: `dsdt`, `acpi.generate.ssdts[0]`, `host ssdt3`. */
  readonly from: string;
  /** What the table loader is given (the loader then patches the FADT's DSDT and FACS pointers). */
  readonly bytes: Uint8Array;
}

export interface GuestAcpi {
  readonly source: 'generated' | 'host';
  /** In the order the XSDT lists them, then the DSDT and the FACS (which the FADT points to). */
  readonly tables: readonly GuestAcpiTable[];
  /** The generator's output (routes, facts, typed tables) for generated tables. */
  readonly generated: GeneratedTables | undefined;
  /** etc/acpi/rsdp, etc/acpi/tables, etc/table-loader. */
  readonly files: readonly FwCfgFile[];
  /** Where the monitor serves the PM block, and the \_S5 sleep type that powers off. */
  readonly pm: { readonly base: number; readonly s5SleepType: number; readonly sciIrq?: number };
  /** ACPI PCI hot-plug as the tables declare it (generated tables only). */
  readonly hotplug?: { readonly base: number; readonly gpeBase: number; readonly slots: readonly number[] };
  /** The host FADT's GPE blocks, which the monitor serves quiet (hw/chipset/quiet-gpe.ts): host tables only. */
  readonly quietGpe?: ReadonlyArray<{ readonly base: number; readonly length: number }>;
  readonly summary: readonly string[];
}

/**
 * The monitor's fixed ports: a PM block must not land on them. The devices in hvmpt are named
 * by the constants the machine registers them with; the PICs, the PIT and the ELCR are KVM's.
 */
const MONITOR_PORTS: ReadonlyArray<readonly [number, number, string]> = [
  [0x20, 2, 'the master PIC'],
  [0x40, 4, 'the PIT'],
  [I8042_DATA_PORT, 1, 'the i8042'],
  [I8042_STATUS_PORT, 1, 'the i8042'],
  [CMOS_INDEX_PORT, 2, 'the CMOS'],
  [POST_PORT, 1, 'the POST port'],
  [SYSTEM_CONTROL_PORT_A, 1, 'port 0x92'],
  [0xa0, 2, 'the slave PIC'],
  [DEBUG_EXIT_PORT, 1, 'isa-debug-exit'],
  [COM1_PORT, 8, 'COM1'],
  [DEBUGCON_PORT, 1, 'the debug console'],
  [0x4d0, 2, 'the ELCR'],
  [FW_CFG_PORT_SELECTOR, FW_CFG_PORT_COUNT, 'fw_cfg'],
  [CF8_PORT, CF8_PORT_COUNT, 'PCI configuration'],
];
/** SeaBIOS puts I/O BARs from here up. */
const PCI_IO_START = 0xc000;

/** Tables the generator owns; a host copy would contradict it. */
const GENERATED_SIGNATURES = new Set(['FACP', 'FACS', 'DSDT', 'APIC', 'MCFG', 'HPET', 'RSDP', 'RSDT', 'XSDT']);
/** The host's IOMMU, by host bus numbers: no guest gets them. */
const IOMMU_SIGNATURES = new Set(['DMAR', 'IVRS']);

const hex = (v: number | bigint): string => '0x' + v.toString(16);

function headerOf(bytes: Uint8Array): { oemId: string; oemTableId: string } {
  if (bytes.length < HEADER_SIZE) return { oemId: '', oemTableId: '' };
  const h = readTableHeader(bytes);
  return { oemId: h.oemId, oemTableId: h.oemTableId };
}

function pmConflict(base: number): string | undefined {
  return portConflict('the PM block', base, ACPI_PM_LENGTH);
}

function portConflict(what: string, base: number, length: number, others: ReadonlyArray<readonly [number, number, string]> = []): string | undefined {
  const end = base + length;
  if (end > PCI_IO_START) return `${what} [${hex(base)}, ${hex(end)}) reaches the PCI I/O window at ${hex(PCI_IO_START)}`;
  const hit = [...MONITOR_PORTS, ...others].find(([p, n]) => base < p + n && p < end);
  return hit === undefined ? undefined : `${what} [${hex(base)}, ${hex(end)}) overlaps ${hit[2]} at ${hex(hit[0])}`;
}

/** The rewritten host tables: machine.acpiTables with pci.hide's functions and acpi.rules applied. */
function hostWorld(plan: Plan, files: PlanFiles, pci: ComposedPci): { result: RewriteResult; file: string } {
  const { path: file, tables: images } = files.acpiTables('machine.acpiTables');
  const rules = acpiRules({ section: plan.acpi ?? {}, file: files.planFile, files, pci });
  let world: ReturnType<typeof loadWorld>;
  try {
    world = loadWorld(images);
  } catch (err) {
    // A binary table is split and parsed only here: its faults are the file's, under the field that names it.
    if (err instanceof HvmptError) throw new PlanError(files.planFile, [{ path: 'machine.acpiTables', message: err.message }]);
    throw err;
  }
  return { result: applyRules(world, rules, files.planFile), file };
}

/** Orders the loader's input as the XSDT will list it (FADT first), then the DSDT and the FACS. */
function xsdtOrder(tables: GuestAcpiTable[]): GuestAcpiTable[] {
  const rank = (t: GuestAcpiTable): number => (t.signature === 'FACP' ? 0 : t.signature === 'DSDT' ? 2 : t.signature === 'FACS' ? 3 : 1);
  return tables.map((t, i) => ({ t, i })).sort((a, b) => rank(a.t) - rank(b.t) || a.i - b.i).map((x) => x.t);
}

function link(planFile: string, at: string, tables: readonly GuestAcpiTable[], oemId: string): FwCfgFile[] {
  try {
    // XSDT order is the loader's: it lists the FADT first, then the rest as given.
    return linkAcpiTables(tables.map((t) => t.bytes), { oemId }).files;
  } catch (err) {
    if (err instanceof AcpiLinkError) throw new PlanError(planFile, [{ path: at, message: err.detail }]);
    throw err;
  }
}

export function guestAcpi(plan: Plan, files: PlanFiles, machine: MachineAcpiFacts): GuestAcpi {
  const planFile = files.planFile;
  const section = plan.acpi;
  const source = section?.tables ?? 'generated';
  const problems: PlanProblem[] = [];
  if (source === 'host') {
    if (plan.machine.acpiTables === undefined) problems.push({ path: 'acpi.tables', message: 'host tables need machine.acpiTables (an acpidump, a tables directory or a .dat file)' });
    if (section?.generate !== undefined) problems.push({ path: 'acpi.generate', message: 'the guest gets the host\'s tables (acpi.tables: host); generate describes generated tables' });
    if (machine.hotplugSlots !== undefined) problems.push({ path: 'pci.hotplug', message: 'ACPI PCI hot-plug is declared in hvmpt\'s generated DSDT; the host\'s tables (acpi.tables: host) have none' });
    if (section?.expose !== undefined) problems.push({ path: 'acpi.expose', message: 'with acpi.tables: host the guest gets every host table the rules keep; expose picks host tables to add to generated ones' });
    if (problems.length > 0) throw new PlanError(planFile, problems);
    return hostTables(plan, files, machine);
  }
  if (plan.machine.acpiTables !== undefined && (section?.expose ?? []).length === 0) {
    problems.push({ path: 'machine.acpiTables', message: 'the guest gets hvmpt\'s generated tables: name the host tables it also gets in acpi.expose, or set acpi.tables: host to give it the host\'s' });
  }
  if (plan.machine.acpiTables === undefined && section?.rules !== undefined) problems.push({ path: 'acpi.rules', message: 'rules rewrite the host\'s tables, and the plan gives none (machine.acpiTables)' });
  if (plan.machine.acpiTables === undefined && section?.expose !== undefined) problems.push({ path: 'acpi.expose', message: 'there are no host tables to expose (machine.acpiTables)' });
  if (problems.length > 0) throw new PlanError(planFile, problems);
  return generatedTables(plan, files, machine);
}

function hostTables(plan: Plan, files: PlanFiles, machine: MachineAcpiFacts): GuestAcpi {
  const planFile = files.planFile;
  const { result, file } = hostWorld(plan, files, machine.pci);
  const tables = xsdtOrder(result.tables.map((t) => ({ signature: t.signature, ...headerOf(t.bytes), origin: 'host' as const, from: `host ${t.from}`, bytes: t.bytes })));
  const summary: string[] = [];
  summary.push(`ACPI: the host's tables from ${plan.machine.acpiTables} (${tables.map((t) => t.signature).join(' ')})${result.outcomes.length > 0 ? `, ${result.outcomes.length} rules applied` : ''}`);
  for (const o of result.outcomes) for (const d of o.done) summary.push(`ACPI: ${o.path}: ${d}`);
  // The monitor serves the PM block where the host's FADT puts it, if its layout is the PIIX4/ICH one it models.
  let pm = { base: ACPI_PM_BASE, s5SleepType: 0 };
  const fadt = result.tables.find((t) => t.signature === 'FACP')?.table;
  if (fadt?.kind === 'fadt') {
    const evt = fadt.pm1aEventBlock;
    const layout = evt !== 0 && fadt.pm1aControlBlock === evt + 4 && (fadt.pmTimerBlock === 0 || fadt.pmTimerBlock === evt + 8);
    const why = layout ? pmConflict(evt) : `its layout (event ${hex(evt)}, control ${hex(fadt.pm1aControlBlock)}, timer ${hex(fadt.pmTimerBlock)}) is not the PIIX4/ICH one the monitor models`;
    if (why === undefined) pm = { ...pm, base: evt };
    else summary.push(`ACPI: warning: the monitor cannot serve the host FADT's PM1a block: ${why}; it serves its own at ${hex(ACPI_PM_BASE)}, which the tables do not name, so an ACPI power-off will not reach it`);
  }
  // The host's GPE blocks answer quiet: the host chipset's events are not the guest's.
  const quietGpe: Array<{ base: number; length: number }> = [];
  if (fadt?.kind === 'fadt') {
    const blocks: Array<[string, number, number]> = [
      ['GPE0', fadt.gpe0Block || gasPort(fadt.xGpe0Block), fadt.gpe0BlockLength],
      ['GPE1', fadt.gpe1Block || gasPort(fadt.xGpe1Block), fadt.gpe1BlockLength],
    ];
    for (const [name, base, length] of blocks) {
      if (base === 0 || length === 0) continue;
      const why = portConflict(`the host FADT's ${name} block`, base, length, [[pm.base, ACPI_PM_LENGTH, 'the PM block'], ...quietGpe.map((q) => [q.base, q.length, 'GPE0'] as const)]);
      if (why === undefined) quietGpe.push({ base, length });
      else summary.push(`ACPI: warning: ${why}; its ports stay unclaimed (they read all ones, and the guest may see GPEs raised)`);
    }
    if (quietGpe.length > 0) summary.push(`ACPI: the host FADT's GPE blocks (${quietGpe.map((q) => `[${hex(q.base)}, ${hex(q.base + q.length)})`).join(', ')}) answer with no event raised`);
  }
  const s5 = s5SleepType(result.tables, file);
  if (s5 !== undefined) pm = { ...pm, s5SleepType: s5 };
  else summary.push('ACPI: warning: the host tables have no \\_S5 the monitor can read; it powers off on SLP_TYP 0');
  const mcfg = result.tables.find((t) => t.signature === 'MCFG')?.table;
  if (mcfg?.kind === 'mcfg' && !mcfg.allocations.some((a) => a.baseAddress === machine.ecam.base)) {
    summary.push(`ACPI: warning: the host MCFG describes ECAM at ${mcfg.allocations.map((a) => hex(a.baseAddress)).join(', ')}; the monitor decodes it at ${hex(machine.ecam.base)}`);
  }
  return { source: 'host', tables, generated: undefined, files: link(planFile, 'machine.acpiTables', tables, 'HVMPT'), pm, ...(quietGpe.length === 0 ? {} : { quietGpe }), summary };
}

/** A GPE block's port from the FADT's extended field, where it is in system I/O space. */
function gasPort(g: GenericAddress | undefined): number {
  return g !== undefined && g.spaceId === 1 && g.address <= 0xffffn ? Number(g.address) : 0;
}

/** \_S5's SLP_TYP for PM1a, from the rewritten tables' namespace. */
function s5SleepType(tables: readonly OutputTable[], file: string): number | undefined {
  const images = tables.filter((t) => t.table.kind === 'definitionBlock').map((t) => ({ name: t.name, origin: file, signature: t.signature, data: t.bytes }));
  const ns = worldNamespace(loadWorld(images));
  const v = ns.valueOf(ns.get('\\_S5_'));
  if (v?.kind !== 'Package') return undefined;
  const first = v.elements[0];
  return first?.kind === 'Integer' && first.value <= 7n ? Number(first.value) : undefined;
}

/**
 * The PCI facts for the monitor's bus: the chipset's i440FX is the host bridge (\_SB.PCI0) and
 * its PIIX3 the ISA bridge whose PIRQ registers the links drive; any other host or ISA bridge a
 * host capture brings is an ordinary function to the guest.
 */
function monitorPciFacts(pci: ComposedPci, windows: GuestWindows): PciFacts {
  const names = new Map(pci.entries.map((e) => [e.fn, e.fn.id]));
  const chipset = new Map(pci.entries.filter((e) => e.origin === 'chipset').map((e) => [e.fn.id, e.fn]));
  const facts = pciFactsFromTopology(pci.topology, { names, windows });
  const isChipset = (d: PciDeviceFact, id: string, device: number): boolean => d.device === device && d.fn === 0 && d.name === id && chipset.has(id);
  const devices = facts.devices.map((d): PciDeviceFact => {
    if (d.kind === 'host-bridge' && !isChipset(d, 'i440fx', 0)) return { ...d, kind: 'device' };
    if (d.kind === 'isa-bridge' && !isChipset(d, 'piix3', 1)) return { ...d, kind: 'device' };
    return d;
  });
  return { ...facts, devices };
}

/**
 * A hot-plug slot's device may use any of INTA-INTD: the _PRT routes all four pins of every
 * hot-plug slot (as QEMU's PIIX4 _PRT covers every slot), so a device added live finds its line.
 */
function withHotplugRoutes(facts: PciFacts, slots: readonly number[] | undefined): PciFacts {
  if (slots === undefined) return facts;
  const pins = [1, 2, 3, 4] as const;
  const have = new Set(facts.routes.map((r) => `${r.device}/${r.pin}`));
  const added = slots.flatMap((device) => pins.filter((pin) => !have.has(`${device}/${pin}`)).map((pin) => ({ device, pin })));
  return { ...facts, routes: [...facts.routes, ...added].sort((a, b) => a.device - b.device || a.pin - b.pin) };
}

function generatedTables(plan: Plan, files: PlanFiles, machine: MachineAcpiFacts): GuestAcpi {
  const planFile = files.planFile;
  const g = plan.acpi?.generate;
  const problems: PlanProblem[] = [];
  const at = (p: string): string => `acpi.generate.${p}`;
  if (g !== undefined) {
    if (g.cpus !== undefined && g.cpus !== machine.vcpus) problems.push({ path: at('cpus'), message: `the monitor runs ${machine.vcpus} vCPU${machine.vcpus === 1 ? '' : 's'} (machine.cpus); the MADT lists exactly the vCPUs there are` });
    if (g.ecam !== undefined && g.ecam !== false && g.ecam.base !== machine.ecam.base) {
      problems.push({ path: at('ecam.base'), message: `the monitor decodes ECAM at machine.ecamBase (${hex(machine.ecam.base)}); give one address` });
    }
    if (g.hpet !== undefined) problems.push({ path: at('hpet'), message: 'the monitor has no HPET' });
    if (g.ioApic?.id !== undefined && g.ioApic.id !== DEFAULT_IOAPIC.id) problems.push({ path: at('ioApic.id'), message: `KVM's in-kernel IOAPIC has ID ${DEFAULT_IOAPIC.id}` });
    if (g.ioApic?.address !== undefined && g.ioApic.address !== DEFAULT_IOAPIC.address) problems.push({ path: at('ioApic.address'), message: `KVM's in-kernel IOAPIC is at ${hex(DEFAULT_IOAPIC.address)}` });
    if (g.reset !== undefined && g.reset !== false) {
      if (g.reset.port !== undefined && g.reset.port !== RESET_CONTROL_PORT) problems.push({ path: at('reset.port'), message: `the monitor resets through ${hex(RESET_CONTROL_PORT)} (PIIX3 reset control)` });
      if (g.reset.value !== undefined && (g.reset.value & 0x04) === 0) problems.push({ path: at('reset.value'), message: `${hex(g.reset.value)} at ${hex(RESET_CONTROL_PORT)} does not reset (RST_CPU, bit 2, is clear)` });
    }
    if (g.rtc !== undefined && g.rtc !== false && g.rtc.century !== undefined && g.rtc.century !== CMOS.century) problems.push({ path: at('rtc.century'), message: `the monitor's CMOS keeps the century at ${hex(CMOS.century)}` });
    if (g.com1 !== undefined && g.com1 !== false) {
      if (g.com1.port !== undefined && g.com1.port !== COM1_PORT) problems.push({ path: at('com1.port'), message: `the monitor's COM1 is at ${hex(COM1_PORT)}` });
      if (g.com1.irq !== undefined && g.com1.irq !== COM1_IRQ) problems.push({ path: at('com1.irq'), message: `the monitor's COM1 raises IRQ ${COM1_IRQ}` });
    }
    if (g.pm?.base !== undefined) {
      const clash = pmConflict(g.pm.base);
      if (clash !== undefined) problems.push({ path: at('pm.base'), message: clash });
    }
    if (g.pm?.sciIrq !== undefined && [0, 1, 2, 4, 8, 12].includes(g.pm.sciIrq)) problems.push({ path: at('pm.sciIrq'), message: `IRQ ${g.pm.sciIrq} is the monitor's timer, keyboard, cascade, COM1, RTC or mouse line` });
    if (g.layout !== undefined) problems.push({ path: at('layout'), message: 'on hvmpt run the firmware places the tables (the table loader); layout is for hvmpt acpi generate' });
  }

  // SSDTs: the plan's own, then the host tables acpi.expose picks.
  const ssdts: SsdtFact[] = [];
  const ssdtPaths: string[] = [];
  const ssdtOrigins: Array<GuestAcpiTable['origin']> = [];
  (g?.ssdts ?? []).forEach((s, i) => {
    const p = at(`ssdts[${i}]`);
    if ('aml' in s) {
      ssdts.push(files.bytes(`${p}.aml`).bytes);
      ssdtPaths.push(`${p}.aml`);
      ssdtOrigins.push('plan');
    } else {
      ssdts.push({ kind: 'spec', body: s.body, path: p, ...(s.oemTableId === undefined ? {} : { oemTableId: s.oemTableId }) });
      ssdtPaths.push(p);
      ssdtOrigins.push('plan');
    }
  });
  if (problems.length > 0) throw new PlanError(planFile, problems);

  const summary: string[] = [];
  const exposedRaw: GuestAcpiTable[] = [];
  if (plan.machine.acpiTables !== undefined) {
    const { result } = hostWorld(plan, files, machine.pci);
    for (const o of result.outcomes) for (const d of o.done) summary.push(`ACPI: ${o.path}: ${d}`);
    (plan.acpi?.expose ?? []).forEach((sel, j) => {
      const p = `acpi.expose[${j}]`;
      const sig = sel.signature;
      if (GENERATED_SIGNATURES.has(sig)) {
        problems.push({ path: `${p}.signature`, message: `${sig} is one of hvmpt's generated tables; the guest cannot have two` });
        return;
      }
      if (IOMMU_SIGNATURES.has(sig)) {
        problems.push({ path: `${p}.signature`, message: `${sig} describes the host's IOMMU by host bus numbers; a guest gets none` });
        return;
      }
      const trim = (s: string): string => s.replace(/[\s\0]+$/, '');
      const hits = result.tables.filter((t) => {
        const h = headerOf(t.bytes);
        return t.signature === sig && (sel.oemId === undefined || trim(h.oemId) === trim(sel.oemId)) && (sel.oemTableId === undefined || trim(h.oemTableId) === trim(sel.oemTableId));
      });
      if (hits.length === 0) {
        const have = result.tables.map((t) => `${t.signature} ${trim(headerOf(t.bytes).oemTableId)}`).join(', ');
        problems.push({ path: p, message: `matches no table of ${plan.machine.acpiTables} after the rules (it has: ${have})` });
        return;
      }
      for (const t of hits) {
        if (t.signature === 'SSDT') {
          ssdts.push(t.bytes);
          ssdtPaths.push(p);
          ssdtOrigins.push('host');
          continue;
        }
        const leak = namesHidden(t.bytes, result.hiddenObjects) ?? spcrNamesHidden(t, machine.pci);
        if (leak !== undefined) {
          problems.push({ path: p, message: `host ${t.from} ${leak}, which the plan hides` });
          continue;
        }
        exposedRaw.push({ signature: t.signature, ...headerOf(t.bytes), origin: 'host', from: `host ${t.from}`, bytes: t.bytes });
      }
    });
    if (problems.length > 0) throw new PlanError(planFile, problems);
  }

  const facts: GuestAcpiFacts = {
    cpus: machine.vcpus,
    ...(g?.oem === undefined ? {} : { oem: g.oem }),
    ...(g?.ecam === false ? {} : { ecam: { base: machine.ecam.base, endBus: machine.ecam.buses - 1, ...(g?.ecam?.startBus === undefined ? {} : { startBus: g.ecam.startBus }), ...(g?.ecam?.endBus === undefined ? {} : { endBus: g.ecam.endBus }) } }),
    pm: { base: g?.pm?.base ?? ACPI_PM_BASE, s5SleepType: g?.pm?.s5SleepType ?? 0, ...(g?.pm?.sciIrq === undefined ? {} : { sciIrq: g.pm.sciIrq }) },
    ...(g?.reset === undefined ? {} : { reset: g.reset }),
    ...(g?.rtc === undefined ? {} : { rtc: g.rtc }),
    ...(g?.i8042 === undefined ? {} : { i8042: g.i8042 }),
    ...(g?.vga === undefined ? {} : { vga: g.vga }),
    ...(g?.com1 === undefined ? {} : { com1: g.com1 }),
    ...(g?.interrupts === undefined ? {} : { interrupts: g.interrupts }),
    ssdts,
    pci: withHotplugRoutes(monitorPciFacts(machine.pci, machine.windows), machine.hotplugSlots),
    ...(machine.hotplugSlots === undefined ? {} : { hotplug: { base: PCIHP_BASE, gpeBase: GPE0_BASE, slots: machine.hotplugSlots } }),
  };
  let generated: GeneratedTables;
  try {
    generated = generateGuestTables(facts);
  } catch (err) {
    if (!(err instanceof GuestFactsError)) throw err;
    const where = err.where.at ?? '';
    const ssdt = /^ssdts\[(\d+)\](.*)$/.exec(where);
    const path = ssdt !== null ? `${ssdtPaths[Number(ssdt[1])] ?? 'acpi.generate.ssdts'}${ssdt[2]}` : where.startsWith('acpi.') ? where : at(where);
    throw new PlanError(planFile, [{ path, message: err.detail }]);
  }
  const loader = generated.loaderTables;
  const firstSsdt = loader.length - ssdts.length;
  const names = ['FACP', 'FACS', 'DSDT'];
  const tables = xsdtOrder([
    ...loader.map((bytes, i): GuestAcpiTable => {
      const signature = Buffer.from(bytes.subarray(0, 4)).toString('latin1');
      const k = i - firstSsdt;
      const origin = k >= 0 ? ssdtOrigins[k]! : 'generated';
      return { signature, ...headerOf(bytes), origin, from: k >= 0 ? ssdtPaths[k]! : (names[i] ?? signature).toLowerCase(), bytes };
    }),
    ...exposedRaw,
  ]);
  const r = generated.facts;
  summary.unshift(
    `ACPI: hvmpt's generated tables (${tables.map((t) => t.signature).join(' ')}): ${machine.vcpus} vCPU${machine.vcpus === 1 ? '' : 's'}, PM block at ${hex(r.pm.base)}, ` +
      `${r.ecam === undefined ? 'no MCFG' : `MCFG at ${hex(r.ecam.base)}`}, _PRT for ${generated.routes.length} slot pins`,
  );
  return { source: 'generated', tables, generated, files: link(planFile, 'acpi', tables, r.oem.oemId), pm: { base: r.pm.base, s5SleepType: r.pm.s5SleepType, sciIrq: r.pm.sciIrq }, ...(r.hotplug === undefined ? {} : { hotplug: r.hotplug }), summary };
}

/** A raw host table's bytes naming a hidden object by path (a DBG2 or a vendor table can). */
function namesHidden(bytes: Uint8Array, hidden: readonly string[]): string | undefined {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  for (const path of hidden) {
    const segments = path.replace(/^\\/, '').split('.');
    const forms = [segments.join('.'), segments.map((s) => s.replace(/_+$/, '')).join('.')];
    const hit = forms.find((f) => f.length > 4 && text.includes(f));
    if (hit !== undefined) return `names ${path}`;
  }
  return undefined;
}

/** An SPCR names its console's PCI function by IDs and bus/device/function. */
function spcrNamesHidden(t: OutputTable, pci: ComposedPci): string | undefined {
  if (t.signature !== 'SPCR' || t.bytes.length < 0x47) return undefined;
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const deviceId = v.getUint16(0x40, true);
  const vendorId = v.getUint16(0x42, true);
  if (vendorId === 0xffff) return undefined;
  const hit = pci.hidden.find((e) => e.fn.read(0, 2) === vendorId && e.fn.read(2, 2) === deviceId);
  return hit === undefined ? undefined : `names PCI function ${hex(vendorId)}:${hex(deviceId)} (${hit.fn.id})`;
}
