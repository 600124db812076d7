import type { AccessSize } from '../io.js';
import { compareBdf, formatBdf, type Bdf } from './address.js';
import type { BarLayout, BarMapping, BarMappingEvent } from './bars.js';
import { PciError } from './errors.js';
import type { FunctionHost, PciFunction } from './function.js';
import { setMultifunction } from './header.js';
import { HEADER_TYPE, HEADER_TYPE_BRIDGE, HEADER_TYPE_CARDBUS, PRIMARY_BUS, SECONDARY_BUS, SUBORDINATE_BUS } from './regs.js';

/** A bus: a root bus of a host bridge, or the secondary bus of a PCI-to-PCI bridge. */
export class BusNode {
  readonly segment: number;
  /** The bridge whose secondary bus this is; null for a root bus. */
  readonly bridge: PciFunction | null;
  /** The bus below which this one hangs (null for a root bus). */
  readonly parent: BusNode | null;
  /** Functions by devfn (device << 3 | function), hidden ones included. */
  readonly slots: (PciFunction | undefined)[] = new Array<PciFunction | undefined>(256).fill(undefined);
  private readonly rootNumber: number;

  constructor(segment: number, bridge: PciFunction | null, parent: BusNode | null, rootNumber = -1) {
    this.segment = segment;
    this.bridge = bridge;
    this.parent = parent;
    this.rootNumber = rootNumber;
  }

  get isRoot(): boolean {
    return this.bridge === null;
  }

  /** The bus number now: fixed for a root bus, the bridge's secondary bus register otherwise. */
  get number(): number {
    return this.bridge === null ? this.rootNumber : this.bridge.getStored(SECONDARY_BUS, 1);
  }

  /** Functions on this bus in devfn order, hidden ones included. */
  functions(): PciFunction[] {
    return this.slots.filter((f): f is PciFunction => f !== undefined);
  }

  /**
   * Whether a guest can see the function at `devfn` here: present, not hidden, and its slot's
   * function 0 visible (or never captured, for a lone captured function).
   */
  visible(devfn: number): PciFunction | undefined {
    const f = this.slots[devfn];
    if (f === undefined || f.hidden) return undefined;
    if ((devfn & 7) === 0) return f;
    const f0 = this.slots[devfn & ~7];
    if (f0 === undefined) return f.visibleWithoutFunction0 ? f : undefined;
    return f0.hidden ? undefined : f;
  }
}

/** A PCI-to-PCI bridge (header type 1): bus numbers and the three forwarding windows. */
export function isBridge(fn: PciFunction): boolean {
  return (fn.getStored(HEADER_TYPE, 1) & 0x7f) === HEADER_TYPE_BRIDGE;
}

/**
 * Forwards config cycles to a secondary bus: a PCI-to-PCI bridge, or a CardBus bridge (header
 * type 2 keeps its bus numbers at the same offsets; its windows are its own and not modelled).
 */
export function forwardsConfig(fn: PciFunction): boolean {
  const t = fn.getStored(HEADER_TYPE, 1) & 0x7f;
  return t === HEADER_TYPE_BRIDGE || t === HEADER_TYPE_CARDBUS;
}

/** A BAR that is decoded now, for `mappings()`. */
export interface ActiveMapping {
  readonly fn: PciFunction;
  readonly bdf: Bdf;
  readonly bar: BarLayout;
  readonly mapping: BarMapping;
}

export type MappingListener = (event: BarMappingEvent) => void;

/** One PCI segment (domain): its root buses and the config routing table CF8 and ECAM index. */
class Segment implements FunctionHost {
  readonly segment: number;
  readonly roots: BusNode[] = [];
  /**
   * The function a config access to bus << 8 | devfn reaches, or null. Rebuilt whenever a
   * bridge's bus numbers change, so an access is one array index.
   */
  readonly route: (PciFunction | null)[] = new Array<PciFunction | null>(65536).fill(null);
  private readonly topology: PciTopology;

  constructor(topology: PciTopology, segment: number) {
    this.topology = topology;
    this.segment = segment;
  }

  busNumberOf(fn: PciFunction): number {
    return this.topology.busOf(fn).number;
  }

  routingChanged(): void {
    this.rebuild();
  }

  mappingChanged(event: BarMappingEvent): void {
    this.topology.emitMapping(event);
  }

  rebuild(): void {
    this.route.fill(null);
    const roots = [...this.roots].sort((a, b) => a.number - b.number);
    roots.forEach((root, i) => {
      // A host bridge decodes its root bus up to the next root bus.
      const end = i + 1 < roots.length ? roots[i + 1]!.number - 1 : 255;
      for (let bus = root.number; bus <= end; bus++) {
        const node = resolve(root, bus, end, (f) => this.topology.childBus(f));
        if (node === undefined) continue;
        const base = bus << 8;
        for (let devfn = 0; devfn < 256; devfn++) this.route[base | devfn] = node.visible(devfn) ?? null;
      }
    });
  }
}

