/**
 * ACPI PCI hot-plug in the running machine (vCPU thread): the PIIX4-style register blocks on
 * the I/O bus, and a pass-through device put into a hot-plug slot or taken out of it live.
 *
 * Adding: the back-end attached from the handle the main thread opened, a real function built
 * over its live config space and put on root bus 00, its BARs handed to the PCI runtime, its
 * DMA and INTx wired (PassthroughDevice), then UP and the GPE: the guest's acpiphp scans the
 * slot and its driver binds. Removing, in one order whatever asked for it (the guest's _EJ0
 * after DOWN, the guest on its own, or a forced detach): BARs unmapped (memory slots, traps,
 * ports), the function off the bus, then interrupts (irqfds, MSI routes), reset, DMA and region
 * mappings released; the slot is empty again. Every step runs once: a second request for a
 * device already gone finds nothing to do, and one that fails does not keep the rest from
 * running (its error is reported).
 */
import { formatBdf } from '../hw/pci/address.js';
import { overrideIds } from '../hw/pci/compose.js';
import type { PciFunction } from '../hw/pci/function.js';
import { buildRealFunction, hidingAlso, undeliverableCapabilities, type CapabilityPolicy, type UnclaimedPolicy } from '../hw/pci/real.js';
import { GPE0_LENGTH, Gpe0Block, PCIHP_LENGTH, PciHotplug } from '../hw/chipset/pci-hotplug.js';
import { gsiLine, type GsiSink } from '../hw/irq/line.js';
import { HvmptError } from '../errors.js';
import type { Sys } from '../native/sys.js';
import type { MachineConfig } from '../platform/machine-config.js';
import { attachDevice, liveConfig } from './attach.js';
import type { ControlRequest, ControlResult, LiveDevice, MachineStatus, Removal } from './control-protocol.js';
import type { GuestMemory } from './guest-memory.js';
import type { IoLedger, PortBus } from './io-bus.js';
import type { Vm } from './kvm/vm.js';
import type { MsiRoutes } from './msi-routes.js';
import { PassthroughDevice, type PassthroughDeps } from './passthrough.js';
import type { PciRuntime } from './pci-runtime.js';

/** A request the running machine refuses; the message says why. */
export class HotplugError extends HvmptError {}

export interface HotplugDeps {
  readonly sys: Sys;
  readonly vm: Vm;
  readonly ports: PortBus;
  readonly memory: GuestMemory;
  readonly routes: MsiRoutes;
  readonly ledger: IoLedger;
  readonly pci: PciRuntime;
  readonly gsi: GsiSink;
  /** The machine's pass-through devices by function id (boot ones and hot-plugged ones). */
  readonly passthrough: Map<string, PassthroughDevice>;
  readonly passthroughDeps: PassthroughDeps;
  readonly config: NonNullable<MachineConfig['hotplug']>;
  /** The plan's defaults for real functions (pci.capabilities, pci.unclaimed). */
  readonly policy: { readonly capabilities?: CapabilityPolicy; readonly unclaimed?: UnclaimedPolicy };
  /** A line for the user (stderr). */
  readonly note: (text: string) => void;
  /** A device left the bus without the main thread asking right now (the guest's eject). */
  readonly removed: (r: Removal) => void;
  readonly exits: () => number;
}

interface SlotDevice {
  readonly name: string;
  readonly slot: number;
  readonly fn: PciFunction;
  readonly device: PassthroughDevice;
  readonly hotplugged: boolean;
  state: 'present' | 'eject-requested' | 'gone';
}

const slotBdf = (slot: number): string => `0000:00:${slot.toString(16).padStart(2, '0')}.0`;

export class LiveHotplug {
  readonly gpe: Gpe0Block;
  readonly slots: PciHotplug;
  private readonly bySlot = new Map<number, SlotDevice>();

