/**
 * A real device driven through its back-end, inside the vCPU thread: its BARs mapped into the
 * guest as memory slots (the MSI-X table and PBA pages trapped), I/O BARs and unmappable parts
 * forwarded, INTx handed to KVM as an irqfd whose resample unmasks the device on the guest's
 * EOI and which follows the PIRQ routing, MSI and MSI-X vectors as KVM routes with one irqfd
 * each, and the guest's RAM mapped for the device's DMA.
 */
import type { AccessSize, MmioHandler } from '../hw/io.js';
import type { AttachedDevice, RegionAccess } from '../hw/pci/backend.js';
import type { BarMapping, BarMappingEvent } from '../hw/pci/bars.js';
import { CAP_MSI, CAP_MSIX, walkCapabilities } from '../hw/pci/capabilities.js';
import type { PciFunction } from '../hw/pci/function.js';
import { intxRoute } from '../hw/pci/intx.js';
import { deliverable, MsiCapability, MsixTable, type InterruptConfigEvent, type MsiState, type MsixState } from '../hw/pci/msi.js';
import type { PciTopology } from '../hw/pci/topology.js';
import { PirqRouter } from '../hw/irq/pirq.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, type Sys } from '../native/sys.js';
import type { MmioBus, PortBus } from './io-bus.js';
import type { Vm } from './kvm/vm.js';
import type { MsiRoutes } from './msi-routes.js';

const PAGE = 0x1000n;

export interface PassthroughDeps {
  readonly sys: Sys;
  readonly vm: Vm;
  readonly mmio: MmioBus;
  readonly ports: PortBus;
  readonly routes: MsiRoutes;
  readonly pirq: PirqRouter;
  readonly topology: PciTopology;
  /** Guest RAM: guest-physical ranges and the host memory behind them (what the device's DMA reaches). */
  readonly ram: ReadonlyArray<{ readonly start: bigint; readonly end: bigint; readonly host: bigint }>;
  /** Something to tell the user (stderr line and report). */
  readonly log: (line: string) => void;
}

/** One piece of a BAR as installed: a memory slot, a trapped MMIO range, or trapped ports. */
export type InstalledPiece = { readonly kind: 'slot'; readonly slot: number } | { readonly kind: 'mmio'; readonly name: string; readonly base: number } | { readonly kind: 'pio'; readonly name: string };

export interface BarInstall {
  readonly action: 'mapped' | 'trapped' | 'refused';
  readonly detail?: string;
  readonly pieces: readonly InstalledPiece[];
}

interface Vector {
  readonly fd: number;
  readonly gsi: number;
  wired: boolean;
}

const hex = (v: bigint | number): string => '0x' + v.toString(16);

export class PassthroughDevice {
  private readonly msi: MsiCapability | undefined;
  private readonly msix: MsixTable | undefined;
  private intx: { trigger: number; resample: number; gsi: number | undefined } | undefined;
  private mode: 'intx' | 'msi' | 'msix' = 'intx';
  private vectors: Vector[] = [];
  /** Vectors VFIO was given, by mode (it needs them all at once; changing the count means off, then on). */
  private enabledCount = 0;
  private readonly stats = { intxRoutes: 0, msiChanges: 0 };
  private closed = false;

  constructor(
    private readonly deps: PassthroughDeps,
    readonly fn: PciFunction,
    readonly device: AttachedDevice,
  ) {
    // The capabilities the guest sees (hidden ones are not in its chain).
    const caps = walkCapabilities((o, s) => fn.read(o, s), fn.length, fn.read(0x0e, 1) & 0x7f).caps;
    const onConfig = (e: InterruptConfigEvent): void => this.interruptConfig(e);
    const msi = caps.find((c) => !c.extended && c.id === CAP_MSI);
    const msix = caps.find((c) => !c.extended && c.id === CAP_MSIX);
    this.msi = msi !== undefined && device.description.interrupts.msi > 0 ? new MsiCapability(fn, msi.offset, onConfig) : undefined;
    this.msix = msix !== undefined && device.description.interrupts.msix > 0 ? new MsixTable(fn, msix.offset, onConfig) : undefined;
    if (device.description.backend === 'uio') {
      deps.log(`${fn.id}: ${device.description.source}: no DMA mapping (no IOMMU: the device reaches machine addresses, which identity RAM makes the guest's)`);
    } else {
      const t0 = performance.now();
      for (const r of deps.ram) device.dma.map(r.start, r.end - r.start, r.host);
      const mib = deps.ram.reduce((n, r) => n + (r.end - r.start), 0n) >> 20n;
      deps.log(`${fn.id}: ${device.description.source}: guest RAM (${mib} MiB) mapped for its DMA in ${Math.round(performance.now() - t0)} ms`);
    }
    if (device.description.interrupts.intx === 1 && fn.read(0x3d, 1) !== 0) {
      const trigger = deps.sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      const resample = deps.sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      device.interrupts.connectIntx(trigger, resample);
      this.intx = { trigger, resample, gsi: undefined };
      this.routeIntx();
    }
  }

