/**
 * VFIO's three objects as the kernel offers them (Documentation/driver-api/vfio.rst): the
 * container (/dev/vfio/vfio, one IOMMU context: the guest's DMA map), the group (/dev/vfio/N,
 * the unit of isolation) and the device (a file descriptor from its group: regions, interrupts,
 * reset). Each wraps a file descriptor and its ioctls; structures go through DataView with the
 * named offsets of abi.ts. Every failure says which device, group or call.
 */
import { HvmptError } from '../../errors.js';
import type { InterruptInfo, RegionInfo, ResetMethod } from '../../hw/pci/backend.js';
import { O_CLOEXEC, O_RDWR, SysError, type Sys } from '../../native/sys.js';
import {
  CAP_HEADER,
  DEVICE_FLAGS,
  DEVICE_INFO,
  DMA_MAP,
  DMA_MAP_FLAGS,
  DMA_UNMAP,
  GROUP_FLAGS,
  HEAD,
  IOCTL,
  IOMMU,
  IRQ_INFO,
  IRQ_INFO_FLAGS,
  IRQ_SET,
  IRQ_SET_FIELDS,
  PCI_IRQ,
  REGION_CAP,
  REGION_FLAGS,
  REGION_INFO,
  SIZE,
  SPARSE_AREA,
  SPARSE_MMAP,
  VFIO_API_VERSION,
} from './abi.js';

/** VFIO refused something, or the host is not set up for it. */
export class VfioError extends HvmptError {}

function header(size: number): { buf: Uint8Array; view: DataView } {
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  view.setUint32(HEAD.argsz, size, true);
  return { buf, view };
}

/** The IOMMU context: guest-physical addresses (IOVA) to the host memory behind guest RAM. */
export class VfioContainer {
  private constructor(
    private readonly sys: Sys,
    readonly fd: number,
    private iommuSet: boolean,
  ) {}

  static open(sys: Sys, path = '/dev/vfio/vfio'): VfioContainer {
    let fd: number;
    try {
      fd = sys.open(path, O_RDWR | O_CLOEXEC);
    } catch (err) {
      const code = err instanceof SysError ? err.errno : 0;
      throw new VfioError(code === 2 ? 'no VFIO on this host: load the vfio-pci module (modprobe vfio-pci)' : `cannot open: ${err instanceof Error ? err.message : String(err)}`, { input: path });
    }
    const c = new VfioContainer(sys, fd, false);
    const version = sys.ioctlValue(fd, IOCTL.GET_API_VERSION, 0);
    if (version !== VFIO_API_VERSION) {
      c.close();
      throw new VfioError(`VFIO API version ${version}, expected ${VFIO_API_VERSION}`, { input: path });
    }
    return c;
  }

  /** Adopts a container opened elsewhere in this process (the main thread opens; the vCPU thread maps). */
  static adopt(sys: Sys, fd: number): VfioContainer {
    return new VfioContainer(sys, fd, true);
  }

  supports(iommu: number): boolean {
    return this.sys.ioctlValue(this.fd, IOCTL.CHECK_EXTENSION, iommu) > 0;
  }

  /** Chooses the IOMMU model once the first group is in: type1v2 where the kernel has it. */
  setIommu(): number {
    if (this.iommuSet) return IOMMU.TYPE1v2;
    const model = this.supports(IOMMU.TYPE1v2) ? IOMMU.TYPE1v2 : this.supports(IOMMU.TYPE1) ? IOMMU.TYPE1 : undefined;
    if (model === undefined) throw new VfioError('the kernel offers no type1 IOMMU for VFIO (is the IOMMU on? intel_iommu=on or amd_iommu=on)', { input: '/dev/vfio/vfio' });
    this.sys.ioctlValue(this.fd, IOCTL.SET_IOMMU, model);
    this.iommuSet = true;
    return model;
  }