/**
 * Type-1 forwarding: from a root bus, a config request for `bus` goes down through the first
 * visible bridge (in devfn order) whose [secondary, subordinate] range holds it, clipped to the
 * range of the bus above; a bus no bridge claims has no devices.
 */
function resolve(root: BusNode, bus: number, rootEnd: number, childOf: (bridge: PciFunction) => BusNode | undefined): BusNode | undefined {
  let node = root;
  let n = root.number;
  let hi = rootEnd;
  let depth = 0;
  while (n !== bus) {
    let next: BusNode | undefined;
    for (let devfn = 0; devfn < 256; devfn++) {
      const f = node.visible(devfn);
      if (f === undefined || !forwardsConfig(f)) continue;
      const sec = f.getStored(SECONDARY_BUS, 1);
      const sub = Math.min(f.getStored(SUBORDINATE_BUS, 1), hi);
      if (sec > n && sec <= bus && bus <= sub) {
        next = childOf(f);
        hi = sub;
        n = sec;
        break;
      }
    }
    // Bus numbers strictly increase going down, so 256 steps is a hard bound; it guards a bug, not input.
    if (next === undefined || ++depth > 256) return undefined;
    node = next;
  }
  return node;
}

/**
 * The composed PCI topology: segments, root buses, bridges and the functions on them; the
 * config routing both access mechanisms use; and the update-mapping events of every BAR.
 */
export class PciTopology {
  private readonly segments = new Map<number, Segment>();
  private readonly busOfFn = new Map<PciFunction, BusNode>();
  private readonly children = new Map<PciFunction, BusNode>();
  private readonly listeners: MappingListener[] = [];

  /** Adds a root bus (a host bridge's bus) with a fixed number. */
  addRootBus(segment: number, number: number): BusNode {
    if (!Number.isInteger(segment) || segment < 0 || segment > 0xffff) throw new PciError(`segment ${segment} outside 0-0xffff`);
    if (!Number.isInteger(number) || number < 0 || number > 255) throw new PciError(`root bus ${number} outside 0-255`);
    const seg = this.segmentOf(segment);
    const existing = seg.roots.find((r) => r.number === number);
    if (existing !== undefined) return existing;
    const node = new BusNode(segment, null, null, number);
    seg.roots.push(node);
    seg.rebuild();
    return node;
  }

  rootBus(segment: number, number: number): BusNode | undefined {
    return this.segments.get(segment)?.roots.find((r) => r.number === number);
  }

  rootBuses(): BusNode[] {
    return [...this.segments.values()].flatMap((s) => s.roots).sort((a, b) => a.segment - b.segment || a.number - b.number);
  }

  segmentNumbers(): number[] {
    return [...this.segments.keys()].sort((a, b) => a - b);
  }

  /**
   * Places `fn` at `device.function` on `bus`. A bridge gets its secondary bus, reachable
   * once its bus number registers say so (as after firmware enumeration).
   */
  attach(fn: PciFunction, bus: BusNode, device: number, func: number): void {
    if (!Number.isInteger(device) || device < 0 || device > 31 || !Number.isInteger(func) || func < 0 || func > 7) {
      throw new PciError(`slot ${device}.${func} outside 0-31.0-7`, { input: fn.id });
    }
    const devfn = (device << 3) | func;
    const there = bus.slots[devfn];
    if (there !== undefined) {
      throw new PciError(`slot ${device.toString(16).padStart(2, '0')}.${func} on bus ${this.describeBus(bus)} is taken by ${there.id}`, { input: fn.id });
    }
    const seg = this.segmentOf(bus.segment);
    fn.attach(seg, device, func);
    bus.slots[devfn] = fn;
    this.busOfFn.set(fn, bus);
    if (forwardsConfig(fn)) {
      this.children.set(fn, new BusNode(bus.segment, fn, bus));
      fn.watch(PRIMARY_BUS, 3, () => seg.routingChanged());
    }
    seg.rebuild();
  }

  /**
   * Takes a function off its bus (a plan device taking a hidden function's slot). A bridge's
   * secondary bus goes with it, and so does everything behind it.
   */
  detach(fn: PciFunction): void {
    const bus = this.busOf(fn);
    bus.slots[(fn.device << 3) | fn.fn] = undefined;
    this.busOfFn.delete(fn);
    this.segmentOf(bus.segment).rebuild();
  }

  isAttached(fn: PciFunction): boolean {
    return this.busOfFn.has(fn);
  }

  /** Recomputes config routing after bus numbers were set device-side (firmware-like numbering). */
  refreshRouting(): void {
    for (const seg of this.segments.values()) seg.rebuild();
  }

  /** The secondary bus of an attached bridge. */
  secondaryBus(bridge: PciFunction): BusNode {
    const node = this.children.get(bridge);
    if (node === undefined) throw new PciError('not an attached bridge', { input: bridge.id });
    return node;
  }

  /** The secondary bus of a bridge, or undefined for anything else. */
  childBus(fn: PciFunction): BusNode | undefined {
    return this.children.get(fn);
  }