  // ---------------------------------------------------------------- BARs

  /** Installs one BAR at its new guest address: what can be mapped is, the rest is forwarded. */
  installBar(e: BarMappingEvent, m: BarMapping, name: string): BarInstall | undefined {
    const region = this.device.region(e.bar);
    if (region === undefined) return undefined;
    if (e.kind === 'io') {
      const base = Number(m.address);
      this.deps.ports.register(name, base, Number(m.size), {
        readPort: (port, size) => region.read(port - base, size),
        writePort: (port, size, value) => region.write(port - base, size, value),
      });
      return { action: 'trapped', detail: 'port I/O forwarded to the device', pieces: [{ kind: 'pio', name }] };
    }
    const traps = this.trapSpans(e.bar, m.size);
    const pieces: InstalledPiece[] = [];
    let mappedBytes = 0n;
    let forwarded = 0n;
    try {
      for (const span of splitSpans(m.size, traps)) {
        const guest = m.address + span.offset;
        if (span.trap !== undefined) {
          this.deps.mmio.register(`${name} ${span.trap}`, Number(guest), Number(span.size), this.trapHandler(region, e.bar, span.offset));
          pieces.push({ kind: 'mmio', name: `${name} ${span.trap}`, base: Number(guest) });
          continue;
        }
        const host = span.offset % PAGE === 0n && span.size % PAGE === 0n && guest % PAGE === 0n ? region.map(span.offset, span.size) : undefined;
        if (host !== undefined) {
          const slot = this.deps.vm.freeSlot();
          this.deps.vm.setMemorySlot({ slot, guestAddress: guest, size: Number(span.size), hostAddress: host.address, readonly: false });
          pieces.push({ kind: 'slot', slot });
          mappedBytes += span.size;
        } else {
          this.deps.mmio.register(name, Number(guest), Number(span.size), forwardHandler(region, span.offset));
          pieces.push({ kind: 'mmio', name, base: Number(guest) });
          forwarded += span.size;
        }
      }
    } catch (err) {
      this.uninstall(pieces);
      return { action: 'refused', detail: err instanceof Error ? err.message : String(err), pieces: [] };
    }
    const trapped = traps.reduce((n, t) => n + t.size, 0n);
    const notes: string[] = [];
    if (trapped > 0n) notes.push(`MSI-X ${traps.map((t) => t.what).join(' and ')} trapped (${hex(trapped)} bytes)`);
    if (forwarded > 0n) notes.push(`${hex(forwarded)} bytes forwarded (not mappable: ${m.size < PAGE ? 'smaller than a page' : 'outside the mmap areas or unaligned'})`);
    return { action: mappedBytes > 0n ? 'mapped' : 'trapped', ...(notes.length === 0 ? {} : { detail: notes.join('; ') }), pieces };
  }

  uninstall(pieces: readonly InstalledPiece[]): void {
    for (const p of pieces) {
      if (p.kind === 'slot') this.deps.vm.removeMemorySlot(p.slot);
      else if (p.kind === 'mmio') this.deps.mmio.unregister(p.name, p.base);
      else this.deps.ports.unregister(p.name);
    }
  }

  /** The page-rounded spans of a BAR that hold the MSI-X table or PBA. */
  private trapSpans(bar: number, size: bigint): Array<{ offset: bigint; size: bigint; what: string }> {
    const t = this.msix;
    if (t === undefined) return [];
    const out: Array<{ offset: bigint; size: bigint; what: string }> = [];
    for (const [span, what] of [[t.table, 'table'], [t.pba, 'PBA']] as const) {
      if (span.bar !== bar) continue;
      const start = (BigInt(span.offset) / PAGE) * PAGE;
      const end = ((BigInt(span.offset + span.length) + PAGE - 1n) / PAGE) * PAGE;
      out.push({ offset: start, size: (end > size ? size : end) - start, what });
    }
    // Table and PBA may share a page: merge overlapping spans.
    out.sort((a, b) => (a.offset < b.offset ? -1 : 1));
    const merged: typeof out = [];
    for (const s of out) {
      const last = merged.at(-1);
      if (last !== undefined && s.offset <= last.offset + last.size) {
        const end = s.offset + s.size > last.offset + last.size ? s.offset + s.size : last.offset + last.size;
        merged[merged.length - 1] = { offset: last.offset, size: end - last.offset, what: `${last.what} and ${s.what}` };
      } else merged.push(s);
    }
    return merged;
  }

