import { MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Mapping } from '../../native/sys.js';
import {
  IOCTL,
  COALESCED_ZONE,
  IOEVENTFD,
  IOEVENTFD_FLAG_DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN,
  IOEVENTFD_FLAG_PIO,
  IRQ_LEVEL,
  IRQ_ROUTING,
  IRQ_ROUTING_ENTRY,
  IRQ_ROUTING_IRQCHIP,
  IRQ_ROUTING_MSI,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  IRQFD,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  MEM_READONLY,
  MEMORY_REGION,
  MSI,
  PIT_CONFIG,
  PIT_SPEAKER_DUMMY,
  SIZE,
} from './abi.js';
import type { Kvm } from './system.js';
import { Vcpu } from './vcpu.js';

export interface MemorySlot {
  readonly slot: number;
  readonly guestAddress: bigint;
  readonly size: number;
  /** Host address of the backing memory (from `Vm.allocate`). */
  readonly hostAddress: bigint;
  /** Read-only slots make guest writes exit as MMIO (ROM semantics). */
  readonly readonly: boolean;
}

/** One GSI routing entry: to a pin of the in-kernel irqchip, or an MSI message. */
export type GsiRoute =
  | { readonly kind: 'irqchip'; readonly gsi: number; readonly chip: 'pic-master' | 'pic-slave' | 'ioapic'; readonly pin: number }
  | { readonly kind: 'msi'; readonly gsi: number; readonly address: bigint; readonly data: number };

const CHIP_ID = { 'pic-master': IRQCHIP_PIC_MASTER, 'pic-slave': IRQCHIP_PIC_SLAVE, ioapic: IRQCHIP_IOAPIC } as const;

/** Where KVM's VMX real-mode helpers live: the same addresses QEMU uses, just below the BIOS. */
const TSS_ADDRESS = 0xfffb_d000;
const IDENTITY_MAP_ADDRESS = 0xfffb_c000n;
/** A transparent huge page on x86-64. */
const HUGE_PAGE = 2 << 20;

/** A KVM virtual machine: its memory slots, interrupt controllers and event fds. */
export class Vm {
  readonly sys: Kvm['sys'];
  private readonly slots = new Map<number, MemorySlot>();
  private readonly irqfds = new Set<string>();

  constructor(
    readonly kvm: Kvm,
    readonly fd: number,
  ) {
    this.sys = kvm.sys;
    this.sys.ioctlValue(fd, IOCTL.SET_TSS_ADDR, TSS_ADDRESS);
    const idmap = new Uint8Array(8);
    new DataView(idmap.buffer).setBigUint64(0, IDENTITY_MAP_ADDRESS, true);
    this.sys.ioctlBuffer(fd, IOCTL.SET_IDENTITY_MAP_ADDR, idmap);
  }

  /**
   * Anonymous host memory to back guest RAM, a ROM or a BAR; reserved lazily (untouched pages
   * cost nothing). Advised for huge pages like all guest memory (see `allocateRam`), which also
   * marks it as the guest's in /proc/PID/smaps (VmFlags `hg`), as QEMU's RAM blocks are.
   */
  allocate(size: number): Mapping {
    const m = this.sys.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    this.adviseHugePages(m.address, size);
    return m;
  }

  private adviseHugePages(address: bigint, size: number): void {
    try {
      this.sys.madvise(address, size, MADV_HUGEPAGE);
    } catch {
      // THP disabled or not built: 4 KiB pages, slower but correct.
    }
  }

  /**
   * Memory for guest RAM at `guestAddress`: placed so host and guest addresses agree modulo
   * 2 MiB and advised for transparent huge pages, as QEMU does. KVM can then map the guest's
   * RAM with 2 MiB pages, which matters most nested, where every 4 KiB fault is a round trip
   * through two hypervisors. Where the host refuses the advice, ordinary pages serve.
   */
  allocateRam(size: number, guestAddress: bigint): Mapping {
    if (size < HUGE_PAGE) return this.allocate(size);
    const rw = PROT_READ | PROT_WRITE;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    const span = size + HUGE_PAGE;
    const reserve = this.sys.mmap(span, rw, flags, -1, 0);
    const skew = Number((((guestAddress - reserve.address) % BigInt(HUGE_PAGE)) + BigInt(HUGE_PAGE)) % BigInt(HUGE_PAGE));
    const start = reserve.address + BigInt(skew);
    let ram: Mapping;
    try {
      ram = this.sys.mmap(size, rw, flags | MAP_FIXED, -1, 0, start);
    } catch (err) {
      this.sys.munmap(reserve);
      throw err;
    }
    if (skew > 0) this.sys.munmap({ address: reserve.address, length: skew });
    if (span - skew - size > 0) this.sys.munmap({ address: start + BigInt(size), length: span - skew - size });
    this.adviseHugePages(ram.address, size);
    return ram;
  }