  /** The device may read and write [iova, iova + size), which is host memory at `vaddr` in this process. */
  mapDma(iova: bigint, size: bigint, vaddr: bigint): void {
    const { buf, view } = header(SIZE.dmaMap);
    view.setUint32(HEAD.flags, DMA_MAP_FLAGS.READ | DMA_MAP_FLAGS.WRITE, true);
    view.setBigUint64(DMA_MAP.vaddr, vaddr, true);
    view.setBigUint64(DMA_MAP.iova, iova, true);
    view.setBigUint64(DMA_MAP.size, size, true);
    try {
      this.sys.ioctlBuffer(this.fd, IOCTL.IOMMU_MAP_DMA, buf);
    } catch (err) {
      throw new VfioError(`cannot map guest memory [0x${iova.toString(16)}, 0x${(iova + size).toString(16)}) for DMA: ${err instanceof Error ? err.message : String(err)}`, { input: 'VFIO container' });
    }
  }

  unmapDma(iova: bigint, size: bigint): void {
    const { buf, view } = header(SIZE.dmaUnmap);
    view.setBigUint64(DMA_UNMAP.iova, iova, true);
    view.setBigUint64(DMA_UNMAP.size, size, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.IOMMU_UNMAP_DMA, buf);
  }

  close(): void {
    this.sys.close(this.fd);
  }
}

/** An IOMMU group: every device in it goes to the same guest, or none does. */
export class VfioGroup {
  private constructor(
    private readonly sys: Sys,
    readonly number: number,
    readonly fd: number,
  ) {}

  static open(sys: Sys, group: number): VfioGroup {
    const path = `/dev/vfio/${group}`;
    try {
      return new VfioGroup(sys, group, sys.open(path, O_RDWR | O_CLOEXEC));
    } catch (err) {
      const errno = err instanceof SysError ? err.errno : 0;
      const why =
        errno === 2
          ? 'no such VFIO group: bind the device to vfio-pci first (hvmpt bind)'
          : errno === 16
            ? 'the group is in use by another process (another guest, or a QEMU)'
            : err instanceof Error
              ? err.message
              : String(err);
      throw new VfioError(why, { input: path });
    }
  }

  static adopt(sys: Sys, group: number, fd: number): VfioGroup {
    return new VfioGroup(sys, group, fd);
  }

  /** Viable: every device in the group is bound to vfio-pci (or to no driver). */
  status(): { viable: boolean; containerSet: boolean } {
    const { buf, view } = header(SIZE.groupStatus);
    this.sys.ioctlBuffer(this.fd, IOCTL.GROUP_GET_STATUS, buf);
    const flags = view.getUint32(HEAD.flags, true);
    return { viable: (flags & GROUP_FLAGS.VIABLE) !== 0, containerSet: (flags & GROUP_FLAGS.CONTAINER_SET) !== 0 };
  }

  setContainer(container: VfioContainer): void {
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, container.fd, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.GROUP_SET_CONTAINER, arg);
  }

  /** The device's own file descriptor, by its sysfs name (`0000:00:03.0`). */
  deviceFd(address: string): number {
    const name = new TextEncoder().encode(`${address}\0`);
    try {
      return this.sys.ioctlBuffer(this.fd, IOCTL.GROUP_GET_DEVICE_FD, name);
    } catch (err) {
      throw new VfioError(`cannot get ${address} from its group: ${err instanceof Error ? err.message : String(err)}`, { input: `/dev/vfio/${this.number}` });
    }
  }

  close(): void {
    this.sys.close(this.fd);
  }
}

/** A region as VFIO describes it: where it lies in the device fd, and what may be done with it. */
export interface VfioRegion extends RegionInfo {
  /** Offset of the region in the device file descriptor. */
  readonly fdOffset: number;
}