  /** Table and PBA from the emulated MSI-X state; anything else on those pages goes to the device. */
  private trapHandler(region: RegionAccess, bar: number, spanOffset: bigint): MmioHandler {
    const t = this.msix!;
    const base = Number(spanOffset);
    const inTable = (o: number, size: number): boolean => t.table.bar === bar && o >= t.table.offset && o + size <= t.table.offset + t.table.length;
    const inPba = (o: number, size: number): boolean => t.pba.bar === bar && o >= t.pba.offset && o + size <= t.pba.offset + t.pba.length;
    return {
      readMmio: (offset: number, size: AccessSize): number => {
        const o = base + offset;
        if (inTable(o, size)) return t.readTable(o - t.table.offset, size);
        if (inPba(o, size)) {
          this.collectPending();
          return t.readPba(o - t.pba.offset, size);
        }
        return region.read(o, size);
      },
      writeMmio: (offset: number, size: AccessSize, value: number): void => {
        const o = base + offset;
        if (inTable(o, size)) t.writeTable(o - t.table.offset, size, value);
        else if (!inPba(o, size)) region.write(o, size, value);
      },
    };
  }

  // ---------------------------------------------------------------- INTx

  /**
   * Connects INTx to the GSI its PIRQ is routed to now (the guest's firmware and OS program the
   * PIIX3's route registers), or to nothing while its PIRQ is disabled or MSI is on.
   */
  routeIntx(): void {
    const x = this.intx;
    if (x === undefined) return;
    let gsi: number | undefined;
    if (this.mode === 'intx' && !this.fn.hidden) {
      const route = intxRoute(this.deps.topology, this.fn);
      if (route !== undefined) gsi = this.deps.pirq.isaIrq(PirqRouter.pirqOf(route.rootDevice, route.rootPin));
    }
    if (gsi === x.gsi) return;
    if (x.gsi !== undefined) this.deps.vm.removeIrqfd(x.trigger, x.gsi);
    if (gsi !== undefined) this.deps.vm.irqfd(x.trigger, gsi, x.resample);
    this.deps.log(`${this.fn.id}: INTx ${gsi === undefined ? 'not routed' : `on GSI ${gsi}`}${x.gsi === undefined ? '' : ` (was GSI ${x.gsi})`}`);
    x.gsi = gsi;
    this.stats.intxRoutes++;
  }

  // ---------------------------------------------------------------- MSI and MSI-X

  private interruptConfig(e: InterruptConfigEvent): void {
    const s = e.state;
    this.stats.msiChanges++;
    const wanted = s.enabled ? s.kind : 'intx';
    if (wanted !== this.mode || (s.enabled && s.vectors.length !== this.enabledCount)) this.switchMode(s);
    if (s.enabled) this.wire(s);
    this.deps.routes.commit();
  }

