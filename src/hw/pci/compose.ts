import { compareBdf, formatBdf, parseBdf, sameBdf, type Bdf } from './address.js';
import { allocateResources, type AllocationResult, type GuestWindows } from './allocator.js';
import { MemoryBackend, type ConfigBackend } from './backend.js';
import { readLE } from './endian.js';
import { standardRw1cMask } from './capabilities.js';
import type { Capture, CapturedFunction } from './capture.js';
import { buildEmulatedFunction, fakeBridgeSpec, type EmulatedFunctionSpec } from './emulated.js';
import { PciComposeError, PciError } from './errors.js';
import type { PciFunction } from './function.js';
import { buildRealFunction, type BarOverride, type CapabilityPolicy, type UnclaimedPolicy } from './real.js';
import { DEVICE_ID, HEADER_TYPE, SUBSYSTEM_ID, SUBSYSTEM_VENDOR_ID, HEADER_TYPE_BRIDGE, HEADER_TYPE_CARDBUS, PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS, VENDOR_ID } from './regs.js';
import { forwardsConfig, isBridge, PciTopology, type BusNode } from './topology.js';

/** Where a plan puts a function: a slot on a root bus, or a slot behind a bridge (by name or captured address). */
export type Location =
  | { readonly kind: 'root'; readonly segment: number; readonly bus: number; readonly device: number; readonly fn: number }
  | { readonly kind: 'behind'; readonly bridge: string; readonly device: number; readonly fn: number };

/** Every item below carries `path`, the plan path errors name. */
export interface HideRule {
  readonly bdf?: Bdf;
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly path: string;
}

export interface PlacedBridge {
  readonly name: string;
  readonly at: Location;
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly path: string;
}

export interface PlacedEmulated {
  readonly name: string;
  readonly at: Location;
  readonly spec: EmulatedFunctionSpec;
  readonly path: string;
}

export interface PlacedReal {
  readonly name: string;
  readonly at: Location;
  readonly capture: CapturedFunction;
  /** The capture file, for reports. */
  readonly source: string;
  readonly path: string;
  /**
   * The live device behind the function (a pass-through back-end's config space) instead of a
   * replay of `capture`; its layout must be the capture's (same BARs, sizes, capabilities).
   */
  readonly backend?: ConfigBackend;
  /** IDs the guest sees instead of the device's own. */
  readonly ids?: IdOverride;
}

/** Virtualized IDs of a real function (QEMU's x-pci-vendor-id and friends). */
export interface IdOverride {
  readonly vendorId?: number;
  readonly deviceId?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
}

/** Per-function policy for a real function: by captured address (`00:1f.3`) or plan name. */
export interface FunctionPolicy {
  readonly target: string;
  readonly bars?: readonly BarOverride[];
  readonly capabilities?: CapabilityPolicy;
  readonly unclaimed?: UnclaimedPolicy;
  readonly path: string;
}

export interface ComposeInput {
  /** The captured machine the view starts from (none for a guest built from the plan alone). */
  readonly base?: Capture;
  /**
   * Devices the caller builds in code and places before anything the plan adds (the monitor's
   * host bridge and ISA bridge). Hide rules never match them.
   */
  readonly chipset?: readonly PlacedEmulated[];
  readonly hide?: readonly HideRule[];
  readonly bridges?: readonly PlacedBridge[];
  readonly emulated?: readonly PlacedEmulated[];
  readonly real?: readonly PlacedReal[];
  readonly functions?: readonly FunctionPolicy[];
  /** The capability policy of every real function that has none of its own. */
  readonly capabilities?: CapabilityPolicy;
  readonly unclaimed?: UnclaimedPolicy;
  /** BARs whose size nobody knows: fixed at their captured address, or sized by address alignment. */
  readonly unknownBarSize?: 'fixed' | 'alignment';
  /** Renumber every bridge depth-first as firmware does (implied by plan bridges and by allocation). */
  readonly renumber?: boolean;
  /** Place every BAR and bridge window in these guest windows. */
  readonly allocation?: { readonly windows: GuestWindows; readonly path: string };
}