  constructor(private readonly deps: HotplugDeps) {
    const c = deps.config;
    this.gpe = new Gpe0Block(c.gpeBase, gsiLine(deps.gsi, c.sciIrq));
    const mask = c.slots.reduce((m, s) => (m | (1 << s)) >>> 0, 0);
    this.slots = new PciHotplug(c.base, mask, this.gpe, { onEject: (slot) => this.ejected(slot) });
    deps.ports.register('gpe0', c.gpeBase, GPE0_LENGTH, this.gpe);
    deps.ports.register('pcihp', c.base, PCIHP_LENGTH, this.slots);
    // Dynamic devices present at boot sit in removable slots: the guest may be asked to eject them.
    for (const [name, device] of deps.passthrough) {
      const fn = device.fn;
      if (!deps.pci.pci.topology.busOf(fn).isRoot || fn.fn !== 0 || !c.slots.includes(fn.device)) continue;
      this.slots.markOccupied(fn.device);
      this.bySlot.set(fn.device, { name, slot: fn.device, fn, device, hotplugged: false, state: 'present' });
    }
  }

  handle(r: ControlRequest): ControlResult {
    switch (r.op) {
      case 'status':
        return { op: 'status', status: this.status() };
      case 'attach':
        return this.attach(r);
      case 'detach': {
        const d = this.find(r.name);
        if (d.state === 'present') {
          d.state = 'eject-requested';
          this.slots.requestUnplug(d.slot);
          this.deps.note(`${d.name}: eject requested (slot ${d.slot}): waiting for the guest's _EJ0`);
        }
        return { op: 'detach', name: d.name, slot: d.slot, state: 'eject-requested' };
      }
      case 'force-detach': {
        const d = this.find(r.name);
        return { op: 'force-detach', removal: this.remove(d, 'forced') };
      }
    }
  }

  private find(name: string): SlotDevice {
    for (const d of this.bySlot.values()) if (d.name === name) return d;
    if (this.deps.passthrough.has(name)) throw new HotplugError(`${name} is not in a hot-plug slot: it stays with the guest for the run`);
    throw new HotplugError(`no device ${name} on the running machine's hot-plug slots`);
  }

  private attach(r: Extract<ControlRequest, { op: 'attach' }>): ControlResult {
    const { deps } = this;
    const topology = deps.pci.pci.topology;
    if (topology.functions().some((f) => f.id === r.name) || [...this.bySlot.values()].some((d) => d.name === r.name)) {
      throw new HotplugError(`a device named ${r.name} is already on the bus: give the entry another name`);
    }
    const slot = r.slot ?? this.slots.freeSlot();
    if (slot === undefined) {
      throw new HotplugError(`root bus 00 is full: its ${deps.config.slots.length} hot-plug slot${deps.config.slots.length === 1 ? '' : 's'} (${deps.config.slots.join(', ')}) all hold a device; detach one first`);
    }
    if (!this.slots.isFree(slot)) {
      const why = deps.config.slots.includes(slot) ? `holds ${this.bySlot.get(slot)?.name ?? 'a device'}` : 'is not a hot-plug slot (the guest\'s DSDT gives it no _EJ0)';
      throw new HotplugError(`slot ${slot.toString(16).padStart(2, '0')} ${why}`);
    }
    const root = topology.rootBus(0, 0);
    if (root === undefined) throw new HotplugError('the machine has no root bus 00');
    const a = r.attachment;
    const dead = (why: string): void => deps.ledger.noteFault({ device: a.name, space: 'mmio', address: 0, write: false, message: `${a.handle.address}: ${why}` });
    const attached = attachDevice(deps.sys, a, { memory: deps.memory, dead });
    let fn: PciFunction | undefined;
    let device: PassthroughDevice | undefined;
    try {
      // As at boot (withUioPolicies): a uio function's guest sees no MSI or MSI-X, whose writes would reach the host's APIC.
      const capabilities = hidingAlso(r.capabilities, undeliverableCapabilities(a.description.interrupts));
      const built = buildRealFunction({
        id: r.name,
        backend: liveConfig(attached, a),
        unclaimed: r.unclaimed ?? deps.policy.unclaimed ?? 'pass',
        ...(capabilities === undefined ? {} : { capabilities }),
        bars: [],
        unknownBarSize: 'fixed',
      });
      fn = built.fn;
      if (r.ids !== undefined) overrideIds(fn, r.ids);
      topology.attach(fn, root, slot, 0);
      // Power-on state: decode off, BARs at zero; the guest's OS places it (acpiphp, then the PCI core).
      fn.resetRegisters();
      device = new PassthroughDevice(deps.passthroughDeps, fn, attached);
      deps.passthrough.set(r.name, device);
      deps.pci.addLive(r.name, device);
    } catch (err) {
      if (fn !== undefined) deps.pci.removeFunction(fn);
      deps.passthrough.delete(r.name);
      if (device !== undefined) device.close();
      else attached.close();
      throw err;
    }
    this.bySlot.set(slot, { name: r.name, slot, fn, device, hotplugged: true, state: 'present' });
    this.slots.plug(slot);
    deps.note(`${r.name}: ${a.description.source} hot-plugged at ${slotBdf(slot)} (ACPI: Device Check to the guest)`);
    return { op: 'attach', name: r.name, slot, bdf: slotBdf(slot), source: a.description.source };
  }