/** A device: its regions through pread/pwrite and mmap of its fd, its interrupts, its reset. */
export class VfioDevice {
  readonly regions: readonly VfioRegion[];
  readonly interrupts: InterruptInfo;
  readonly canReset: boolean;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** The scratch's first 1, 2 and 4 bytes, made once: config accesses are the hot path, and a view per access is garbage per exit. */
  private readonly scratchBytes: Readonly<Record<1 | 2 | 4, Uint8Array>> = { 1: this.scratch.subarray(0, 1), 2: this.scratch.subarray(0, 2), 4: this.scratch.subarray(0, 4) };

  constructor(
    private readonly sys: Sys,
    readonly address: string,
    readonly fd: number,
  ) {
    const { buf, view } = header(SIZE.deviceInfo);
    sys.ioctlBuffer(fd, IOCTL.DEVICE_GET_INFO, buf);
    const flags = view.getUint32(HEAD.flags, true);
    if ((flags & DEVICE_FLAGS.PCI) === 0) throw new VfioError('not a vfio-pci device', { input: address });
    this.canReset = (flags & DEVICE_FLAGS.RESET) !== 0;
    const numRegions = view.getUint32(DEVICE_INFO.numRegions, true);
    const numIrqs = view.getUint32(DEVICE_INFO.numIrqs, true);
    const regions: VfioRegion[] = [];
    for (let i = 0; i < Math.min(numRegions, 8); i++) regions.push(this.regionInfo(i));
    this.regions = regions;
    const count = (index: number): { count: number; flags: number } => (index < numIrqs ? this.irqInfo(index) : { count: 0, flags: 0 });
    const intx = count(PCI_IRQ.INTX);
    this.interrupts = {
      // An INTx VFIO cannot mask cannot be handed to KVM with a resample: as good as none.
      intx: intx.count > 0 && (intx.flags & IRQ_INFO_FLAGS.EVENTFD) !== 0 && (intx.flags & IRQ_INFO_FLAGS.MASKABLE) !== 0 ? 1 : 0,
      msi: count(PCI_IRQ.MSI).count,
      msix: count(PCI_IRQ.MSIX).count,
    };
  }

  private regionInfo(index: number): VfioRegion {
    let size: number = SIZE.regionInfo;
    for (;;) {
      const { buf, view } = header(size);
      view.setUint32(REGION_INFO.index, index, true);
      this.sys.ioctlBuffer(this.fd, IOCTL.DEVICE_GET_REGION_INFO, buf);
      const argsz = view.getUint32(HEAD.argsz, true);
      // The kernel asks for more room when the region has capabilities (sparse mmap areas).
      if (argsz > size) {
        size = argsz;
        continue;
      }
      const flags = view.getUint32(HEAD.flags, true);
      const regionSize = view.getBigUint64(REGION_INFO.size, true);
      const fdOffset = Number(view.getBigUint64(REGION_INFO.offset, true));
      let mmap: Array<{ offset: bigint; size: bigint }> = (flags & REGION_FLAGS.MMAP) !== 0 && regionSize > 0n ? [{ offset: 0n, size: regionSize }] : [];
      if ((flags & REGION_FLAGS.CAPS) !== 0) {
        let at = view.getUint32(REGION_INFO.capOffset, true);
        const seen = new Set<number>();
        while (at !== 0 && at + SIZE.infoCapHeader <= buf.length && !seen.has(at)) {
          seen.add(at);
          const id = view.getUint16(at + CAP_HEADER.id, true);
          if (id === REGION_CAP.SPARSE_MMAP && (flags & REGION_FLAGS.MMAP) !== 0) {
            const n = view.getUint32(at + SPARSE_MMAP.nrAreas, true);
            mmap = [];
            for (let k = 0; k < n; k++) {
              const a = at + SPARSE_MMAP.areas + k * SIZE.sparseMmapArea;
              if (a + SIZE.sparseMmapArea > buf.length) break;
              const s = view.getBigUint64(a + SPARSE_AREA.size, true);
              if (s > 0n) mmap.push({ offset: view.getBigUint64(a + SPARSE_AREA.offset, true), size: s });
            }
          }
          at = view.getUint32(at + CAP_HEADER.next, true);
        }
      }
      return { index, size: regionSize, read: (flags & REGION_FLAGS.READ) !== 0, write: (flags & REGION_FLAGS.WRITE) !== 0, mmap, fdOffset };
    }
  }