/** What each function in the composition is and where it came from. */
export interface ComposedEntry {
  readonly fn: PciFunction;
  /** `capture` for the base machine's functions, `chipset` for the caller's code-made devices, `plan` for what the plan added. */
  readonly origin: 'capture' | 'chipset' | 'plan';
  /** The captured address (base machine and plan real devices). */
  readonly capturedBdf?: Bdf;
  /** A capture file and place, or the plan path that made it. */
  readonly source: string;
}

export interface ComposedPci {
  readonly topology: PciTopology;
  readonly entries: readonly ComposedEntry[];
  /** Functions hidden by the plan: on no bus the guest reaches. */
  readonly hidden: readonly ComposedEntry[];
  readonly warnings: readonly string[];
  readonly allocation?: AllocationResult;
  /** Write domains in dumps (the capture had them, or a segment is not 0). */
  readonly withDomains: boolean;
}

export interface ComposeProblem {
  readonly path: string;
  readonly message: string;
}

/** Thrown with every problem found; nothing is returned, so nothing is half-applied. */
export class PciPlanError extends PciComposeError {
  readonly problems: readonly ComposeProblem[];
  constructor(input: string, problems: readonly ComposeProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('; '), { input });
    this.problems = problems;
  }
}

function replayBackend(c: CapturedFunction, source: string): MemoryBackend {
  const read = (o: number, s: 1 | 2 | 4): number => readLE(c.bytes, o, s);
  const headerType = (c.bytes[HEADER_TYPE] ?? 0) & 0x7f;
  return new MemoryBackend(c.bytes, { source, rw1c: standardRw1cMask(read, c.bytes.length, headerType), barSizes: c.barSizes });
}

/** The guest sees these IDs; the device keeps its own (its driver on the host side never notices). */
/** Virtualized IDs on a built real function (also for a function hot-plugged into a running machine). */
export function overrideIds(fn: PciFunction, ids: IdOverride): void {
  const set = (offset: number, value: number | undefined): void => {
    if (value !== undefined) fn.declare({ offset, size: 2, emulated: 0xffff, writable: 0, value });
  };
  set(VENDOR_ID, ids.vendorId);
  set(DEVICE_ID, ids.deviceId);
  set(SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId);
  set(SUBSYSTEM_ID, ids.subsystemId);
}

function captureName(b: Bdf): string {
  return formatBdf(b);
}

/**
 * Builds the guest's PCI topology from a capture and a plan's PCI section: the captured
 * machine as it was (bridges, bus numbers, every function), then what the plan hides, adds
 * and changes, then bus numbering and BAR placement if asked. Pure: inputs in, a new
 * topology out, or a PciPlanError naming every bad plan path.
 */