  /** Installs (or with size 0, removes) a memory slot. */
  setMemorySlot(slot: MemorySlot): void {
    const buf = new Uint8Array(SIZE.userspaceMemoryRegion);
    const v = new DataView(buf.buffer);
    v.setUint32(MEMORY_REGION.slot, slot.slot, true);
    v.setUint32(MEMORY_REGION.flags, slot.readonly ? MEM_READONLY : 0, true);
    v.setBigUint64(MEMORY_REGION.guestPhysAddr, slot.guestAddress, true);
    v.setBigUint64(MEMORY_REGION.memorySize, BigInt(slot.size), true);
    v.setBigUint64(MEMORY_REGION.userspaceAddr, slot.hostAddress, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_USER_MEMORY_REGION, buf);
    if (slot.size === 0) this.slots.delete(slot.slot);
    else this.slots.set(slot.slot, slot);
  }

  removeMemorySlot(slot: number): void {
    const s = this.slots.get(slot);
    if (s === undefined) return;
    this.setMemorySlot({ ...s, size: 0 });
  }

  memorySlots(): MemorySlot[] {
    return [...this.slots.values()].sort((a, b) => (a.guestAddress < b.guestAddress ? -1 : 1));
  }

  /** A free slot number. */
  freeSlot(): number {
    let n = 0;
    while (this.slots.has(n)) n++;
    return n;
  }

  /** The in-kernel PIC pair and IOAPIC (and the LAPICs of vCPUs created after it). */
  createIrqchip(): void {
    this.sys.ioctlValue(this.fd, IOCTL.CREATE_IRQCHIP, 0);
  }

  /** The in-kernel i8254 PIT; the speaker port is left to user space as a dummy. */
  createPit2(): void {
    const buf = new Uint8Array(SIZE.pitConfig);
    new DataView(buf.buffer).setUint32(PIT_CONFIG.flags, PIT_SPEAKER_DUMMY, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.CREATE_PIT2, buf);
  }

  /** Drives a GSI's level (edge-triggered sources pulse 1 then 0). */
  irqLine(gsi: number, level: boolean): void {
    const buf = new Uint8Array(SIZE.irqLevel);
    const v = new DataView(buf.buffer);
    v.setUint32(IRQ_LEVEL.irq, gsi, true);
    v.setUint32(IRQ_LEVEL.level, level ? 1 : 0, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.IRQ_LINE, buf);
  }

  /**
   * Binds an eventfd to a GSI. With `resampleFd`, the line is level-triggered: KVM de-asserts
   * it when the guest EOIs and signals resampleFd, so the source can re-assert if still pending.
   */
  irqfd(fd: number, gsi: number, resampleFd?: number): void {
    this.sys.ioctlBuffer(this.fd, IOCTL.IRQFD, encodeIrqfd(fd, gsi, resampleFd === undefined ? 0 : IRQFD_FLAG_RESAMPLE, resampleFd ?? 0));
    this.irqfds.add(`${fd}/${gsi}`);
  }

  removeIrqfd(fd: number, gsi: number): void {
    this.sys.ioctlBuffer(this.fd, IOCTL.IRQFD, encodeIrqfd(fd, gsi, IRQFD_FLAG_DEASSIGN, 0));
    this.irqfds.delete(`${fd}/${gsi}`);
  }

  /** Irqfds assigned now (a running machine's control socket reports it, to show hot-plug leaves none behind). */
  get irqfdCount(): number {
    return this.irqfds.size;
  }

  /** Guest writes of `len` bytes at `address` (matching `datamatch` if given) signal `fd` without an exit to user space. */
  ioeventfd(spec: IoEventFd): void {
    this.sys.ioctlBuffer(this.fd, IOCTL.IOEVENTFD, encodeIoeventfd(spec, 0));
  }

  removeIoeventfd(spec: IoEventFd): void {
    this.sys.ioctlBuffer(this.fd, IOCTL.IOEVENTFD, encodeIoeventfd(spec, IOEVENTFD_FLAG_DEASSIGN));
  }

  /**
   * Guest writes inside `length` bytes at `address` are queued in the coalesced ring instead of
   * exiting (KVM_REGISTER_COALESCED_MMIO); the monitor applies them before the next exit it serves.
   */
  coalesceWrites(address: number, length: number, space: 'pio' | 'mmio'): void {
    const buf = new Uint8Array(SIZE.coalescedZone);
    const v = new DataView(buf.buffer);
    v.setBigUint64(COALESCED_ZONE.addr, BigInt(address), true);
    v.setUint32(COALESCED_ZONE.size, length, true);
    v.setUint32(COALESCED_ZONE.pio, space === 'pio' ? 1 : 0, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.REGISTER_COALESCED_MMIO, buf);
  }

