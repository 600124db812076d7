/**
 * Device plug-ins in the monitor: each instance lives in the vCPU thread behind its composed
 * function, so a guest access reaches its handler with no thread hop. The monitor is the
 * instance's host: INTx through the PIRQ routing, MSI and MSI-X as KVM_SIGNAL_MSI, DMA into
 * guest RAM under the protection map, `memory` BARs as KVM memory slots, every fault reported
 * through the I/O ledger (which fails all of the device's ranges at once).
 */
import type { MmioHandler, PortIoHandler } from '../hw/io.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import type { BarMapping, BarMappingEvent } from '../hw/pci/bars.js';
import type { PciFunction } from '../hw/pci/function.js';
import type { Mapping } from '../native/sys.js';
import type { DeviceLayout, PciDeviceDefinition } from '../plugin/api.js';
import { runPlugin } from '../plugin/watchdog.js';
import { PluginDevice } from '../plugin/device.js';
import type { PluginAttachment } from '../platform/plugins.js';
import type { GuestMemory } from './guest-memory.js';
import type { IoLedger, MmioBus, PortBus } from './io-bus.js';
import type { Vm } from './kvm/vm.js';
import type { BarInstall, InstalledPiece } from './passthrough.js';

const PAGE = 0x1000;

export interface PluginHostDeps {
  readonly vm: Vm;
  readonly mmio: MmioBus;
  readonly ports: PortBus;
  readonly memory: GuestMemory;
  readonly protection: ProtectionMap | undefined;
  readonly ledger: IoLedger;
  readonly setIntx: (device: string, level: boolean) => void;
  readonly note: (text: string) => void;
}

/** A device plug-in in the monitor: the instance, and its BARs installed where the guest's firmware put them. */
export class MonitorPlugin {
  readonly device: PluginDevice;
  private readonly memories = new Map<number, Mapping>();

  constructor(
    private readonly deps: PluginHostDeps,
    readonly attachment: PluginAttachment,
    definition: PciDeviceDefinition,
    options: unknown,
    fn: PciFunction,
  ) {
    const name = fn.id;
    // The main thread composed the bus from this same call; a layout that throws here (or
    // differs) is a plug-in that is not pure: its function stays on the bus, failed.
    let layout: DeviceLayout;
    let broken: string | undefined;
    try {
      layout = runPlugin(name, () => definition.layout(options));
    } catch (err) {
      layout = { vendorId: 0, deviceId: 0, classCode: 0 };
      broken = `its layout threw in the vCPU thread: ${err instanceof Error ? err.message : String(err)}`;
    }
    const def = broken === undefined ? definition : { ...definition, create: () => ({}) };
    this.device = new PluginDevice(def, options, fn, layout, {
      callLimitMs: attachment.watchdogMs,
      setIntx: (level) => deps.setIntx(name, level),
      signalMessage: (_kind, _vector, address, data) => deps.vm.signalMsi(address, data),
      memory: deps.memory,
      protection: deps.protection,
      barMemory: (bar, size) => {
        const m = deps.vm.allocate(Math.max(PAGE, Math.ceil(size / PAGE) * PAGE));
        this.memories.set(bar, m);
        return new Uint8Array(m.buffer, 0, size);
      },
      note: deps.note,
      fault: (message) => deps.ledger.noteFault({ device: name, space: 'mmio', address: 0, write: false, message }),
    });
    if (broken !== undefined) this.device.fail(broken);
  }

  /** Installs BAR `e.bar` at its new address: plain memory as a slot (MSI-X pages trapped), handlers as trapped ranges. */
  installBar(e: BarMappingEvent, m: BarMapping, name: string): BarInstall | undefined {
    const access = this.device.barAccess(e.bar);
    const device = this.device.name;
    if (e.kind === 'io') {
      const base = Number(m.address);
      this.deps.ports.register(name, base, Number(m.size), {
        readPort: (port, size) => access.read(port - base, size),
        writePort: (port, size, value) => access.write(port - base, size, value),
      } satisfies PortIoHandler);
      return { action: 'trapped', detail: `port I/O to the plug-in ${device}`, pieces: [{ kind: 'pio', name }] };
    }
    const handler = (offset: number): MmioHandler => ({
      readMmio: (o, size) => access.read(offset + o, size),
      writeMmio: (o, size, value) => access.write(offset + o, size, value),
    });
    const memory = this.memories.get(e.bar);
    const pieces: InstalledPiece[] = [];
    const base = Number(m.address);
    const size = Number(m.size);
    const mappable = memory !== undefined && base % PAGE === 0 && size % PAGE === 0;
    if (!mappable) {
      this.deps.mmio.register(name, base, size, handler(0));
      return { action: 'trapped', detail: memory === undefined ? `MMIO to the plug-in ${device}` : 'plug-in memory, trapped (smaller than or not aligned to a page)', pieces: [{ kind: 'mmio', name, base }] };
    }
    // Memory: slots, but the MSI-X table and PBA pages trap so hvmpt's emulation sees them.
    const traps = this.device.trappedSpans(e.bar).map((s) => ({ start: Math.floor(s.offset / PAGE) * PAGE, end: Math.min(size, Math.ceil((s.offset + s.length) / PAGE) * PAGE) })).sort((a, b) => a.start - b.start);
    let at = 0;
    const slot = (from: number, to: number): void => {
      if (to <= from) return;
      const s = this.deps.vm.freeSlot();
      this.deps.vm.setMemorySlot({ slot: s, guestAddress: m.address + BigInt(from), size: to - from, hostAddress: memory.address + BigInt(from), readonly: false });
      pieces.push({ kind: 'slot', slot: s });
    };
    for (const t of traps) {
      slot(at, t.start);
      if (t.end > Math.max(at, t.start)) {
        const from = Math.max(at, t.start);
        this.deps.mmio.register(`${name} MSI-X`, base + from, t.end - from, handler(from));
        pieces.push({ kind: 'mmio', name: `${name} MSI-X`, base: base + from });
      }
      at = Math.max(at, t.end);
    }
    slot(at, size);
    return { action: 'mapped', detail: traps.length > 0 ? 'plug-in memory; MSI-X table and PBA trapped' : 'plug-in memory', pieces };
  }
}
