/**
 * A uio_pci_generic function driven from the vCPU thread, through the back-end contract:
 * config space by pread/pwrite of sysfs `config` (the Interrupt Disable bit virtualized),
 * memory BARs mmap'ed from sysfs `resourceN`, I/O BARs forwarded through the same files, INTx
 * bridged to KVM's irqfd by a small thread (intx-worker.ts). There is no DMA mapping to do:
 * without an IOMMU the device reaches machine addresses, which equal the guest's in an
 * identity layout.
 */
import { Worker } from 'node:worker_threads';
import type { AccessSize } from '../../hw/io.js';
import type { AttachedDevice, BackendHandle, ConfigBackend, DeviceDescription, HostMemory, InterruptWiring, RegionAccess, RegionInfo, ResetMethod } from '../../hw/pci/backend.js';
import { EFD_CLOEXEC, MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../../native/sys.js';
import { COMMAND_HIGH, INTX_DISABLE_BIT, IntxState } from './intx-state.js';
import type { IntxWorkerData } from './intx-worker.js';
import { UioError } from './open.js';

declare const HVMPT_UIO_WORKER_FILE: string | undefined;
const INTX_WORKER_URL = new URL(typeof HVMPT_UIO_WORKER_FILE === 'string' ? HVMPT_UIO_WORKER_FILE : './intx-worker.js', import.meta.url);

/** How long a detach waits for the INTx thread to end (its poll wakes on the stop eventfd at once). */
const STOP_WAIT_MS = 5000;

export interface UioAttachOptions {
  readonly description: DeviceDescription;
}

function readBytes(sys: Sys, fd: number, offset: number, size: AccessSize, what: string): number {
  const b = new Uint8Array(size);
  if (sys.pread(fd, b, offset) !== size) throw new UioError(`short read of ${size} bytes at 0x${offset.toString(16)}`, { input: what });
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + b[i]!;
  return v;
}

function writeBytes(sys: Sys, fd: number, offset: number, size: AccessSize, value: number, what: string): void {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
  if (sys.pwrite(fd, b, offset) !== size) throw new UioError(`short write of ${size} bytes at 0x${offset.toString(16)}`, { input: what });
}

/** Attaches the function the main thread opened (src/host/uio/open.ts) in the calling thread. */
export function attachUio(sys: Sys, handle: Extract<BackendHandle, { kind: 'uio' }>, options: UioAttachOptions): AttachedDevice {
  const where = `${handle.address} (uio_pci_generic)`;
  const stateBuffer = IntxState.buffer();
  const intxState = new IntxState(sys, handle.config, stateBuffer);
  const mappings: Mapping[] = [];

  // Byte 5 of Command is the one place the guest's view and the device differ.
  const config: ConfigBackend = {
    length: handle.configLength,
    source: where,
    read(offset, size) {
      const v = readBytes(sys, handle.config, offset, size, where);
      if (offset > COMMAND_HIGH || offset + size <= COMMAND_HIGH) return v;
      const bit = INTX_DISABLE_BIT * 2 ** (8 * (COMMAND_HIGH - offset));
      const real = Math.floor(v / bit) % 2 === 1;
      const guest = intxState.guestDisable;
      return real === guest ? v : guest ? v + bit : v - bit;
    },
    write(offset, size, value) {
      if (offset > COMMAND_HIGH || offset + size <= COMMAND_HIGH) {
        writeBytes(sys, handle.config, offset, size, value, where);
        return;
      }
      const shift = 2 ** (8 * (COMMAND_HIGH - offset));
      const high = Math.floor(value / shift) & 0xff;
      intxState.guestWrote(high, (put) => writeBytes(sys, handle.config, offset, size, value + (put - high) * shift, where));
    },
    barSize: (index) => options.description.regions.find((r) => r.index === index)?.size,
  };

  const regions = new Map<number, RegionAccess>();
  for (const r of handle.resources) {
    const info = options.description.regions.find((x) => x.index === r.index);
    if (info !== undefined) regions.set(r.index, uioRegion(sys, r.fd, info, `${where} resource${r.index}`, mappings));
  }

  let intx: { worker: Worker; stop: number } | undefined;
  const interrupts: InterruptWiring = {
    connectIntx(trigger, resample) {
      if (intx !== undefined) return;
      const stop = sys.eventfd(0, EFD_CLOEXEC);
      const data: IntxWorkerData = { address: handle.address, uio: handle.uio, config: handle.config, trigger, resample, stop, state: stateBuffer };
      intxState.trigger = trigger;
      intxState.started();
      const worker = new Worker(INTX_WORKER_URL, { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 32 } });
      worker.unref();
      intx = { worker, stop };
    },
    disconnectIntx() {
      if (intx === undefined) return;
      intxState.stop();
      intxState.trigger = undefined;
      sys.eventfdWrite(intx.stop, 1n);
      // Waited for, so a detach leaves no fd behind when it answers (hot-plug counts them). A
      // thread that never started, or hangs, is ended here; it finds its eventfd closed already.
      if (!intxState.waitExited(STOP_WAIT_MS)) {
        void intx.worker.terminate();
        intxState.closeStop(intx.stop);
      }
      intx = undefined;
    },
    setVectors() {
      throw new UioError('uio_pci_generic delivers INTx only (MSI and MSI-X are hidden from the guest)', { input: where });
    },
  };

  return {
    description: options.description,
    config,
    region: (index) => regions.get(index),
    interrupts,
    // Identity: guest-physical is machine-physical, which is what the device reaches anyway.
    dma: { map: () => {}, unmap: () => {} },
    reset(): ResetMethod {
      if (handle.reset !== undefined) sys.write(handle.reset, new TextEncoder().encode('1'));
      intxState.reset();
      return handle.reset === undefined ? 'none' : (options.description.reset[0] ?? 'none');
    },
    rom: () => undefined,
    close() {
      interrupts.disconnectIntx();
      for (const m of mappings.splice(0)) sys.munmap(m);
    },
  };
}

function uioRegion(sys: Sys, fd: number, info: RegionInfo, what: string, mappings: Mapping[]): RegionAccess {
  const mapped = new Map<string, HostMemory>();
  return {
    info,
    read: (offset, size) => readBytes(sys, fd, offset, size, what),
    write: (offset, size, value) => writeBytes(sys, fd, offset, size, value, what),
    map(offset, size) {
      if (!info.mmap.some((a) => offset >= a.offset && offset + size <= a.offset + a.size)) return undefined;
      const key = `${offset}+${size}`;
      const have = mapped.get(key);
      if (have !== undefined) return have;
      const m = sys.mmap(Number(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, Number(offset));
      mappings.push(m);
      mapped.set(key, m);
      return m;
    },
  };
}