export function composePci(input: ComposeInput, inputName = 'plan'): ComposedPci {
  const problems: ComposeProblem[] = [];
  const warnings: string[] = (input.base?.warnings ?? []).map((w) => `${input.base!.source}: ${w}`);
  const topology = new PciTopology();
  const entries: ComposedEntry[] = [];
  const byName = new Map<string, PciFunction>();
  const base = input.base;

  // Per-function policies are needed while building: index them by target first.
  const policies = new Map<string, FunctionPolicy>();
  for (const p of input.functions ?? []) {
    const key = normalizeTarget(p.target);
    if (policies.has(key)) problems.push({ path: p.path, message: `a second policy for ${p.target}` });
    policies.set(key, p);
  }
  const usedPolicies = new Set<string>();
  const policyFor = (key: string): FunctionPolicy | undefined => {
    const p = policies.get(key);
    if (p !== undefined) usedPolicies.add(key);
    return p;
  };
  const buildReal = (c: CapturedFunction, id: string, source: string, key: string, path: string, live?: ConfigBackend, ids?: IdOverride): PciFunction | undefined => {
    const pol = policyFor(key);
    try {
      const built = buildRealFunction({
        id,
        backend: live ?? replayBackend(c, source),
        unclaimed: pol?.unclaimed ?? input.unclaimed ?? 'pass',
        capabilities: pol?.capabilities ?? input.capabilities,
        bars: pol?.bars ?? [],
        unknownBarSize: input.unknownBarSize ?? 'fixed',
      });
      for (const n of built.notes) warnings.push(`${id}: ${n}`);
      if (ids !== undefined) overrideIds(built.fn, ids);
      return built.fn;
    } catch (err) {
      if (err instanceof PciError) {
        problems.push({ path: pol?.path ?? path, message: err.message });
        return undefined;
      }
      throw err;
    }
  };

  // 1. The captured machine.
  if (base !== undefined) {
    const built = new Map<CapturedFunction, PciFunction>();
    for (const c of base.functions) {
      // A sysfs capture's place is already a full path; a dump's is a line of the file.
      const where = c.at.startsWith(base.source) ? c.at : `${base.source} ${c.at}`;
      const fn = buildReal(c, captureName(c.bdf), where, captureName(c.bdf), where);
      if (fn === undefined) continue;
      built.set(c, fn);
      entries.push({ fn, origin: 'capture', capturedBdf: c.bdf, source: where });
    }
    placeCaptured(topology, base, built, warnings);
  }

  // 2. Hide rules, before placement so a plan device may take a hidden function's slot.
  const hiddenEntries: ComposedEntry[] = [];
  for (const rule of input.hide ?? []) {
    const matches = entries.filter((e) => matchesHide(rule, e));
    if (matches.length === 0) {
      problems.push({ path: rule.path, message: `matches no function${base === undefined ? ' (there is no captured machine)' : ` of ${base.source}`}` });
      continue;
    }
    for (const e of matches) if (!hiddenEntries.includes(e)) hiddenEntries.push(e);
  }
  for (const e of hiddenEntries) {
    topology.setHidden(e.fn, true);
    if (forwardsConfig(e.fn)) {
      const behind = topology.secondaryBus(e.fn).functions().filter((f) => !f.hidden);
      if (behind.length > 0) warnings.push(`hiding bridge ${e.fn.id} also hides the ${behind.length} function(s) behind it: ${behind.map((f) => f.id).join(', ')}`);
    }
    if (e.fn.fn === 0) {
      const bus = topology.busOf(e.fn);
      const siblings = bus.functions().filter((f) => f.device === e.fn.device && f !== e.fn && !f.hidden);
      if (siblings.length > 0) warnings.push(`hiding ${e.fn.id} (function 0) also hides the other functions of its slot: ${siblings.map((f) => f.id).join(', ')}`);
    }
  }

  // 3. Plan-made functions, in dependency order (a bridge before what sits behind it).
  interface Pending {
    readonly name: string;
    readonly at: Location;
    readonly path: string;
    readonly make: () => { fn: PciFunction; entry: Omit<ComposedEntry, 'fn'> } | undefined;
  }
  const emulatedItem = (e: PlacedEmulated, origin: 'chipset' | 'plan'): Pending => ({
    name: e.name,
    at: e.at,
    path: e.path,
    make: () => ({ fn: buildEmulatedFunction(e.spec).fn, entry: { origin, source: e.path } }),
  });
  const bridges: PlacedEmulated[] = (input.bridges ?? []).map((b) => ({
    name: b.name,
    at: b.at,
    path: b.path,
    spec: fakeBridgeSpec({ id: b.name, ...(b.vendorId === undefined ? {} : { vendorId: b.vendorId }), ...(b.deviceId === undefined ? {} : { deviceId: b.deviceId }) }),
  }));
  const pending: Pending[] = [
    ...(input.chipset ?? []).map((e) => emulatedItem(e, 'chipset')),
    ...bridges.map((e) => emulatedItem(e, 'plan')),
    ...(input.emulated ?? []).map((e) => emulatedItem(e, 'plan')),
  ];
  for (const r of input.real ?? []) {
    pending.push({
      name: r.name,
      at: r.at,
      path: r.path,
      make: () => {
        const fn = buildReal(r.capture, r.name, `${r.source} ${r.capture.at}`, r.name, r.path, r.backend, r.ids);
        return fn === undefined ? undefined : { fn, entry: { origin: 'plan', capturedBdf: r.capture.bdf, source: `${r.source} ${r.capture.at}` } };
      },
    });
  }
  const names = new Map<string, string>();
  for (const p of pending) {
    const clash = names.get(p.name) ?? (parseBdf(p.name) !== undefined ? 'an address' : undefined);
    if (clash !== undefined) problems.push({ path: `${p.path}.name`, message: `name "${p.name}" is already ${clash === 'an address' ? 'a PCI address form; pick a name' : `used at ${clash}`}` });
    names.set(p.name, p.path);
  }
  let progress = true;
  let todo = pending;
  while (todo.length > 0 && progress) {
    progress = false;
    const later: Pending[] = [];
    for (const p of todo) {
      const bus = resolveBus(topology, p.at, byName, entries);
      if (bus === 'wait') {
        later.push(p);
        continue;
      }
      progress = true;
      if (typeof bus === 'string') {
        problems.push({ path: `${p.path}.at`, message: bus });
        continue;
      }
      let made: ReturnType<Pending['make']>;
      try {
        made = p.make();
      } catch (err) {
        if (err instanceof PciError) {
          problems.push({ path: p.path, message: err.message });
          continue;
        }
        throw err;
      }
      if (made === undefined) continue;
      const occupant = bus.slots[(p.at.device << 3) | p.at.fn];
      if (occupant !== undefined) {
        if (!occupant.hidden) {
          problems.push({ path: `${p.path}.at`, message: `slot ${slotText(p.at)} is taken by ${occupant.id}` });
          continue;
        }
        topology.detach(occupant);
      }
      topology.attach(made.fn, bus, p.at.device, p.at.fn);
      byName.set(p.name, made.fn);
      entries.push({ fn: made.fn, ...made.entry });
    }
    todo = later;
  }
  for (const p of todo) {
    problems.push({ path: `${p.path}.at`, message: `bridge "${(p.at as { bridge: string }).bridge}" is never placed (unknown, or placed behind what sits behind it)` });
  }

  for (const [key, p] of policies) {
    if (!usedPolicies.has(key)) problems.push({ path: `${p.path}.target`, message: `no real function ${p.target}${isKnownNonReal(key, byName) ? ' (it is not a real device: policies apply to real ones)' : ''}` });
  }
  if (problems.length > 0) throw new PciPlanError(inputName, problems);

  topology.updateMultifunction();
  const renumber = input.renumber === true || (input.bridges?.length ?? 0) > 0 || input.allocation !== undefined;
  if (renumber) {
    try {
      renumberBuses(topology);
    } catch (err) {
      if (err instanceof PciError) throw new PciPlanError(inputName, [{ path: input.allocation?.path ?? 'pci.bridges', message: err.message }]);
      throw err;
    }
  }

  let allocation: AllocationResult | undefined;
  if (input.allocation !== undefined) {
    allocation = allocateResources(topology, input.allocation.windows, { where: { input: inputName, at: input.allocation.path } });
  }

  // Captured functions the guest cannot reach (a dump whose bridges do not cover their buses).
  const reachable = new Set(topology.reachable().map((r) => r.fn));
  for (const e of entries) {
    if (!e.fn.hidden && !hiddenEntries.includes(e) && !reachable.has(e.fn) && topology.isAttached(e.fn)) {
      const f0 = topology.busOf(e.fn).slots[e.fn.device << 3];
      // Already reported: hidden with a hidden bridge above it or a hidden function 0 beside it.
      if (hiddenAncestor(topology, e.fn) === undefined && f0?.hidden !== true) warnings.push(`${e.fn.id} is not reachable by config cycles: the bridges above it do not forward its bus`);
    }
  }

  const withDomains = (base?.withDomains ?? false) || topology.segmentNumbers().some((s) => s !== 0);
  return {
    topology,
    entries: entries.filter((e) => !hiddenEntries.includes(e)),
    hidden: hiddenEntries,
    warnings,
    ...(allocation === undefined ? {} : { allocation }),
    withDomains,
  };
}