  /** VFIO takes one interrupt mode at a time and all of a mode's vectors at once. */
  private switchMode(s: MsiState | MsixState): void {
    const dev = this.device.interrupts;
    if (this.mode !== 'intx') {
      for (const v of this.vectors) this.unwire(v);
      dev.setVectors(this.mode, []);
      for (const v of this.vectors) {
        this.deps.routes.release(v.gsi);
        this.deps.sys.close(v.fd);
      }
      this.vectors = [];
      this.enabledCount = 0;
    } else if (this.intx !== undefined && s.enabled) {
      if (this.intx.gsi !== undefined) this.deps.vm.removeIrqfd(this.intx.trigger, this.intx.gsi);
      this.intx.gsi = undefined;
      dev.disconnectIntx();
    }
    if (!s.enabled) {
      if (this.mode !== 'intx') this.deps.log(`${this.fn.id}: ${this.mode === 'msi' ? 'MSI' : 'MSI-X'} off, back to INTx`);
      this.mode = 'intx';
      if (this.intx !== undefined) {
        dev.connectIntx(this.intx.trigger, this.intx.resample);
        this.routeIntx();
      }
      return;
    }
    this.mode = s.kind;
    const count = Math.min(s.vectors.length, s.kind === 'msi' ? this.device.description.interrupts.msi : this.device.description.interrupts.msix);
    for (let i = 0; i < count; i++) this.vectors.push({ fd: this.deps.sys.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), gsi: this.deps.routes.allocate(), wired: false });
    this.enabledCount = s.vectors.length;
    dev.setVectors(s.kind, this.vectors.map((v) => v.fd));
    this.deps.log(`${this.fn.id}: ${s.kind === 'msi' ? 'MSI' : 'MSI-X'} on, ${count} vectors`);
  }

  /** Each vector the guest may receive gets its route and irqfd; a masked one loses its irqfd and keeps counting in its eventfd. */
  private wire(s: MsiState | MsixState): void {
    this.vectors.forEach((v, i) => {
      const msg = s.vectors[i]!;
      if (deliverable(s, i)) {
        this.deps.routes.set(v.gsi, msg.address, msg.data);
        if (!v.wired) {
          // Commit the route before the irqfd: KVM injects at once what the eventfd already counted (a vector that fired while masked).
          this.deps.routes.commit();
          this.deps.vm.irqfd(v.fd, v.gsi);
          v.wired = true;
          if (s.kind === 'msix') this.msix?.setPending(i, false);
        }
      } else this.unwire(v);
    });
  }

  private unwire(v: Vector): void {
    if (!v.wired) return;
    this.deps.vm.removeIrqfd(v.fd, v.gsi);
    v.wired = false;
  }

  /** Masked MSI-X vectors that fired since: their PBA bits (their eventfds keep the count for when they are unmasked). */
  private collectPending(): void {
    const t = this.msix;
    if (t === undefined || this.mode !== 'msix') return;
    this.vectors.forEach((v, i) => {
      if (v.wired) return;
      const n = this.deps.sys.eventfdRead(v.fd);
      if (n === undefined || n === 0n) return;
      t.setPending(i, true);
      this.deps.sys.eventfdWrite(v.fd, n);
    });
  }

  // ---------------------------------------------------------------- life cycle

  /** The device's power-on state again (a guest reset): interrupts back to INTx, the device reset. */
  reset(): string {
    if (this.mode !== 'intx') this.switchMode({ kind: this.mode, enabled: false, vectors: [] } as MsiState);
    this.msix?.reset();
    this.msi?.refresh();
    this.deps.routes.commit();
    return this.device.reset();
  }

  summary(): string {
    const x = this.intx;
    return `${this.fn.id}: ${this.device.description.source}; interrupts ${this.mode}${x?.gsi !== undefined ? ` (INTx on GSI ${x.gsi})` : ''}, ${this.vectors.filter((v) => v.wired).length} vectors wired, ${this.stats.msiChanges} MSI/MSI-X reprogrammings`;
  }

  /**
   * Stops the device (reset, so no DMA is in flight) before its interrupts, DMA and mappings go;
   * its MSI GSIs go back to the pool. Once only: a hot-unplug and the run's end may both ask.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const v of this.vectors) this.unwire(v);
    if (this.intx?.gsi !== undefined) this.deps.vm.removeIrqfd(this.intx.trigger, this.intx.gsi);
    this.device.reset();
    this.device.close();
    for (const v of this.vectors) {
      this.deps.routes.release(v.gsi);
      this.deps.sys.close(v.fd);
    }
    this.vectors = [];
    this.deps.routes.commit();
    if (this.intx !== undefined) {
      this.deps.sys.close(this.intx.trigger);
      this.deps.sys.close(this.intx.resample);
    }
  }
}

function forwardHandler(region: RegionAccess, base: bigint): MmioHandler {
  const b = Number(base);
  return {
    readMmio: (offset, size) => region.read(b + offset, size),
    writeMmio: (offset, size, value) => region.write(b + offset, size, value),
  };
}

/** Cuts [0, size) into spans: the trapped ones as given, the rest between them. */
function splitSpans(size: bigint, traps: ReadonlyArray<{ offset: bigint; size: bigint; what: string }>): Array<{ offset: bigint; size: bigint; trap?: string }> {
  const out: Array<{ offset: bigint; size: bigint; trap?: string }> = [];
  let at = 0n;
  for (const t of traps) {
    if (t.offset >= size) break;
    if (t.offset > at) out.push({ offset: at, size: t.offset - at });
    out.push({ offset: t.offset, size: t.size, trap: `MSI-X ${t.what}` });
    at = t.offset + t.size;
  }
  if (at < size) out.push({ offset: at, size: size - at });
  return out;
}