  /** The bus a function is attached to. */
  busOf(fn: PciFunction): BusNode {
    const node = this.busOfFn.get(fn);
    if (node === undefined) throw new PciError('function is not attached', { input: fn.id });
    return node;
  }

  /** Hides (or shows again) a function: absent from every access path. */
  setHidden(fn: PciFunction, hidden: boolean): void {
    fn.hidden = hidden;
    this.segmentOf(this.busOf(fn).segment).rebuild();
  }

  /**
   * Sets function 0's multi-function bit where its slot has other visible functions (a bit
   * already set by a capture or a model stays set).
   */
  updateMultifunction(): void {
    for (const fn of this.busOfFn.keys()) {
      if (fn.fn !== 0) continue;
      const bus = this.busOf(fn);
      const base = fn.device << 3;
      let others = false;
      for (let f = 1; f < 8; f++) if (bus.visible(base | f) !== undefined) others = true;
      // Only ever set: a captured bit, or a model's own, stays as it was.
      if (others) setMultifunction(fn, true);
    }
  }

  /** Every attached function, hidden ones included, in structural order (depth first, devfn order). */
  functions(): PciFunction[] {
    const out: PciFunction[] = [];
    const walk = (bus: BusNode): void => {
      for (const f of bus.functions()) {
        out.push(f);
        const child = this.children.get(f);
        if (child !== undefined) walk(child);
      }
    };
    for (const r of this.rootBuses()) walk(r);
    return out;
  }

  /** The functions a guest reaches by config cycles now, with their addresses, in BDF order. */
  reachable(): Array<{ fn: PciFunction; bdf: Bdf }> {
    const out: Array<{ fn: PciFunction; bdf: Bdf }> = [];
    for (const [segment, seg] of [...this.segments].sort((a, b) => a[0] - b[0])) {
      for (let i = 0; i < 65536; i++) {
        const fn = seg.route[i];
        if (fn) out.push({ fn, bdf: { segment, bus: i >>> 8, device: (i >>> 3) & 0x1f, fn: i & 7 } });
      }
    }
    return out.sort((a, b) => compareBdf(a.bdf, b.bdf));
  }

  /** The function a config access to this address reaches, or undefined (reads as all ones). */
  lookup(segment: number, bus: number, devfn: number): PciFunction | undefined {
    return this.segments.get(segment)?.route[((bus & 0xff) << 8) | (devfn & 0xff)] ?? undefined;
  }

  /** The routing table of a segment: index bus << 8 | devfn. For the access mechanisms' hot paths. */
  routeTable(segment: number): ReadonlyArray<PciFunction | null> {
    return this.segmentOf(segment).route;
  }

  /** A config read of the composed view: all ones where no visible function answers. */
  readConfig(segment: number, bus: number, devfn: number, offset: number, size: AccessSize): number {
    const fn = this.lookup(segment, bus, devfn);
    if (fn === undefined) return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
    return fn.read(offset, size);
  }

  /** A config write to the composed view: dropped where no visible function answers. */
  writeConfig(segment: number, bus: number, devfn: number, offset: number, size: AccessSize, value: number): void {
    this.lookup(segment, bus, devfn)?.write(offset, size, value);
  }

  /** Subscribes to update-mapping events. Returns the unsubscribe function. */
  onMapping(listener: MappingListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** @internal Called by the segments when a BAR's effective mapping changed. */
  emitMapping(event: BarMappingEvent): void {
    for (const l of [...this.listeners]) l(event);
  }

  /** Every BAR decoded now (what a monitor that subscribes late must map), hidden functions excluded. */
  mappings(): ActiveMapping[] {
    const out: ActiveMapping[] = [];
    for (const fn of this.functions()) {
      if (fn.hidden || fn.bars === null) continue;
      for (const { layout, mapping } of fn.bars.mappings()) if (mapping !== null) out.push({ fn, bdf: fn.address, bar: layout, mapping });
    }
    return out;
  }

  /**
   * Power-on reset: every emulated register returns to its reset value (decode off, BARs at 0,
   * bridge bus numbers 0 and windows closed), replayed backends to their capture; the mappings
   * that were decoded are unmapped with events.
   */
  reset(): void {
    for (const fn of this.functions()) {
      fn.resetRegisters();
      fn.backend?.reset?.();
    }
    for (const seg of this.segments.values()) seg.rebuild();
    for (const fn of this.functions()) fn.bars?.update();
  }

  describeBus(bus: BusNode): string {
    if (bus.bridge === null) return `${bus.segment.toString(16).padStart(4, '0')}:${bus.number.toString(16).padStart(2, '0')}`;
    return `behind ${bus.bridge.id}`;
  }

  /** The function's address now, as text. */
  addressOf(fn: PciFunction): string {
    return formatBdf(fn.address, fn.address.segment !== 0);
  }

  private segmentOf(segment: number): Segment {
    let seg = this.segments.get(segment);
    if (seg === undefined) {
      seg = new Segment(this, segment);
      this.segments.set(segment, seg);
    }
    return seg;
  }
}