function slotText(at: Location): string {
  const slot = `${at.device.toString(16).padStart(2, '0')}.${at.fn}`;
  return at.kind === 'root' ? `${at.segment.toString(16).padStart(4, '0')}:${at.bus.toString(16).padStart(2, '0')}:${slot}` : `${at.bridge}/${slot}`;
}

function normalizeTarget(target: string): string {
  const b = parseBdf(target);
  return b === undefined ? target : captureName(b);
}

function isKnownNonReal(key: string, byName: ReadonlyMap<string, PciFunction>): boolean {
  return byName.has(key);
}

function matchesHide(rule: HideRule, e: ComposedEntry): boolean {
  if (rule.bdf !== undefined && (e.capturedBdf === undefined || e.origin !== 'capture' || !sameBdf(rule.bdf, e.capturedBdf))) return false;
  if (rule.vendorId !== undefined && e.fn.read(VENDOR_ID, 2) !== rule.vendorId) return false;
  if (rule.deviceId !== undefined && e.fn.read(DEVICE_ID, 2) !== rule.deviceId) return false;
  return rule.bdf !== undefined || rule.vendorId !== undefined;
}

function hiddenAncestor(topology: PciTopology, fn: PciFunction): PciFunction | undefined {
  let bus: BusNode | null = topology.busOf(fn);
  while (bus !== null && bus.bridge !== null) {
    if (bus.bridge.hidden) return bus.bridge;
    bus = bus.parent;
  }
  return undefined;
}

