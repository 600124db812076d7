/**
 * A VFIO device driven from the vCPU thread, through the back-end contract: config space and
 * regions by pread/pwrite of the device fd, BARs mmap'ed from it, interrupts as eventfds VFIO
 * signals, DMA through the container the main thread opened.
 */
import type { AccessSize } from '../../hw/io.js';
import {
  CONFIG_REGION,
  ROM_REGION,
  type AttachedDevice,
  type BackendHandle,
  type ConfigBackend,
  type DeviceDescription,
  type DmaControl,
  type HostMemory,
  type InterruptWiring,
  type RegionAccess,
  type ResetMethod,
} from '../../hw/pci/backend.js';
import { COMMAND } from '../../hw/pci/regs.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../../native/sys.js';
import { IRQ_SET, PCI_IRQ } from './abi.js';
import { VfioContainer, VfioDevice, VfioError, type VfioRegion } from './vfio.js';

/**
 * Guest memory mapped for DMA in one container: devices that share a container share its IOVA
 * space, so each range is mapped once however many of them ask.
 */
class ContainerDma {
  private readonly mapped = new Map<string, number>();
  constructor(readonly container: VfioContainer) {}

  map(iova: bigint, size: bigint, host: bigint): void {
    const key = `${iova}+${size}`;
    const n = this.mapped.get(key) ?? 0;
    if (n === 0) this.container.mapDma(iova, size, host);
    this.mapped.set(key, n + 1);
  }

  unmap(iova: bigint, size: bigint): void {
    const key = `${iova}+${size}`;
    const n = this.mapped.get(key) ?? 0;
    if (n === 0) return;
    if (n === 1) {
      this.container.unmapDma(iova, size);
      this.mapped.delete(key);
    } else this.mapped.set(key, n - 1);
  }
}

const containers = new Map<number, ContainerDma>();

function containerDma(sys: Sys, fd: number): ContainerDma {
  let c = containers.get(fd);
  if (c === undefined) {
    c = new ContainerDma(VfioContainer.adopt(sys, fd));
    containers.set(fd, c);
  }
  return c;
}

export interface VfioAttachOptions {
  readonly description: DeviceDescription;
  readonly rom: Uint8Array | undefined;
}

/** Attaches the device the main thread opened (src/host/vfio/open.ts) in the calling thread. */
export function attachVfio(sys: Sys, handle: Extract<BackendHandle, { kind: 'vfio' }>, options: VfioAttachOptions): AttachedDevice {
  const device = new VfioDevice(sys, handle.address, handle.device);
  const dma = containerDma(sys, handle.container);
  const mappings: Mapping[] = [];
  const dmaRanges: Array<{ iova: bigint; size: bigint }> = [];
  const configRegion = device.region(CONFIG_REGION);
  if (configRegion === undefined) throw new VfioError('the device has no config region', { input: handle.address });

  // Command as vfio-pci last gave or took it. Only this process reaches the device's config
  // space (its group is ours), and vfio-pci reads back the bits it virtualises (decode, INTx
  // disable) as last written, so until another register is written or the device is reset,
  // Command reads back what was last read or written. The read a Command write needs first (for
  // the bits the guest does not own) is served from here: a driver that masks INTx writes
  // Command twice an interrupt, and each read is a system call.
  let command: number | undefined;
  const config: ConfigBackend = {
    length: Number(configRegion.size > 4096n ? 4096n : configRegion.size),
    source: `${handle.address} (vfio-pci)`,
    read: (offset, size) => {
      if (offset === COMMAND && size === 2 && command !== undefined) return command;
      const v = device.read(configRegion, offset, size);
      if (offset === COMMAND && size !== 1) command = v & 0xffff;
      return v;
    },
    write: (offset, size, value) => {
      device.write(configRegion, offset, size, value);
      command = offset === COMMAND && size !== 1 ? value & 0xffff : undefined;
    },
    barSize: (index) => {
      const r = device.region(index);
      return r === undefined ? undefined : r.size;
    },
  };

  const regionAccess = new Map<number, RegionAccess>();
  const region = (index: number): RegionAccess | undefined => {
    const have = regionAccess.get(index);
    if (have !== undefined) return have;
    const r = device.region(index);
    if (r === undefined) return undefined;
    const access = vfioRegion(sys, device, r, mappings);
    regionAccess.set(index, access);
    return access;
  };

  let intx: { trigger: number; resample: number } | undefined;
  const interrupts: InterruptWiring = {
    connectIntx(trigger, resample) {
      device.setIrqEventfds(PCI_IRQ.INTX, 0, [trigger]);
      // VFIO masks the line when it fires; the resample eventfd (KVM, on the guest's EOI) unmasks it.
      device.setIrqEventfds(PCI_IRQ.INTX, 0, [resample], IRQ_SET.ACTION_UNMASK);
      intx = { trigger, resample };
    },
    disconnectIntx() {
      if (intx === undefined) return;
      device.setIrqEventfds(PCI_IRQ.INTX, 0, []);
      intx = undefined;
    },
    setVectors(kind, fds) {
      const index = kind === 'msi' ? PCI_IRQ.MSI : PCI_IRQ.MSIX;
      device.setIrqEventfds(index, 0, fds.map((fd) => fd ?? -1));
    },
  };

  const dmaControl: DmaControl = {
    map(iova, size, host) {
      dma.map(iova, size, host);
      dmaRanges.push({ iova, size });
    },
    unmap(iova, size) {
      dma.unmap(iova, size);
      const i = dmaRanges.findIndex((r) => r.iova === iova && r.size === size);
      if (i >= 0) dmaRanges.splice(i, 1);
    },
  };

  return {
    description: options.description,
    config,
    region,
    interrupts,
    dma: dmaControl,
    reset(): ResetMethod {
      command = undefined;
      device.reset();
      return options.description.reset[0] ?? 'none';
    },
    rom: () => options.rom,
    close() {
      // Interrupts off (each index the guest may have used), DMA and mappings released; the fds stay with the main thread.
      for (const index of [PCI_IRQ.INTX, PCI_IRQ.MSI, PCI_IRQ.MSIX]) {
        try {
          device.setIrqEventfds(index, 0, []);
        } catch {
          // Not enabled: nothing to turn off.
        }
      }
      for (const r of dmaRanges.splice(0)) dma.unmap(r.iova, r.size);
      for (const m of mappings.splice(0)) sys.munmap(m);
    },
  };
}

function vfioRegion(sys: Sys, device: VfioDevice, r: VfioRegion, mappings: Mapping[]): RegionAccess {
  const mapped = new Map<string, HostMemory>();
  return {
    info: r,
    read: (offset: number, size: AccessSize) => device.read(r, offset, size),
    write: (offset: number, size: AccessSize, value: number) => device.write(r, offset, size, value),
    map(offset, size) {
      if (r.index === ROM_REGION || r.index === CONFIG_REGION) return undefined;
      if (!r.mmap.some((a) => offset >= a.offset && offset + size <= a.offset + a.size)) return undefined;
      const key = `${offset}+${size}`;
      const have = mapped.get(key);
      if (have !== undefined) return have;
      const m = sys.mmap(Number(size), PROT_READ | PROT_WRITE, MAP_SHARED, device.fd, r.fdOffset + Number(offset));
      mappings.push(m);
      mapped.set(key, m);
      return m;
    },
  };
}