  /** Injects one MSI message now (KVM_SIGNAL_MSI): how an in-process device model sends MSI and MSI-X. */
  signalMsi(address: bigint, data: number): void {
    const buf = new Uint8Array(SIZE.msi);
    const v = new DataView(buf.buffer);
    v.setUint32(MSI.addressLo, Number(address & 0xffff_ffffn), true);
    v.setUint32(MSI.addressHi, Number(address >> 32n), true);
    v.setUint32(MSI.data, data, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.SIGNAL_MSI, buf);
  }

  /** Replaces the whole GSI routing table (include the irqchip routes you still want). */
  setGsiRouting(routes: readonly GsiRoute[]): void {
    const buf = new Uint8Array(SIZE.irqRoutingHeader + routes.length * SIZE.irqRoutingEntry);
    const v = new DataView(buf.buffer);
    v.setUint32(IRQ_ROUTING.nr, routes.length, true);
    routes.forEach((r, i) => {
      const o = SIZE.irqRoutingHeader + i * SIZE.irqRoutingEntry;
      v.setUint32(o + IRQ_ROUTING_ENTRY.gsi, r.gsi, true);
      if (r.kind === 'irqchip') {
        v.setUint32(o + IRQ_ROUTING_ENTRY.type, IRQ_ROUTING_IRQCHIP, true);
        v.setUint32(o + IRQ_ROUTING_ENTRY.u, CHIP_ID[r.chip], true);
        v.setUint32(o + IRQ_ROUTING_ENTRY.u + 4, r.pin, true);
      } else {
        v.setUint32(o + IRQ_ROUTING_ENTRY.type, IRQ_ROUTING_MSI, true);
        v.setUint32(o + IRQ_ROUTING_ENTRY.u + MSI.addressLo, Number(r.address & 0xffff_ffffn), true);
        v.setUint32(o + IRQ_ROUTING_ENTRY.u + MSI.addressHi, Number(r.address >> 32n), true);
        v.setUint32(o + IRQ_ROUTING_ENTRY.u + MSI.data, r.data, true);
      }
    });
    this.sys.ioctlBuffer(this.fd, IOCTL.SET_GSI_ROUTING, buf);
  }

  createVcpu(id: number): Vcpu {
    const fd = this.sys.ioctlValue(this.fd, IOCTL.CREATE_VCPU, id);
    return new Vcpu(this.sys, id, fd, this.kvm.vcpuMmapSize);
  }

  close(): void {
    this.sys.close(this.fd);
  }
}

export interface IoEventFd {
  readonly fd: number;
  readonly address: bigint;
  readonly length: 1 | 2 | 4 | 8;
  readonly space: 'pio' | 'mmio';
  readonly datamatch?: bigint;
}

function encodeIrqfd(fd: number, gsi: number, flags: number, resamplefd: number): Uint8Array {
  const buf = new Uint8Array(SIZE.irqfd);
  const v = new DataView(buf.buffer);
  v.setUint32(IRQFD.fd, fd, true);
  v.setUint32(IRQFD.gsi, gsi, true);
  v.setUint32(IRQFD.flags, flags, true);
  v.setUint32(IRQFD.resamplefd, resamplefd, true);
  return buf;
}

function encodeIoeventfd(spec: IoEventFd, extraFlags: number): Uint8Array {
  const buf = new Uint8Array(SIZE.ioeventfd);
  const v = new DataView(buf.buffer);
  let flags = extraFlags | (spec.space === 'pio' ? IOEVENTFD_FLAG_PIO : 0);
  if (spec.datamatch !== undefined) {
    flags |= IOEVENTFD_FLAG_DATAMATCH;
    v.setBigUint64(IOEVENTFD.datamatch, spec.datamatch, true);
  }
  v.setBigUint64(IOEVENTFD.addr, spec.address, true);
  v.setUint32(IOEVENTFD.len, spec.length, true);
  v.setInt32(IOEVENTFD.fd, spec.fd, true);
  v.setUint32(IOEVENTFD.flags, flags, true);
  return buf;
}

/**
 * A PC's GSI routing, as QEMU installs it: GSI 0-15 to the PICs (except 2, the cascade) and
 * 0-23 to the IOAPIC with GSI 0 on pin 2, matching the MADT's IRQ0->GSI2 override (KVM's own
 * default puts GSI 0 on pin 0). KVM_SET_GSI_ROUTING replaces the table, so MSI routes are
 * appended to this.
 */
export function defaultPcRouting(): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < 16; gsi++) {
    if (gsi === 2) continue;
    routes.push({ kind: 'irqchip', gsi, chip: gsi < 8 ? 'pic-master' : 'pic-slave', pin: gsi % 8 });
  }
  for (let gsi = 0; gsi < 24; gsi++) {
    if (gsi === 2) continue;
    routes.push({ kind: 'irqchip', gsi, chip: 'ioapic', pin: gsi === 0 ? 2 : gsi });
  }
  return routes;
}
