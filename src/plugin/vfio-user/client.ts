/**
 * hvmpt's monitor as a vfio-user client: a device another process serves (`hvmpt serve-device`,
 * or another vendor's server) becomes one more back-end behind the device back-end contract,
 * driven by the monitor exactly as a VFIO device is. The main thread connects and describes
 * the device (config space, regions, interrupts); the vCPU thread attaches to the same
 * connection. A server that dies or stops answering fails the device: it reads all ones from
 * then on, and the guest goes on.
 */
import type { DmaMemory } from '../../hw/chipset/fw-cfg.js';
import type { AccessSize } from '../../hw/io.js';
import { allOnes } from '../../hw/io.js';
import { CONFIG_REGION, ROM_REGION, type AttachedDevice, type BackendHandle, type ConfigBackend, type DeviceDescription, type HostMemory, type RegionAccess, type RegionInfo } from '../../hw/pci/backend.js';
import type { CapturedFunction } from '../../hw/pci/capture.js';
import { loadSys } from '../../native/index.js';
import { MAP_SHARED, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../../native/sys.js';
import { Channel, VfioUserError } from './channel.js';
import {
  CAP,
  CAP_SPARSE_MMAP,
  CMD,
  DEVICE_FLAG,
  DEVICE_INFO,
  DMA_ACCESS,
  DMA_FLAG,
  DMA_MAP,
  DMA_UNMAP,
  ERRNO,
  FLAG,
  IRQ_INFO,
  IRQ_SET,
  IRQ_SET_FLAG,
  MAX_DATA_XFER,
  payload,
  PCI_IRQ,
  PCI_REGIONS,
  REGION_ACCESS,
  REGION_FLAG,
  REGION_INFO,
  SPARSE,
  VERSION,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  viewOf,
  type Message,
} from './protocol.js';

/** Connects and negotiates the version; returns the channel. */
export function connectVfioUser(sys: Sys, path: string, timeoutMs: number): Channel {
  const fd = sys.unixSocket();
  try {
    sys.connectUnix(fd, path);
  } catch (err) {
    sys.close(fd);
    throw new VfioUserError(`cannot connect: ${err instanceof Error ? err.message : String(err)} (is \`hvmpt serve-device\` running?)`, { input: path });
  }
  const channel = new Channel(sys, fd, path, timeoutMs);
  const json = new TextEncoder().encode(JSON.stringify({ capabilities: { max_msg_fds: 8, max_data_xfer_size: MAX_DATA_XFER } }) + '\0');
  const p = payload(VERSION.json + json.length);
  p.view.setUint16(VERSION.major, VFIO_USER_MAJOR, true);
  p.view.setUint16(VERSION.minor, VFIO_USER_MINOR, true);
  p.bytes.set(json, VERSION.json);
  try {
    const r = channel.request(CMD.VERSION, p.bytes);
    const major = viewOf(r.payload).getUint16(VERSION.major, true);
    if (r.payload.length < VERSION.json || major !== VFIO_USER_MAJOR) throw new VfioUserError(`the server answered version ${major}`, { input: path });
  } catch (err) {
    sys.close(fd);
    throw err;
  }
  return channel;
}

interface RegionDetail {
  readonly info: RegionInfo;
  readonly fd: number | undefined;
  readonly fdOffset: bigint;
}

function regionInfo(channel: Channel, index: number): RegionDetail {
  const ask = (argsz: number): Message => {
    const p = payload(REGION_INFO.length);
    p.view.setUint32(REGION_INFO.argsz, argsz, true);
    p.view.setUint32(REGION_INFO.index, index, true);
    return channel.request(CMD.DEVICE_GET_REGION_INFO, p.bytes);
  };
  let r = ask(REGION_INFO.length);
  let v = viewOf(r.payload);
  const need = v.getUint32(REGION_INFO.argsz, true);
  if (need > REGION_INFO.length) {
    for (const fd of r.fds) channel.sys.close(fd);
    r = ask(need);
    v = viewOf(r.payload);
  }
  const flags = v.getUint32(REGION_INFO.flags, true);
  const size = v.getBigUint64(REGION_INFO.size, true);
  const mmap: Array<{ offset: bigint; size: bigint }> = [];
  const fd = (flags & REGION_FLAG.MMAP) !== 0 ? r.fds[0] : undefined;
  for (const extra of r.fds.slice(fd === undefined ? 0 : 1)) channel.sys.close(extra);
  if (fd !== undefined) {
    let cap = (flags & REGION_FLAG.CAPS) !== 0 ? v.getUint32(REGION_INFO.capOffset, true) : 0;
    let sparse = false;
    for (let hops = 0; cap !== 0 && cap + CAP.length <= r.payload.length && hops < 16; hops++) {
      if (v.getUint16(cap + CAP.id, true) === CAP_SPARSE_MMAP) {
        sparse = true;
        const n = v.getUint32(cap + SPARSE.nrAreas, true);
        for (let i = 0; i < n && cap + SPARSE.areas + (i + 1) * SPARSE.areaLength <= r.payload.length; i++) {
          mmap.push({ offset: v.getBigUint64(cap + SPARSE.areas + i * SPARSE.areaLength, true), size: v.getBigUint64(cap + SPARSE.areas + i * SPARSE.areaLength + 8, true) });
        }
      }
      cap = v.getUint32(cap + CAP.next, true);
    }
    if (!sparse) mmap.push({ offset: 0n, size });
  }
  return { info: { index, size, read: (flags & REGION_FLAG.READ) !== 0, write: (flags & REGION_FLAG.WRITE) !== 0, mmap }, fd, fdOffset: v.getBigUint64(REGION_INFO.offset, true) };
}

function irqCount(channel: Channel, index: number): number {
  const p = payload(IRQ_INFO.length);
  p.view.setUint32(IRQ_INFO.argsz, IRQ_INFO.length, true);
  p.view.setUint32(IRQ_INFO.index, index, true);
  return viewOf(channel.request(CMD.DEVICE_GET_IRQ_INFO, p.bytes).payload).getUint32(IRQ_INFO.count, true);
}

function regionRead(channel: Channel, region: number, offset: number, count: number, onCommand?: (m: Message) => void): Uint8Array {
  const p = payload(REGION_ACCESS.data);
  p.view.setBigUint64(REGION_ACCESS.offset, BigInt(offset), true);
  p.view.setUint32(REGION_ACCESS.region, region, true);
  p.view.setUint32(REGION_ACCESS.count, count, true);
  const r = channel.request(CMD.REGION_READ, p.bytes, [], onCommand);
  if (r.payload.length !== REGION_ACCESS.data + count) throw new VfioUserError(`REGION_READ of ${count} bytes answered with ${r.payload.length - REGION_ACCESS.data}`, { input: channel.name });
  return r.payload.subarray(REGION_ACCESS.data);
}

function regionWrite(channel: Channel, region: number, offset: number, data: Uint8Array, onCommand?: (m: Message) => void): void {
  const p = payload(REGION_ACCESS.data + data.length);
  p.view.setBigUint64(REGION_ACCESS.offset, BigInt(offset), true);
  p.view.setUint32(REGION_ACCESS.region, region, true);
  p.view.setUint32(REGION_ACCESS.count, data.length, true);
  p.bytes.set(data, REGION_ACCESS.data);
  channel.request(CMD.REGION_WRITE, p.bytes, [], onCommand);
}

export interface DescribedServer {
  readonly capture: CapturedFunction;
  readonly description: DeviceDescription;
  /** The connection, kept for the run when asked. */
  readonly handle?: BackendHandle;
}

/** Connects to a server and describes its device (then disconnects unless `keep`). */
export function describeVfioUserServer(path: string, options: { keep: boolean; timeoutMs: number }, sys: Sys = loadSys()): DescribedServer {
  const channel = connectVfioUser(sys, path, options.timeoutMs);
  try {
    const p = payload(DEVICE_INFO.length);
    p.view.setUint32(DEVICE_INFO.argsz, DEVICE_INFO.length, true);
    const info = viewOf(channel.request(CMD.DEVICE_GET_INFO, p.bytes).payload);
    const flags = info.getUint32(DEVICE_INFO.flags, true);
    if ((flags & DEVICE_FLAG.PCI) === 0) throw new VfioUserError('the server\'s device is not a PCI device', { input: path });
    const numRegions = Math.min(info.getUint32(DEVICE_INFO.numRegions, true), PCI_REGIONS);
    const regions: RegionInfo[] = [];
    for (let i = 0; i < numRegions; i++) {
      const d = regionInfo(channel, i);
      if (d.fd !== undefined) sys.close(d.fd);
      regions.push(d.info);
    }
    const config = regions[CONFIG_REGION];
    if (config === undefined || config.size < 64n) throw new VfioUserError('the server offers no config space region', { input: path });
    const length = Number(config.size > 4096n ? 4096n : config.size);
    const bytes = regionRead(channel, CONFIG_REGION, 0, length).slice();
    const barSizes = new Map<number, bigint>();
    for (const r of regions) if (r.index <= ROM_REGION && r.size > 0n) barSizes.set(r.index, r.size);
    const numIrqs = info.getUint32(DEVICE_INFO.numIrqs, true);
    const count = (i: number): number => (i < numIrqs ? irqCount(channel, i) : 0);
    const description: DeviceDescription = {
      backend: 'vfio-user',
      source: `vfio-user server at ${path}`,
      regions,
      interrupts: { intx: count(PCI_IRQ.INTX) > 0 ? 1 : 0, msi: count(PCI_IRQ.MSI), msix: count(PCI_IRQ.MSIX) },
      reset: (flags & DEVICE_FLAG.RESET) !== 0 ? ['device_specific'] : ['none'],
    };
    const capture: CapturedFunction = { bdf: { segment: 0, bus: 0, device: 0, fn: 0 }, bytes, barSizes, description: description.source, at: path };
    if (!options.keep) {
      sys.close(channel.fd);
      return { capture, description };
    }
    return { capture, description, handle: { kind: 'vfio-user', address: path, socket: channel.fd, timeoutMs: options.timeoutMs } };
  } catch (err) {
    sys.close(channel.fd);
    throw err;
  }
}

export interface VfioUserAttachOptions {
  readonly description: DeviceDescription;
  /** Guest memory, for the server's DMA_READ and DMA_WRITE. */
  readonly memory: DmaMemory;
  /** Called once when the connection fails (the device is then dead). */
  readonly onDead?: (why: string) => void;
}

/** The device behind an already negotiated connection, driven from the calling thread. */
export function attachVfioUser(sys: Sys, handle: Extract<BackendHandle, { kind: 'vfio-user' }>, options: VfioUserAttachOptions): AttachedDevice {
  const channel = new Channel(sys, handle.socket, handle.address, handle.timeoutMs);
  const dmaRanges: Array<{ iova: bigint; size: bigint }> = [];
  const mappings: Mapping[] = [];
  let dead: string | undefined;

  /** The server's DMA into guest memory: only inside what we mapped for it, and only RAM. */
  const serve = (m: Message): void => {
    for (const fd of m.fds) sys.close(fd);
    const v = viewOf(m.payload);
    const inside = (a: bigint, n: bigint): boolean => dmaRanges.some((r) => a >= r.iova && a + n <= r.iova + r.size);
    if ((m.command === CMD.DMA_READ || m.command === CMD.DMA_WRITE) && m.payload.length >= DMA_ACCESS.data) {
      const address = v.getBigUint64(DMA_ACCESS.address, true);
      const count = v.getBigUint64(DMA_ACCESS.count, true);
      if (count <= BigInt(MAX_DATA_XFER) && inside(address, count)) {
        if (m.command === CMD.DMA_READ && m.payload.length === DMA_ACCESS.data) {
          const data = options.memory.read(address, Number(count));
          if (data !== undefined) {
            const p = payload(DMA_ACCESS.data + data.length);
            p.bytes.set(m.payload.subarray(0, DMA_ACCESS.data));
            p.bytes.set(data, DMA_ACCESS.data);
            channel.reply(m, p.bytes);
            return;
          }
        } else if (m.command === CMD.DMA_WRITE && m.payload.length === DMA_ACCESS.data + Number(count) && options.memory.write(address, m.payload.subarray(DMA_ACCESS.data))) {
          const p = payload(12);
          p.view.setBigUint64(0, address, true);
          p.view.setUint32(8, Number(count), true);
          channel.reply(m, p.bytes);
          return;
        }
      }
    }
    if ((m.flags & FLAG.TYPE_MASK) === FLAG.COMMAND) channel.replyError(m, ERRNO.EINVAL);
  };

  /**
   * Runs one exchange; a broken connection kills the device. It never throws: a config read
   * fails inside the bus's CF8/ECAM handlers, which must not be failed with it, so the death
   * is reported once through `onDead` (the monitor fails every range of the device) and the
   * access gets what a failed device answers.
   */
  const live = <T>(f: () => T, fallback: T): T => {
    if (dead !== undefined) return fallback;
    try {
      return f();
    } catch (err) {
      dead = `the device's server is gone: ${err instanceof Error ? err.message : String(err)}`;
      options.onDead?.(dead);
      return fallback;
    }
  };

  const readValue = (region: number, offset: number, size: AccessSize): number =>
    live(() => {
      const b = regionRead(channel, region, offset, size, serve);
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = (v << 8) | b[i]!;
      return v >>> 0;
    }, allOnes(size));
  const writeValue = (region: number, offset: number, size: AccessSize, value: number): void =>
    live(() => {
      const b = new Uint8Array(size);
      for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
      regionWrite(channel, region, offset, b, serve);
    }, undefined);

  const description = options.description;
  const configSize = description.regions[CONFIG_REGION]?.size ?? 256n;
  const config: ConfigBackend = {
    length: Number(configSize > 4096n ? 4096n : configSize),
    source: description.source,
    read: (offset, size) => (dead !== undefined ? allOnes(size) : readValue(CONFIG_REGION, offset, size)),
    write: (offset, size, value) => writeValue(CONFIG_REGION, offset, size, value),
    barSize: (index) => description.regions[index]?.size,
  };

  const regions = new Map<number, RegionAccess>();
  const region = (index: number): RegionAccess | undefined => {
    const have = regions.get(index);
    if (have !== undefined) return have;
    const info = description.regions[index];
    if (info === undefined || info.size === 0n || index === CONFIG_REGION) return undefined;
    let detail: RegionDetail | undefined;
    const mapped = new Map<string, HostMemory>();
    const access: RegionAccess = {
      info,
      read: (offset, size) => readValue(index, offset, size),
      write: (offset, size, value) => writeValue(index, offset, size, value),
      map(offset, size) {
        if (index === ROM_REGION || !info.mmap.some((a) => offset >= a.offset && offset + size <= a.offset + a.size)) return undefined;
        const key = `${offset}+${size}`;
        const seen = mapped.get(key);
        if (seen !== undefined) return seen;
        detail ??= live(() => regionInfo(channel, index), undefined);
        if (detail?.fd === undefined) return undefined;
        const m = sys.mmap(Number(size), PROT_READ | PROT_WRITE, MAP_SHARED, detail.fd, Number(detail.fdOffset + offset));
        mappings.push(m);
        mapped.set(key, m);
        return m;
      },
    };
    regions.set(index, access);
    return access;
  };

  const setIrqs = (index: number, flags: number, start: number, count: number, fds: readonly number[]): void => {
    const p = payload(IRQ_SET.data);
    p.view.setUint32(IRQ_SET.argsz, IRQ_SET.data, true);
    p.view.setUint32(IRQ_SET.flags, flags, true);
    p.view.setUint32(IRQ_SET.index, index, true);
    p.view.setUint32(IRQ_SET.start, start, true);
    p.view.setUint32(IRQ_SET.count, count, true);
    live(() => channel.request(CMD.DEVICE_SET_IRQS, p.bytes, fds, serve), undefined);
  };

  return {
    description,
    config,
    region,
    interrupts: {
      connectIntx(trigger, resample) {
        setIrqs(PCI_IRQ.INTX, IRQ_SET_FLAG.DATA_EVENTFD | IRQ_SET_FLAG.ACTION_TRIGGER, 0, 1, [trigger]);
        setIrqs(PCI_IRQ.INTX, IRQ_SET_FLAG.DATA_EVENTFD | IRQ_SET_FLAG.ACTION_UNMASK, 0, 1, [resample]);
      },
      disconnectIntx() {
        setIrqs(PCI_IRQ.INTX, IRQ_SET_FLAG.DATA_NONE | IRQ_SET_FLAG.ACTION_TRIGGER, 0, 0, []);
      },
      setVectors(kind, fds) {
        const index = kind === 'msi' ? PCI_IRQ.MSI : PCI_IRQ.MSIX;
        const wired = fds.filter((f): f is number => f !== undefined);
        if (wired.length === 0 || wired.length !== fds.length) setIrqs(index, IRQ_SET_FLAG.DATA_NONE | IRQ_SET_FLAG.ACTION_TRIGGER, 0, 0, []);
        else setIrqs(index, IRQ_SET_FLAG.DATA_EVENTFD | IRQ_SET_FLAG.ACTION_TRIGGER, 0, wired.length, wired);
      },
    },
    dma: {
      map(iova, size) {
        // No fd: guest RAM is private to the monitor, so the server reaches it by DMA_READ/DMA_WRITE, which we check.
        const p = payload(DMA_MAP.length);
        p.view.setUint32(DMA_MAP.argsz, DMA_MAP.length, true);
        p.view.setUint32(DMA_MAP.flags, DMA_FLAG.READ | DMA_FLAG.WRITE, true);
        p.view.setBigUint64(DMA_MAP.address, iova, true);
        p.view.setBigUint64(DMA_MAP.size, size, true);
        live(() => channel.request(CMD.DMA_MAP, p.bytes, [], serve), undefined);
        dmaRanges.push({ iova, size });
      },
      unmap(iova, size) {
        const i = dmaRanges.findIndex((r) => r.iova === iova && r.size === size);
        if (i < 0) return;
        dmaRanges.splice(i, 1);
        const p = payload(DMA_UNMAP.length);
        p.view.setUint32(DMA_UNMAP.argsz, DMA_UNMAP.length, true);
        p.view.setBigUint64(DMA_UNMAP.address, iova, true);
        p.view.setBigUint64(DMA_UNMAP.size, size, true);
        live(() => channel.request(CMD.DMA_UNMAP, p.bytes, [], serve), undefined);
      },
    },
    reset() {
      live(() => channel.request(CMD.DEVICE_RESET, new Uint8Array(0), [], serve), undefined);
      return description.reset[0] ?? 'none';
    },
    rom: () => undefined,
    close() {
      // The server drops what this client gave it when the connection closes (the main thread closes the socket).
      for (const m of mappings.splice(0)) sys.munmap(m);
      if (dead !== undefined) return;
      for (const index of [PCI_IRQ.INTX, PCI_IRQ.MSI, PCI_IRQ.MSIX]) {
        try {
          setIrqs(index, IRQ_SET_FLAG.DATA_NONE | IRQ_SET_FLAG.ACTION_TRIGGER, 0, 0, []);
        } catch {
          // Gone meanwhile: nothing left to turn off.
        }
      }
    },
  };
}
