/**
 * The host's PCI functions as the analysis walks them: each function's sysfs facts beside its
 * config-space facts, placed in the bus tree the PCI layer builds from the captured config
 * spaces (a mirror composition: bridges, bus numbers, every function where it was).
 */
import { compareBdf, formatBdf, sameBdf, type Bdf } from '../pci/address.js';
import { composePci, type ComposedPci } from '../pci/compose.js';
import type { PciFunction } from '../pci/function.js';
import { readHardware, type HardwareFacts } from './hardware.js';
import type { HostSnapshot, PciFunctionFacts } from './snapshot.js';

export interface HostFunction {
  readonly facts: PciFunctionFacts;
  /** undefined when the config space was not readable. */
  readonly hw: HardwareFacts | undefined;
  /** Its place in the bus tree (undefined without config space). */
  readonly fn: PciFunction | undefined;
  /** `0000:00:1f.3`, as sysfs names it. */
  readonly name: string;
}

export class HostPci {
  readonly functions: readonly HostFunction[];
  readonly composed: ComposedPci | undefined;
  private readonly byFn = new Map<PciFunction, HostFunction>();

  constructor(snapshot: HostSnapshot) {
    const capture = snapshot.pci.capture;
    this.composed = capture === undefined ? undefined : composePci({ base: capture }, snapshot.source);
    const fns = new Map<string, PciFunction>();
    for (const e of this.composed?.entries ?? []) if (e.capturedBdf !== undefined) fns.set(formatBdf(e.capturedBdf, true), e.fn);
    this.functions = snapshot.pci.functions.map((facts) => {
      const name = formatBdf(facts.bdf, true);
      const hf: HostFunction = { facts, hw: facts.config === undefined ? undefined : readHardware(facts.config), fn: fns.get(name), name };
      if (hf.fn !== undefined) this.byFn.set(hf.fn, hf);
      return hf;
    });
  }

  find(bdf: Bdf): HostFunction | undefined {
    return this.functions.find((f) => sameBdf(f.facts.bdf, bdf));
  }

  ofFn(fn: PciFunction): HostFunction | undefined {
    return this.byFn.get(fn);
  }

  /** The bridge whose secondary bus the function sits on; undefined on a root bus (or unknown). */
  parent(f: HostFunction): HostFunction | undefined {
    if (f.fn === undefined || this.composed === undefined) return undefined;
    const bridge = this.composed.topology.busOf(f.fn).bridge;
    return bridge === null ? undefined : this.byFn.get(bridge);
  }

  onRootBus(f: HostFunction): boolean {
    return f.fn !== undefined && this.composed !== undefined && this.composed.topology.busOf(f.fn).isRoot;
  }

  /** The bridges above the function, nearest first. */
  upstream(f: HostFunction): HostFunction[] {
    const out: HostFunction[] = [];
    for (let p = this.parent(f); p !== undefined; p = this.parent(p)) out.push(p);
    return out;
  }

  /** Other functions on the same bus (a secondary bus reset reaches them all). */
  busSiblings(f: HostFunction): HostFunction[] {
    if (f.fn === undefined || this.composed === undefined) return [];
    const bus = this.composed.topology.busOf(f.fn);
    return bus.functions().filter((x) => x !== f.fn).flatMap((x) => (this.byFn.get(x) === undefined ? [] : [this.byFn.get(x)!]));
  }

  /** Everything below a bridge, depth first. */
  below(bridge: HostFunction): HostFunction[] {
    if (bridge.fn === undefined || this.composed === undefined) return [];
    const bus = this.composed.topology.childBus(bridge.fn);
    if (bus === undefined) return [];
    return bus.functions().flatMap((x) => {
      const h = this.byFn.get(x);
      return h === undefined ? [] : [h, ...this.below(h)];
    });
  }

  /** Other functions of the same slot (device number) on the same bus. */
  slotSiblings(f: HostFunction): HostFunction[] {
    return this.functions.filter((x) => x !== f && x.facts.bdf.segment === f.facts.bdf.segment && x.facts.bdf.bus === f.facts.bdf.bus && x.facts.bdf.device === f.facts.bdf.device);
  }

  sorted(): HostFunction[] {
    return [...this.functions].sort((a, b) => compareBdf(a.facts.bdf, b.facts.bdf));
  }
}
