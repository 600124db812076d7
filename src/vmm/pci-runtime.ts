import { ResetControl } from '../hw/chipset/reset-control.js';
import type { SystemControl } from '../hw/chipset/system.js';
import type { AccessSize, MmioHandler, PortIoHandler } from '../hw/io.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import { formatBdf } from '../hw/pci/address.js';
import type { GuestWindows } from '../hw/pci/allocator.js';
import type { BarMapping, BarMappingEvent } from '../hw/pci/bars.js';
import { CF8_PORT, CF8_PORT_COUNT, ConfigMechanism1 } from '../hw/pci/cf8.js';
import type { ComposedPci } from '../hw/pci/compose.js';
import { EcamWindow } from '../hw/pci/ecam.js';
import type { PciFunction } from '../hw/pci/function.js';
import type { Mapping } from '../native/sys.js';
import type { RamRange } from '../hw/mem/ram-layout.js';
import type { MmioBus, PortBus } from './io-bus.js';
import { windowOf } from '../platform/pci-platform.js';
import type { Vm } from './kvm/vm.js';
import { readLe, writeLe } from '../util/le-bytes.js';
import type { BarInstall, InstalledPiece } from './passthrough.js';

/** A function whose BARs a live device installs (a pass-through back-end, a device plug-in). */
export interface LiveBars {
  installBar(e: BarMappingEvent, m: BarMapping, name: string): BarInstall | undefined;
}

/** One update-mapping event and what the monitor did about it. */
export interface MappingLogEntry {
  readonly device: string;
  readonly bdf: string;
  /** 0-5, or 'rom'. */
  readonly bar: number | 'rom';
  readonly kind: string;
  readonly old: { readonly address: string; readonly size: string } | null;
  readonly new: { readonly address: string; readonly size: string } | null;
  /**
   * mapped: a memory slot, the guest reaches it without exits; trapped: every access exits and
   * is served from the device's backing store; unbacked: an emulated device with no behaviour
   * behind the BAR (reads all ones); refused: nothing mapped, with the reason; unmapped.
   */
  readonly action: 'mapped' | 'trapped' | 'unbacked' | 'refused' | 'unmapped';
  readonly detail?: string;
  /**
   * Which of the host bridge's windows (the guest tables' _CRS) holds the new address, or
   * 'outside': an OS would find the BAR where its firmware said no device decodes.
   */
  readonly window?: 'io' | 'mem32' | 'mem64' | 'outside';
}

const MAX_BACKING = 1 << 30;
const PAGE = 4096;

interface Backing {
  readonly mapping: Mapping;
  readonly bytes: Uint8Array;
  readonly readonly: boolean;
}

type Installed = InstalledPiece;

/** What the PCI runtime works with, by name. */
export interface PciRuntimeOptions {
  readonly pci: ComposedPci;
  readonly vm: Vm;
  readonly ports: PortBus;
  readonly mmio: MmioBus;
  readonly system: SystemControl;
  /** Guest RAM: no BAR may be mapped over it. */
  readonly ram: readonly RamRange[];
  /** Identity layouts: what the guest may map. */
  readonly protection: ProtectionMap | undefined;
  /** Expansion ROM images by device name, served read-only at the ROM BAR. */
  readonly roms: ReadonlyMap<string, Uint8Array>;
  readonly ecamBase: bigint;
  /** The host bridge's windows (the tables' _CRS), for the mapping log. */
  readonly windows: GuestWindows | undefined;
  /** Functions backed by a live device, by function id (set once the bus is composed, before reset). */
  readonly passthrough?: ReadonlyMap<string, LiveBars>;
}

const hex = (v: bigint | number): string => '0x' + v.toString(16);

/**
 * The composed PCI bus inside a running machine: CF8/CFC (with 0xCF9 passed to the reset
 * control register) and the ECAM window on the buses, and every update-mapping event applied.
 * Real (replayed) devices' BARs are backed by plain memory; the expansion ROMs the plan names
 * are served read-only at their ROM BARs. Before anything is mapped, the memory layer's
 * protection map (identity layouts) or the RAM layout is consulted; what cannot be mapped is
 * trapped instead, and every decision is logged.
 */
export class PciRuntime {
  readonly log: MappingLogEntry[] = [];
  private readonly backings = new Map<string, Backing>();
  private readonly installed = new Map<string, Installed[]>();
  private readonly romImages = new Map<string, Uint8Array>();

  readonly pci: ComposedPci;
  private readonly vm: Vm;
  private readonly ports: PortBus;
  private readonly mmio: MmioBus;
  private readonly ram: readonly RamRange[];
  private readonly protection: ProtectionMap | undefined;
  private readonly windows: GuestWindows | undefined;
  private readonly passthrough: Map<string, LiveBars>;