/** The bus a location names, 'wait' when its bridge is a plan bridge not yet placed, or a message. */
function resolveBus(topology: PciTopology, at: Location, byName: ReadonlyMap<string, PciFunction>, entries: readonly ComposedEntry[]): BusNode | 'wait' | string {
  if (at.kind === 'root') return topology.rootBus(at.segment, at.bus) ?? topology.addRootBus(at.segment, at.bus);
  let bridge = byName.get(at.bridge);
  if (bridge === undefined) {
    const b = parseBdf(at.bridge);
    if (b === undefined) return 'wait';
    const e = entries.find((x) => x.origin === 'capture' && x.capturedBdf !== undefined && sameBdf(x.capturedBdf, b));
    if (e === undefined) return `no captured function ${at.bridge} to place a device behind`;
    bridge = e.fn;
  }
  if (!isBridge(bridge)) return `${at.bridge} is not a PCI-to-PCI bridge (header type ${bridge.getStored(HEADER_TYPE, 1) & 0x7f})`;
  if (bridge.hidden) return `bridge ${at.bridge} is hidden`;
  return topology.secondaryBus(bridge);
}

/**
 * Attaches captured functions where the capture had them: a bus whose number is some captured
 * bridge's secondary bus hangs below that bridge; any other bus is a root bus (a host bridge's,
 * or a bus whose bridge the capture did not include).
 */
