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
import type { RamRange } from './guest-memory.js';
import type { MmioBus, PortBus } from './io-bus.js';
import { windowOf } from './pci-platform.js';
import type { Vm } from './kvm/vm.js';
import { readLe, writeLe } from './le-bytes.js';

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

type Installed = { readonly kind: 'slot'; readonly slot: number } | { readonly kind: 'mmio'; readonly name: string; readonly base: number } | { readonly kind: 'pio'; readonly name: string };

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
  private readonly installed = new Map<string, Installed>();
  private readonly romImages = new Map<string, Uint8Array>();

  constructor(
    readonly pci: ComposedPci,
    private readonly vm: Vm,
    private readonly ports: PortBus,
    private readonly mmio: MmioBus,
    system: SystemControl,
    private readonly ram: readonly RamRange[],
    private readonly protection: ProtectionMap | undefined,
    roms: ReadonlyMap<string, Uint8Array>,
    ecamBase: bigint,
    private readonly windows: GuestWindows | undefined,
  ) {
    for (const [device, bytes] of roms) this.romImages.set(device, bytes);
    const topology = pci.topology;
    topology.onMapping((e) => this.apply(e));
    ports.register('pci-config', CF8_PORT, CF8_PORT_COUNT, new ConfigMechanism1(topology, { legacy: new ResetControl(system) }));
    const ecam = new EcamWindow(topology, { base: ecamBase });
    mmio.register('pci-ecam', Number(ecamBase), ecam.size, ecam);
    // Power-on state: decode off, BARs at zero, bridges closed; firmware programs the rest.
    topology.reset();
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
      this.uninstall(previous);
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
    const backing = this.backing(e.fn, e.bar, e.kind, m.size);
    if (e.kind === 'io') {
      if (m.address + m.size > 0x10000n) return { action: 'refused', detail: 'I/O range runs past port 0xFFFF' };
      if (backing === undefined) return { action: 'unbacked', detail: 'no device behaviour: reads all ones' };
      try {
        this.ports.register(name, Number(m.address), Number(m.size), portsOver(backing.bytes, Number(m.address)));
      } catch (err) {
        return { action: 'refused', detail: err instanceof Error ? err.message : String(err) };
      }
      this.installed.set(key, { kind: 'pio', name });
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
        this.installed.set(key, { kind: 'slot', slot });
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
    this.installed.set(key, { kind: 'mmio', name, base: Number(m.address) });
    return { action: 'trapped', detail: why };
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
