/**
 * The main thread's side of hot-plug in `hvmpt run` (docs/hotplug.md): a plan entry attached
 * to the running machine goes through the plan's checks first (the entry itself, what the host
 * needs, the IOMMU group, binding to vfio-pci, group viability; for a uio device the machine's
 * identity RAM and the INTx line), is opened through the same path a boot device takes, and is
 * handed to the vCPU thread, which puts it in a hot-plug slot. A detach asks the guest to eject
 * it, waits for the eject (or takes it by force after `--force-after`), then closes its fds and
 * gives it back to the driver it had.
 */
import { HvmptError } from '../errors.js';
import { sysfsName } from '../hw/pci/host-function.js';
import { parseBdf, formatBdf } from '../hw/pci/address.js';
import { openPassthrough, type OpenedPassthrough } from '../host/backends/open.js';
import { bindFunctions, unbindFunctions, type PassthroughDriver } from '../host/pci/bind.js';
import { hostUses } from '../host/pci/host-use.js';
import { resolvePassthrough } from '../host/plan/inputs.js';
import type { Sys } from '../native/sys.js';
import { parseStructuredText, PlanError, validate, type PlanProblem } from '../plan/load.js';
import { passthroughDevice, passthroughName, type PassthroughEntry } from '../plan/pci.js';
import type { Plan } from '../plan/schema.js';
import type { DeviceUse } from '../platform/device-use.js';
import type { PlatformInputs } from '../platform/inputs.js';
import { placePassthrough } from '../platform/passthrough.js';
import type { LiveDevice, MachineStatus, Removal } from '../vmm/control-protocol.js';
import type { RunningMachine } from '../vmm/runner.js';

/** A control request hvmpt will not carry out, with what was wrong. */
export class ControlRefusal extends HvmptError {}

/** How long a detach without --force-after waits for the guest's eject before it answers. */
export const DEFAULT_EJECT_WAIT_S = 120;

interface Held {
  readonly name: string;
  readonly entry: PassthroughEntry;
  readonly address: string;
  readonly opened: OpenedPassthrough;
  /** The pass-through driver it is bound to for the guest (vfio-pci, or uio_pci_generic in an identity layout). */
  readonly driver: PassthroughDriver;
  /** The driver the device had before the attach bound it to `driver` (undefined: it was already there). */
  readonly boundFrom: string | null | undefined;
  /** The hand-back, once begun (a detach and the guest's own eject may both get there). */
  finishing?: Promise<DetachResult>;
}

export interface DetachResult {
  readonly detached: string;
  readonly how: 'ejected by the guest' | 'forced';
  readonly slot: number;
  readonly problems: readonly string[];
  /** The host driver it is bound to now, or why it is not back. */
  readonly host: { readonly address: string; readonly driver: string | null } | { readonly note: string };
}

export interface HotplugContext {
  readonly plan: Plan;
  readonly sys: Sys;
  /** The run's inputs (the plan file, its files); the attached device's own come from sysfs. */
  readonly inputs: PlatformInputs;
  /** The plan's devices with their categories (composeMachine's `devices`). */
  readonly uses: readonly DeviceUse[];
  readonly machine: () => RunningMachine | undefined;
  readonly note: (text: string) => void;
}

const entryPath = (problems: readonly PlanProblem[]): string =>
  problems.map((p) => `${p.path.replace(/^pci\.passthrough\[0\]\.?/, 'entry.').replace(/\.$/, '')}: ${p.message}`).join('; ');

export class HotplugHost {
  private readonly held = new Map<string, Held>();
  private readonly waiters = new Map<string, (r: Removal) => void>();
  private counter = 0;

  constructor(private readonly ctx: HotplugContext) {}

  private running(): RunningMachine {
    const m = this.ctx.machine();
    if (m === undefined) throw new ControlRefusal('the machine is not running');
    return m;
  }

  /** The entry as the control socket got it: an object, or YAML/JSON text. */
  parseEntry(raw: unknown): PassthroughEntry {
    const data = typeof raw === 'string' ? parseStructuredText(raw, 'entry') : raw;
    try {
      return validate(passthroughDevice, data, 'entry');
    } catch (err) {
      if (err instanceof PlanError) throw new ControlRefusal(err.problems.map((p) => `entry${p.path === '' ? '' : `.${p.path}`}: ${p.message}`).join('; '));
      throw err;
    }
  }