  /** The guest wrote EJ for `slot` (its _EJ0). */
  private ejected(slot: number): void {
    const d = this.bySlot.get(slot);
    if (d === undefined) return;
    this.deps.removed(this.remove(d, 'ejected'));
  }

  /** Takes the device out, in order; runs once per device. */
  private remove(d: SlotDevice, how: Removal['how']): Removal {
    const problems: string[] = [];
    if (d.state === 'gone') return { name: d.name, slot: d.slot, how, problems: ['already removed'] };
    d.state = 'gone';
    this.bySlot.delete(d.slot);
    const step = (what: string, f: () => void): void => {
      try {
        f();
      } catch (err) {
        problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    step('unmapping its BARs', () => this.deps.pci.removeFunction(d.fn));
    this.deps.passthrough.delete(d.name);
    step('closing it', () => d.device.close());
    this.slots.cleared(d.slot);
    this.deps.note(`${d.name}: ${how === 'ejected' ? 'ejected by the guest' : 'taken out (forced)'} from ${slotBdf(d.slot)}${problems.length === 0 ? '' : `; ${problems.join('; ')}`}`);
    return { name: d.name, slot: d.slot, how, problems };
  }

  status(): MachineStatus {
    const { deps } = this;
    const st = this.slots.state();
    const slots = deps.config.slots;
    return {
      exits: deps.exits(),
      memorySlots: deps.vm.memorySlots().length,
      irqfds: deps.vm.irqfdCount,
      msiGsis: deps.routes.inUse,
      passthrough: deps.passthrough.size,
      hotplug: { slots: [...slots], occupied: slots.filter((s) => (st.occupied & (1 << s)) !== 0), free: slots.filter((s) => this.slots.isFree(s)) },
      devices: this.devices(),
    };
  }

  devices(): LiveDevice[] {
    return liveDevices(this.deps.pci, (fn) => {
      const d = [...this.bySlot.values()].find((x) => x.fn === fn);
      return d === undefined ? {} : { removable: true, state: d.state === 'gone' ? 'present' : d.state, hotplugged: d.hotplugged };
    });
  }
}

/** What the guest reaches on the bus now, by address. */
export function liveDevices(pci: PciRuntime, extra: (fn: PciFunction) => Partial<Pick<LiveDevice, 'removable' | 'state' | 'hotplugged'>> = () => ({})): LiveDevice[] {
  return pci.pci.topology.reachable().map(({ fn, bdf }) => {
    const hex4 = (v: number): string => v.toString(16).padStart(4, '0');
    return { name: fn.id, bdf: formatBdf(bdf), ids: `${hex4(fn.read(0, 2))}:${hex4(fn.read(2, 2))}`, kind: fn.kind, removable: false, ...extra(fn) };
  });
}