  constructor(o: PciRuntimeOptions) {
    this.pci = o.pci;
    this.vm = o.vm;
    this.ports = o.ports;
    this.mmio = o.mmio;
    this.ram = o.ram;
    this.protection = o.protection;
    this.windows = o.windows;
    this.passthrough = new Map(o.passthrough ?? []);
    for (const [device, bytes] of o.roms) this.romImages.set(device, bytes);
    const topology = o.pci.topology;
    topology.onMapping((e) => this.apply(e));
    o.ports.register('pci-config', CF8_PORT, CF8_PORT_COUNT, new ConfigMechanism1(topology, { legacy: new ResetControl(o.system) }));
    const ecam = new EcamWindow(topology, { base: o.ecamBase });
    o.mmio.register('pci-ecam', Number(o.ecamBase), ecam.size, ecam);
    // Power-on state: decode off, BARs at zero, bridges closed; firmware programs the rest.
    topology.reset();
  }

  /** The live devices behind passthrough functions, by function id. */
  get devices(): ReadonlyMap<string, LiveBars> {
    return this.passthrough;
  }

  /** A function hot-plugged into the running machine: its BARs go to `live` from now on. */
  addLive(id: string, live: LiveBars): void {
    this.passthrough.set(id, live);
  }

  /**
   * Takes a function off the bus (hot-unplug, the guest's eject or a forced one): every piece
   * of its BARs (memory slots, trapped ranges, ports) uninstalled and logged first, so nothing
   * of the guest's address space reaches the device once its back-end closes. Idempotent.
   */
  removeFunction(fn: PciFunction): void {
    const prefix = `${fn.id}#`;
    for (const [key, pieces] of [...this.installed]) {
      if (!key.startsWith(prefix)) continue;
      for (const p of pieces) this.uninstall(p);
      this.installed.delete(key);
      const bar = Number(key.slice(prefix.length));
      this.log.push({ device: fn.id, bdf: formatBdf(fn.address), bar: bar === 6 ? 'rom' : bar, kind: 'removed', old: null, new: null, action: 'unmapped', detail: 'the function left the bus (hot-unplug)' });
    }
    this.passthrough.delete(fn.id);
    if (this.pci.topology.isAttached(fn)) this.pci.topology.detach(fn);
  }

  private key(fn: PciFunction, bar: number): string {
    return `${fn.id}#${bar}`;
  }

  private backing(fn: PciFunction, bar: number, kind: string, size: bigint): Backing | undefined {
    const key = this.key(fn, bar);
    const have = this.backings.get(key);
    if (have !== undefined) return have;
    const rom = kind === 'rom' ? this.romImages.get(fn.id) : undefined;
    // Emulated and fake functions have no behaviour behind their BARs, except a ROM the plan gave.
    if (rom === undefined && (fn.kind !== 'real' || kind === 'rom')) return undefined;
    if (size > BigInt(MAX_BACKING)) return undefined;
    const n = Math.max(Number(size), PAGE);
    const mapping = this.vm.allocate(n);
    const bytes = new Uint8Array(mapping.buffer);
    if (rom !== undefined) bytes.set(rom.subarray(0, n));
    const b = { mapping, bytes, readonly: kind === 'rom' };
    this.backings.set(key, b);
    return b;
  }

  private apply(e: BarMappingEvent): void {
    const key = this.key(e.fn, e.bar);
    const base = {
      device: e.fn.id,
      bdf: formatBdf(e.bdf),
      bar: e.bar === 6 ? ('rom' as const) : e.bar,
      kind: e.kind,
      old: e.old === null ? null : { address: hex(e.old.address), size: hex(e.old.size) },
      new: e.new === null ? null : { address: hex(e.new.address), size: hex(e.new.size) },
    };
    const previous = this.installed.get(key);
    if (previous !== undefined) {
      for (const p of previous) this.uninstall(p);
      this.installed.delete(key);
    }
    if (e.new === null) {
      this.log.push({ ...base, action: 'unmapped' });
      return;
    }
    const decision = this.install(e, e.new, key);
    const window = this.windows === undefined ? undefined : windowOf(this.windows, e.kind === 'io' ? 'io' : 'mem', e.new.address, e.new.size);
    this.log.push({ ...base, ...decision, ...(window === undefined ? {} : { window }) });
  }