function placeCaptured(topology: PciTopology, capture: Capture, built: ReadonlyMap<CapturedFunction, PciFunction>, warnings: string[]): void {
  const items = [...built].sort((a, b) => compareBdf(a[0].bdf, b[0].bdf));
  const key = (segment: number, bus: number): string => `${segment}:${bus}`;
  const parentOf = new Map<string, [CapturedFunction, PciFunction]>();
  for (const [c, fn] of items) {
    const type = c.bytes[HEADER_TYPE]! & 0x7f;
    if (type !== HEADER_TYPE_BRIDGE && type !== HEADER_TYPE_CARDBUS) continue;
    const sec = c.bytes[SECONDARY_BUS] ?? 0;
    if (sec === 0 || sec === c.bdf.bus) continue;
    const k = key(c.bdf.segment, sec);
    const first = parentOf.get(k);
    if (first !== undefined) {
      warnings.push(`${capture.source}: bridges ${captureName(first[0].bdf)} and ${captureName(c.bdf)} both claim bus ${sec.toString(16).padStart(2, '0')}; the first is its parent`);
      continue;
    }
    parentOf.set(k, [c, fn]);
  }
  // A chain of parents that loops (a corrupt capture) is cut: the bus becomes a root.
  for (const [k] of [...parentOf]) {
    const seen = new Set<string>([k]);
    let cur = parentOf.get(k);
    while (cur !== undefined) {
      const up = key(cur[0].bdf.segment, cur[0].bdf.bus);
      if (seen.has(up)) {
        warnings.push(`${capture.source}: bridges loop around bus ${k.split(':')[1]}; treating it as a root bus`);
        parentOf.delete(k);
        break;
      }
      seen.add(up);
      cur = parentOf.get(up);
    }
  }
  const busNode = (segment: number, bus: number): BusNode => {
    const parent = parentOf.get(key(segment, bus));
    if (parent === undefined) return topology.rootBus(segment, bus) ?? topology.addRootBus(segment, bus);
    if (!topology.isAttached(parent[1])) topology.attach(parent[1], busNode(parent[0].bdf.segment, parent[0].bdf.bus), parent[0].bdf.device, parent[0].bdf.fn);
    return topology.secondaryBus(parent[1]);
  };
  for (const [c, fn] of items) {
    if (topology.isAttached(fn)) continue;
    const bus = busNode(c.bdf.segment, c.bdf.bus);
    if (topology.isAttached(fn)) continue;
    topology.attach(fn, bus, c.bdf.device, c.bdf.fn);
  }
  for (const [c, fn] of items) {
    if (c.bdf.fn === 0) continue;
    const hasF0 = items.some(([o]) => o.bdf.segment === c.bdf.segment && o.bdf.bus === c.bdf.bus && o.bdf.device === c.bdf.device && o.bdf.fn === 0);
    if (!hasF0) fn.visibleWithoutFunction0 = true;
  }
  topology.refreshRouting();
}

/**
 * Depth-first bus numbering, as firmware does: each visible bridge in devfn order takes the
 * next free number as its secondary bus and, once everything below is numbered, the last one
 * as its subordinate. Each root bus numbers up to the next root bus.
 */
export function renumberBuses(topology: PciTopology): void {
  const roots = topology.rootBuses();
  for (let i = 0; i < roots.length; i++) {
    const root = roots[i]!;
    const next = roots[i + 1];
    const end = next !== undefined && next.segment === root.segment ? next.number - 1 : 255;
    let free = root.number + 1;
    const number = (bus: BusNode, n: number): void => {
      for (let devfn = 0; devfn < 256; devfn++) {
        const f = bus.visible(devfn);
        if (f === undefined || !forwardsConfig(f)) continue;
        if (free > end) throw new PciError(`out of bus numbers below root bus ${root.number.toString(16).padStart(2, '0')} (it may use up to ${end.toString(16).padStart(2, '0')})`, { input: f.id });
        const sec = free++;
        f.setStored(PRIMARY_BUS, 1, n);
        f.setStored(SECONDARY_BUS, 1, sec);
        f.setStored(SUBORDINATE_BUS, 1, 0xff);
        number(topology.secondaryBus(f), sec);
        f.setStored(SUBORDINATE_BUS, 1, free - 1);
      }
    };
    number(root, root.number);
  }
  topology.refreshRouting();
}