  private irqInfo(index: number): { count: number; flags: number } {
    const { buf, view } = header(SIZE.irqInfo);
    view.setUint32(IRQ_INFO.index, index, true);
    this.sys.ioctlBuffer(this.fd, IOCTL.DEVICE_GET_IRQ_INFO, buf);
    return { count: view.getUint32(IRQ_INFO.count, true), flags: view.getUint32(HEAD.flags, true) };
  }

  region(index: number): VfioRegion | undefined {
    const r = this.regions[index];
    return r === undefined || r.size === 0n ? undefined : r;
  }

  /** A 1-, 2- or 4-byte read at an offset into a region. */
  read(region: VfioRegion, offset: number, size: 1 | 2 | 4): number {
    if (this.sys.pread(this.fd, this.scratchBytes[size], region.fdOffset + offset) !== size) return size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
    return size === 4 ? this.scratchView.getUint32(0, true) : size === 2 ? this.scratchView.getUint16(0, true) : this.scratch[0]!;
  }

  write(region: VfioRegion, offset: number, size: 1 | 2 | 4, value: number): void {
    if (size === 4) this.scratchView.setUint32(0, value >>> 0, true);
    else if (size === 2) this.scratchView.setUint16(0, value & 0xffff, true);
    else this.scratch[0] = value & 0xff;
    this.sys.pwrite(this.fd, this.scratchBytes[size], region.fdOffset + offset);
  }

  /** Reads a whole region (the expansion ROM) in pieces. */
  readAll(region: VfioRegion, limit = 16 << 20): Uint8Array {
    const n = Number(region.size < BigInt(limit) ? region.size : BigInt(limit));
    const out = new Uint8Array(n);
    for (let at = 0; at < n; ) {
      const got = this.sys.pread(this.fd, out.subarray(at, Math.min(n, at + 0x10000)), region.fdOffset + at);
      if (got <= 0) return out.subarray(0, at);
      at += got;
    }
    return out;
  }

  /** SET_IRQS with one eventfd per sub-index from `start` (-1 de-assigns), or none to turn the index off. */
  setIrqEventfds(index: number, start: number, fds: readonly number[], action: number = IRQ_SET.ACTION_TRIGGER): void {
    const { buf, view } = header(SIZE.irqSetHeader + 4 * fds.length);
    view.setUint32(HEAD.flags, (fds.length === 0 ? IRQ_SET.DATA_NONE : IRQ_SET.DATA_EVENTFD) | action, true);
    view.setUint32(IRQ_SET_FIELDS.index, index, true);
    view.setUint32(IRQ_SET_FIELDS.start, start, true);
    view.setUint32(IRQ_SET_FIELDS.count, fds.length, true);
    fds.forEach((fd, i) => view.setInt32(IRQ_SET_FIELDS.data + 4 * i, fd, true));
    try {
      this.sys.ioctlBuffer(this.fd, IOCTL.DEVICE_SET_IRQS, buf);
    } catch (err) {
      const what = ['INTx', 'MSI', 'MSI-X', 'error', 'request'][index] ?? `IRQ index ${index}`;
      throw new VfioError(`cannot ${fds.length === 0 ? 'turn off' : 'set'} ${what}${fds.length > 0 ? ` (${fds.length} vectors from ${start})` : ''}: ${err instanceof Error ? err.message : String(err)}`, { input: this.address });
    }
  }

  /** VFIO_DEVICE_RESET: the kernel picks the method (FLR, PM, bus) the device allows. */
  reset(): ResetMethod | undefined {
    if (!this.canReset) return undefined;
    try {
      this.sys.ioctlValue(this.fd, IOCTL.DEVICE_RESET, 0);
      return 'flr';
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.sys.close(this.fd);
  }
}