  private install(e: BarMappingEvent, m: BarMapping, key: string): { action: MappingLogEntry['action']; detail?: string } {
    const name = `${e.fn.id} ${e.bar === 6 ? 'ROM' : `BAR${e.bar}`}`;
    const live = e.bar === 6 ? undefined : this.passthrough.get(e.fn.id);
    if (live !== undefined) return this.installLive(live, e, m, key, name);
    const backing = this.backing(e.fn, e.bar, e.kind, m.size);
    if (e.kind === 'io') {
      if (m.address + m.size > 0x10000n) return { action: 'refused', detail: 'I/O range runs past port 0xFFFF' };
      if (backing === undefined) return { action: 'unbacked', detail: 'no device behaviour: reads all ones' };
      try {
        this.ports.register(name, Number(m.address), Number(m.size), portsOver(backing.bytes, Number(m.address)));
      } catch (err) {
        return { action: 'refused', detail: err instanceof Error ? err.message : String(err) };
      }
      this.installed.set(key, [{ kind: 'pio', name }]);
      return { action: 'trapped', detail: 'port I/O served from the replayed device store' };
    }
    const end = m.address + m.size;
    if (end > BigInt(Number.MAX_SAFE_INTEGER)) return { action: 'refused', detail: 'above the addresses the monitor dispatches' };
    const overRam = this.ram.find((r) => m.address < r.end && r.start < end);
    if (overRam !== undefined) return { action: 'refused', detail: `overlaps guest RAM [${hex(overRam.start)}, ${hex(overRam.end)})` };
    if (backing === undefined) return { action: 'unbacked', detail: 'no device behaviour: reads all ones' };
    let why: string | undefined;
    if (this.protection !== undefined) {
      const d = this.protection.mayMapSpan(m.address, m.size, backing.readonly ? 'read' : 'write');
      if (!d.allowed) why = `protection map: ${d.reason}`;
    }
    if (why === undefined && (m.address % BigInt(PAGE) !== 0n || m.size % BigInt(PAGE) !== 0n)) why = 'smaller than or not aligned to a page';
    if (why === undefined) {
      const slot = this.vm.freeSlot();
      try {
        this.vm.setMemorySlot({ slot, guestAddress: m.address, size: Number(m.size), hostAddress: backing.mapping.address, readonly: backing.readonly });
        this.installed.set(key, [{ kind: 'slot', slot }]);
        return { action: 'mapped' };
      } catch (err) {
        why = `KVM refused the slot: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    try {
      this.mmio.register(name, Number(m.address), Number(m.size), mmioOver(backing.bytes, backing.readonly));
    } catch (err) {
      return { action: 'refused', detail: `${why}; ${err instanceof Error ? err.message : String(err)}` };
    }
    this.installed.set(key, [{ kind: 'mmio', name, base: Number(m.address) }]);
    return { action: 'trapped', detail: why };
  }

  /** A live device's BAR: the checks every BAR gets, then its back-end maps or forwards it. */
  private installLive(live: LiveBars, e: BarMappingEvent, m: BarMapping, key: string, name: string): { action: MappingLogEntry['action']; detail?: string } {
    const end = m.address + m.size;
    if (e.kind === 'io') {
      if (end > 0x10000n) return { action: 'refused', detail: 'I/O range runs past port 0xFFFF' };
    } else {
      if (end > BigInt(Number.MAX_SAFE_INTEGER)) return { action: 'refused', detail: 'above the addresses the monitor dispatches' };
      const overRam = this.ram.find((r) => m.address < r.end && r.start < end);
      if (overRam !== undefined) return { action: 'refused', detail: `overlaps guest RAM [${hex(overRam.start)}, ${hex(overRam.end)}): left disabled` };
      if (this.protection !== undefined) {
        const d = this.protection.mayMapSpan(m.address, m.size, 'write');
        if (!d.allowed) return { action: 'refused', detail: `protection map: ${d.reason}: left disabled` };
      }
    }
    let result;
    try {
      result = live.installBar(e, m, name);
    } catch (err) {
      return { action: 'refused', detail: err instanceof Error ? err.message : String(err) };
    }
    if (result === undefined) return { action: 'unbacked', detail: 'the back-end has no such region' };
    this.installed.set(key, [...result.pieces]);
    return { action: result.action, ...(result.detail === undefined ? {} : { detail: result.detail }) };
  }

  private uninstall(i: Installed): void {
    if (i.kind === 'slot') this.vm.removeMemorySlot(i.slot);
    else if (i.kind === 'mmio') this.mmio.unregister(i.name, i.base);
    else this.ports.unregister(i.name);
  }
}



function mmioOver(bytes: Uint8Array, readonly: boolean): MmioHandler {
  return {
    readMmio: (offset, size) => readLe(bytes, offset, size),
    writeMmio: (offset, size, value) => {
      if (!readonly) writeLe(bytes, offset, size, value);
    },
  };
}

function portsOver(bytes: Uint8Array, base: number): PortIoHandler {
  return {
    readPort: (port, size) => readLe(bytes, port - base, size),
    writePort: (port, size, value) => writeLe(bytes, port - base, size, value),
  };
}