  async attach(raw: unknown): Promise<Record<string, unknown>> {
    const machine = this.running();
    const given = this.parseEntry(raw);
    const name = given.name ?? `hot${this.counter++}`;
    const entry: PassthroughEntry = { ...given, name, rom: { kind: 'off' } };
    const driver = this.backendDriver(entry);
    let slot: number | undefined;
    if (entry.at !== undefined) {
      if (entry.at.kind !== 'root' || entry.at.segment !== 0 || entry.at.bus !== 0 || entry.at.fn !== 0) throw new ControlRefusal('entry.at: hot-plug slots are on root bus 00, function 0 (`00:05.0`)');
      slot = entry.at.device;
    }
    if (this.ctx.uses.some((u) => u.device === name) || this.held.has(name)) throw new ControlRefusal(`entry.name: a device named ${name} is already on the machine`);
    // A slot first: a full bus is refused before the device leaves its host driver.
    const hp = (await this.status()).hotplug;
    if (hp === null) throw new ControlRefusal('the machine has no hot-plug slots: its plan sets neither pci.hotplug nor a passthrough device with use: { allocation: dynamic }');
    if (slot === undefined && hp.free.length === 0) {
      throw new ControlRefusal(`root bus 00 is full: its ${hp.slots.length} hot-plug slot${hp.slots.length === 1 ? '' : 's'} (${hp.slots.join(', ')}) all hold a device; detach one first`);
    }
    if (slot !== undefined && !hp.free.includes(slot)) throw new ControlRefusal(`entry.at: slot ${slot.toString(16).padStart(2, '0')} ${hp.slots.includes(slot) ? 'holds a device' : 'is not a hot-plug slot (the guest\'s DSDT gives it no _EJ0)'}`);
    const plan: Plan = { ...this.ctx.plan, pci: { ...(this.ctx.plan.pci ?? {}), passthrough: [entry] } };
    const problems: PlanProblem[] = [];
    let found = resolvePassthrough(plan, {}, problems);
    if (problems.length > 0) throw new ControlRefusal(entryPath(problems));
    let host = found[0]!.host;
    const address = sysfsName(host.address);
    for (const h of this.held.values()) if (h.address === address) throw new ControlRefusal(`entry.host: ${address} is already attached as ${h.name}`);
    // What the host needs for itself, and group mates a host driver holds, refuse before anything moves.
    // A uio device's IOMMU group (a host with its IOMMU in pass-through mode) confines nothing: only the device counts.
    const group = host.group.length > 0 && entry.backend === 'vfio' ? host.group : [];
    const members = group.length > 0 ? group.map((m) => m.address) : [address];
    const needed = hostUses().filter((u) => members.includes(u.address));
    if (needed.length > 0) {
      throw new ControlRefusal(needed.map((u) => (u.address === address ? `entry.host: ${address} is ${u.use}: the host needs it` : `entry.host: ${address} shares IOMMU group ${host.iommuGroup} with ${u.address}, ${u.use}: the host needs it, so the group cannot go to a guest`)).join('; '));
    }
    const mates = group.filter((m) => m.address !== address && !m.bridge && m.driver !== undefined && m.driver !== 'vfio-pci' && m.driver !== 'pci-stub');
    if (mates.length > 0) {
      throw new ControlRefusal(
        `entry.host: IOMMU group ${host.iommuGroup} of ${address} also holds ${mates.map((m) => `${m.address} (used by the host's ${m.driver} driver)`).join(', ')}: a group goes to one guest whole, and the host still uses ${mates.length === 1 ? 'it' : 'them'}`,
      );
    }
    let boundFrom: string | null | undefined;
    if (host.driver !== driver) {
      try {
        bindFunctions([address], driver);
      } catch (err) {
        throw new ControlRefusal(`entry.host: ${address} could not be bound to ${driver}: ${err instanceof Error ? err.message : String(err)}`);
      }
      boundFrom = host.driver ?? null;
      found = resolvePassthrough(plan, {}, problems);
      host = found[0]!.host;
    }
    let opened: OpenedPassthrough | undefined;
    try {
      opened = openPassthrough(this.ctx.sys, plan, { ...this.ctx.inputs, passthrough: found });
      const placed = placePassthrough(plan.pci, { passthrough: opened.inputs.passthrough, files: this.ctx.inputs.files }, new Set());
      const attachment = placed.placed[0]?.attachment;
      const ids = placed.placed[0]?.real.ids;
      if (placed.problems.length > 0 || attachment === undefined) throw new ControlRefusal(entryPath(placed.problems));
      const r = await machine.request({ op: 'attach', name, slot, attachment, ...(ids === undefined ? {} : { ids }), ...(plan.pci?.capabilities === undefined ? {} : { capabilities: plan.pci.capabilities }), ...(plan.pci?.unclaimed === undefined ? {} : { unclaimed: plan.pci.unclaimed }) });
      if (r.op !== 'attach') throw new Error(`attach answered ${r.op}`);
      this.held.set(name, { name, entry, address, opened, driver, boundFrom });
      return { attached: name, bdf: r.bdf, slot: r.slot, host: address, source: r.source, driver: { before: boundFrom === undefined ? driver : boundFrom, now: driver } };
    } catch (err) {
      opened?.close();
      if (boundFrom !== undefined) this.giveBack(address);
      if (err instanceof HvmptError && !(err instanceof ControlRefusal)) throw new ControlRefusal(err.message);
      throw err;
    }
  }

  /**
   * The driver an entry's back-end needs. vfio anywhere (the IOMMU confines the device's DMA to
   * the guest's mappings); uio only on a machine whose RAM is the host's own at the same
   * addresses (an identity layout on this machine's live map, its carve checked and held since
   * the start): there, a device without an IOMMU reaches the guest's RAM and nothing else.
   */
  private backendDriver(entry: PassthroughEntry): PassthroughDriver {
    switch (entry.backend) {
      case 'vfio':
        return 'vfio-pci';
      case 'uio': {
        const why =
          this.ctx.plan.memory.layout !== 'identity'
            ? 'the machine\'s RAM is not identity-mapped (memory.layout is not identity)'
            : this.ctx.inputs.hostMap?.live !== true
              ? 'its identity layout is a rehearsal on a named map (machine.hostMap), not this host\'s carved RAM'
              : undefined;
        if (why !== undefined) throw new ControlRefusal(`entry.backend: uio: ${why}; without an IOMMU the device would DMA to host memory that is not the guest's (use backend: vfio where the host has an IOMMU)`);
        return 'uio_pci_generic';
      }
      default:
        throw new ControlRefusal(`entry.backend: ${entry.backend}: a running machine takes vfio devices, and uio devices in an identity layout`);
    }
  }

  /** The device a target names: a name, or a guest address (`00:05.0`, `0000:00:05.0`). */
  private async resolveTarget(target: string): Promise<string> {
    if (this.held.has(target) || this.ctx.uses.some((u) => u.device === target)) return target;
    const bdf = parseBdf(target);
    if (bdf !== undefined) {
      const status = await this.status();
      const hit = status.devices.find((d) => d.bdf === formatBdf(bdf));
      if (hit !== undefined) return hit.name;
    }
    throw new ControlRefusal(`${target}: no device of that name or guest address on the machine`);
  }

  async detach(target: string, forceAfterS: number | undefined): Promise<DetachResult> {
    const machine = this.running();
    const name = await this.resolveTarget(target);
    const held = this.held.get(name);
    const use = held === undefined ? this.ctx.uses.find((u) => u.device === name) : undefined;
    const allocation = held?.entry.use?.allocation ?? use?.allocation ?? 'dynamic';
    if (allocation === 'dedicated') {
      throw new ControlRefusal(`${name} is dedicated (${use?.path ?? (held !== undefined ? 'its entry\'s use' : 'a real device is dedicated unless its plan entry says use: { allocation: dynamic }')}): it stays with the guest for the run`);
    }
    if (held?.finishing !== undefined) return held.finishing;
    const removal = new Promise<Removal>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (r: Removal): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.waiters.delete(name);
        resolve(r);
      };
      this.waiters.set(name, done);
      machine.request({ op: 'detach', name }).then(
        () => {
          const wait = forceAfterS ?? DEFAULT_EJECT_WAIT_S;
          timer = setTimeout(() => {
            if (forceAfterS === undefined) {
              this.waiters.delete(name);
              reject(new ControlRefusal(`${name}: the guest has not ejected it within ${wait} s (its eject request stands); \`detach ${target} --force-after S\` takes it back`));
              return;
            }
            this.ctx.note(`${name}: the guest did not eject it within ${forceAfterS} s: taking it back`);
            machine.request({ op: 'force-detach', name }).then(
              (r) => {
                if (r.op === 'force-detach') done(r.removal);
              },
              // The guest's eject came first: its event has resolved this already.
              (err: unknown) => (this.waiters.has(name) ? reject(err) : undefined),
            );
          }, wait * 1000);
        },
        (err: unknown) => {
          this.waiters.delete(name);
          reject(err instanceof HvmptError ? new ControlRefusal(err.message) : err);
        },
      );
    });
    const r = await removal;
    return this.finish(r);
  }

  /** A device left the bus (the machine's event): whoever waits for it is told; a guest-initiated eject is handed back too. */
  removed(r: Removal): void {
    const w = this.waiters.get(r.name);
    if (w !== undefined) w(r);
    else void this.finish(r).then((d) => this.ctx.note(`${d.detached}: ejected by the guest on its own; ${'driver' in d.host ? `back with ${d.host.driver ?? 'no driver'}` : d.host.note}`));
  }

  /** Closes the device's fds and gives it back to the driver it had; once per removal. */
  private finish(r: Removal): Promise<DetachResult> {
    const held = this.held.get(r.name);
    const how = r.how === 'ejected' ? ('ejected by the guest' as const) : ('forced' as const);
    if (held === undefined) {
      return Promise.resolve({ detached: r.name, how, slot: r.slot, problems: r.problems, host: { note: 'a device of the plan: it stays with its pass-through driver until the run ends (`hvmpt unbind` then)' } });
    }
    held.finishing ??= (async (): Promise<DetachResult> => {
      const problems = [...r.problems];
      try {
        held.opened.close();
      } catch (err) {
        problems.push(`closing its fds: ${err instanceof Error ? err.message : String(err)}`);
      }
      this.held.delete(r.name);
      let host: DetachResult['host'];
      if (held.boundFrom === undefined) host = { note: `${held.address} stays with ${held.driver}, as it was before the attach` };
      else host = { address: held.address, driver: this.giveBack(held.address, problems) };
      return { detached: r.name, how, slot: r.slot, problems, host };
    })();
    return held.finishing;
  }

  private giveBack(address: string, problems: string[] = []): string | null {
    try {
      const out = unbindFunctions([address]);
      return out.find((o) => o.address === address)?.now ?? null;
    } catch (err) {
      problems.push(`giving it back to its host driver: ${err instanceof Error ? err.message : String(err)}`);
      return null;
    }
  }

  async status(): Promise<MachineStatus> {
    const r = await this.running().request({ op: 'status' });
    if (r.op !== 'status') throw new Error(`status answered ${r.op}`);
    return r.status;
  }

  /** The bus as the guest has it, with each device's category and host function. */
  async devices(): Promise<Array<LiveDevice & { use: string | null; host?: string }>> {
    const s = await this.status();
    return s.devices.map((d) => {
      const held = this.held.get(d.name);
      const use = held !== undefined ? (held.entry.use?.allocation ?? 'dynamic') : (this.ctx.uses.find((u) => u.device === d.name)?.allocation ?? null);
      return { ...d, use, ...(held === undefined ? {} : { host: held.address }) };
    });
  }

  /** Held devices now: names and host functions, for status. */
  heldDevices(): Array<{ name: string; host: string }> {
    return [...this.held.values()].map((h) => ({ name: h.name, host: h.address }));
  }

  /** The machine ended: every device still attached is closed and given back. */
  closeAll(): void {
    for (const w of this.waiters.values()) w({ name: '', slot: -1, how: 'forced', problems: ['the machine stopped'] });
    this.waiters.clear();
    for (const h of [...this.held.values()]) {
      if (h.finishing !== undefined) continue;
      try {
        h.opened.close();
      } catch {
        // Best effort: the kernel releases the fds when the process ends.
      }
      if (h.boundFrom !== undefined) this.giveBack(h.address);
      this.held.delete(h.name);
    }
  }
}
