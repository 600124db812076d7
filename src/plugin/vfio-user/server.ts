/**
 * `hvmpt serve-device`: one device plug-in served as a vfio-user server (QEMU's
 * docs/interop/vfio-user.rst), so any vfio-user client — hvmpt's monitor, QEMU 10.1 or later,
 * cloud-hypervisor — puts it on its guest's bus. One client at a time; when it goes, its DMA
 * maps and interrupt fds go with it and the device keeps its state for the next, as the
 * specification asks.
 *
 * The device runs exactly as it does in-process (PluginDevice); only its host differs: guest
 * memory is what the client mapped (mmap'ed from the fds it sent, else DMA_READ/DMA_WRITE
 * messages), interrupts are the client's eventfds, and MSI/MSI-X are emulated by the client,
 * which tells the server the vectors it wired through SET_IRQS.
 */
import { closeSync, ftruncateSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import type { DmaMemory } from '../../hw/chipset/fw-cfg.js';
import type { AccessSize } from '../../hw/io.js';
import { buildEmulatedFunction, type EmulatedFunctionSpec } from '../../hw/pci/emulated.js';
import type { PciFunction } from '../../hw/pci/function.js';
import { MAP_SHARED, POLLIN, PROT_READ, PROT_WRITE, type Mapping, type Sys } from '../../native/sys.js';
import type { DeviceLayout, PciDeviceDefinition } from '../api.js';
import { PluginDevice } from '../device.js';
import { layoutSpec } from '../layout.js';
import { PluginLoadError } from '../modules.js';
import { activePlugin, clearActivePlugin } from '../watchdog.js';
import { Channel, FramingError, VfioUserError } from './channel.js';
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
  IRQ_INFO_FLAG,
  IRQ_SET,
  IRQ_SET_ACTION_MASK,
  IRQ_SET_DATA_MASK,
  IRQ_SET_FLAG,
  MAX_DATA_XFER,
  MAX_MSG_FDS,
  payload,
  PCI_CONFIG_REGION,
  PCI_IRQ,
  PCI_IRQS,
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

const PAGE = 4096;

export interface ServeOptions {
  readonly socket: string;
  readonly definition: PciDeviceDefinition;
  /** Validated by the definition's schema. */
  readonly options: unknown;
  /** The device's name (messages, its function id). */
  readonly name: string;
  readonly log: (line: string) => void;
  /** Called once the socket listens (tests wait for it). */
  readonly onListening?: () => void;
  /** ms one call into the plug-in may run (default 2000): `create`, `reset`, `restore` and every access. */
  readonly watchdogMs?: number;
}

export const DEFAULT_SERVE_WATCHDOG_MS = 2000;

/** A client command the server refuses, with the errno the reply carries. */
class Refusal extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

interface DmaRegion {
  readonly address: bigint;
  readonly size: bigint;
  readonly flags: number;
  readonly offset: bigint;
  readonly mapping: Mapping | undefined;
}

interface MemoryBar {
  readonly fd: number;
  readonly mapping: Mapping;
  readonly bytes: Uint8Array;
}

/** The device behind the socket, across clients. */
class ServedDevice {
  readonly fn: PciFunction;
  readonly device: PluginDevice;
  readonly bars = new Map<number, { size: number; io: boolean }>();
  readonly memoryBars = new Map<number, MemoryBar>();
  /** The current client's connection and resources. */
  channel: Channel | undefined;
  dma: DmaRegion[] = [];
  intx: { trigger?: number; unmask?: number; masked: boolean; level: boolean } = { masked: false, level: false };
  vectors: { kind: 'msi' | 'msix'; fds: number[] } | undefined;

  constructor(
    readonly sys: Sys,
    readonly options: ServeOptions,
  ) {
    let layout: DeviceLayout;
    let spec: EmulatedFunctionSpec;
    try {
      layout = options.definition.layout(options.options);
      spec = layoutSpec(layout, options.name);
    } catch (err) {
      throw new PluginLoadError(`${options.definition.name}'s layout for these options: ${err instanceof Error ? err.message : String(err)}`, { input: options.name });
    }
    this.fn = buildEmulatedFunction(spec).fn;
    for (const b of layout.bars ?? []) this.bars.set(b.index, { size: Number(b.size), io: b.kind === 'io' });
    const memory: DmaMemory = {
      covers: (address, length) => this.regionFor(address, length) !== undefined,
      read: (address, length) => this.dmaRead(address, length),
      write: (address, data) => this.dmaWrite(address, data),
    };
    this.device = new PluginDevice(options.definition, options.options, this.fn, layout, {
      setIntx: (level) => this.setIntx(level),
      signalMessage: (kind, vector) => {
        const fd = this.vectors?.kind === kind ? this.vectors.fds[vector] : undefined;
        if (fd !== undefined) this.sys.eventfdWrite(fd, 1n);
      },
      memory,
      barMemory: (bar, size) => this.memoryBar(bar, size),
      note: (text) => options.log(text),
      fault: (message) => options.log(`device failed (it answers all ones from now on): ${message}`),
      callLimitMs: options.watchdogMs ?? DEFAULT_SERVE_WATCHDOG_MS,
    });
    this.device.reset();
  }

  /** A `memory` BAR lives in a file of its own, so its pages can be handed to the client to mmap. */
  private memoryBar(bar: number, size: number): Uint8Array {
    const length = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
    const file = join(tmpdir(), `hvmpt-bar-${process.pid}-${bar}-${Date.now()}`);
    const fd = openSync(file, 'w+', 0o600);
    unlinkSync(file);
    ftruncateSync(fd, length);
    const mapping = this.sys.mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const bytes = new Uint8Array(mapping.buffer, 0, size);
    this.memoryBars.set(bar, { fd, mapping, bytes });
    return bytes;
  }

  private regionFor(address: bigint, length: number): DmaRegion | undefined {
    return this.dma.find((r) => address >= r.address && address + BigInt(length) <= r.address + r.size);
  }

  private dmaRead(address: bigint, length: number): Uint8Array | undefined {
    const r = this.regionFor(address, length);
    if (r === undefined || (r.flags & DMA_FLAG.READ) === 0) return undefined;
    if (r.mapping !== undefined) return new Uint8Array(r.mapping.buffer, Number(address - r.address), length).slice();
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const n = Math.min(length - done, MAX_DATA_XFER);
      const p = payload(16);
      p.view.setBigUint64(DMA_ACCESS.address, address + BigInt(done), true);
      p.view.setBigUint64(DMA_ACCESS.count, BigInt(n), true);
      const reply = this.channel!.request(CMD.DMA_READ, p.bytes, [], (m) => this.busy(m));
      if (reply.payload.length !== DMA_ACCESS.data + n) throw new VfioUserError(`DMA_READ reply of ${reply.payload.length} bytes for ${n}`, { input: this.options.socket });
      out.set(reply.payload.subarray(DMA_ACCESS.data), done);
      done += n;
    }
    return out;
  }

  private dmaWrite(address: bigint, data: Uint8Array): boolean {
    const r = this.regionFor(address, data.length);
    if (r === undefined || (r.flags & DMA_FLAG.WRITE) === 0) return false;
    if (r.mapping !== undefined) {
      new Uint8Array(r.mapping.buffer, Number(address - r.address), data.length).set(data);
      return true;
    }
    for (let done = 0; done < data.length; ) {
      const n = Math.min(data.length - done, MAX_DATA_XFER);
      const p = payload(16 + n);
      p.view.setBigUint64(DMA_ACCESS.address, address + BigInt(done), true);
      p.view.setBigUint64(DMA_ACCESS.count, BigInt(n), true);
      p.bytes.set(data.subarray(done, done + n), DMA_ACCESS.data);
      this.channel!.request(CMD.DMA_WRITE, p.bytes, [], (m) => this.busy(m));
      done += n;
    }
    return true;
  }

  /** A client command that arrived while the server waits for its own DMA reply. */
  private busy(m: Message): void {
    for (const fd of m.fds) this.sys.close(fd);
    this.channel!.replyError(m, ERRNO.EBUSY);
  }

  private setIntx(level: boolean): void {
    this.intx.level = level;
    this.fireIntx();
  }

  /** INTx as VFIO delivers it: the trigger eventfd fires and the line masks itself until the client unmasks it. */
  private fireIntx(): void {
    const x = this.intx;
    if (!x.level || x.masked || x.trigger === undefined) return;
    x.masked = true;
    this.sys.eventfdWrite(x.trigger, 1n);
  }

  unmaskIntx(): void {
    this.intx.masked = false;
    this.fireIntx();
  }

  /** The client went away: its memory and interrupt fds go, the device state stays. */
  dropClient(): void {
    for (const r of this.dma) if (r.mapping !== undefined) this.sys.munmap(r.mapping);
    this.dma = [];
    const x = this.intx;
    for (const fd of [x.trigger, x.unmask]) if (fd !== undefined) this.sys.close(fd);
    this.intx = { masked: false, level: x.level };
    for (const fd of this.vectors?.fds ?? []) this.sys.close(fd);
    this.vectors = undefined;
    this.device.setMessageMode('off', 0);
    this.channel = undefined;
  }

  // ---------------------------------------------------------------- commands

  regionSize(index: number): number {
    if (index === PCI_CONFIG_REGION) return this.fn.length;
    return this.bars.get(index)?.size ?? 0;
  }

  handle(m: Message): { body?: Uint8Array; fds?: number[] } {
    switch (m.command) {
      case CMD.DMA_MAP:
        return this.dmaMap(m);
      case CMD.DMA_UNMAP:
        return this.dmaUnmap(m);
      case CMD.DEVICE_GET_INFO: {
        const argsz = this.fixed(m, DEVICE_INFO.length);
        const p = payload(DEVICE_INFO.length);
        p.view.setUint32(DEVICE_INFO.argsz, DEVICE_INFO.length, true);
        p.view.setUint32(DEVICE_INFO.flags, DEVICE_FLAG.RESET | DEVICE_FLAG.PCI, true);
        p.view.setUint32(DEVICE_INFO.numRegions, PCI_REGIONS, true);
        p.view.setUint32(DEVICE_INFO.numIrqs, PCI_IRQS, true);
        void argsz;
        return { body: p.bytes };
      }
      case CMD.DEVICE_GET_REGION_INFO:
        return this.regionInfo(m);
      case CMD.DEVICE_GET_IRQ_INFO: {
        this.fixed(m, IRQ_INFO.length);
        const index = viewOf(m.payload).getUint32(IRQ_INFO.index, true);
        if (index >= PCI_IRQS) throw new Refusal(ERRNO.EINVAL, `no IRQ index ${index}`);
        const layout = this.device.layout;
        const counts = [layout.interruptPin === 'none' ? 0 : 1, layout.msi?.vectors ?? (layout.msi === undefined ? 0 : 1), layout.msix?.vectors ?? 0, 0, 0];
        const flags = [IRQ_INFO_FLAG.EVENTFD | IRQ_INFO_FLAG.MASKABLE | IRQ_INFO_FLAG.AUTOMASKED, IRQ_INFO_FLAG.EVENTFD | IRQ_INFO_FLAG.NORESIZE, IRQ_INFO_FLAG.EVENTFD | IRQ_INFO_FLAG.NORESIZE, IRQ_INFO_FLAG.EVENTFD, IRQ_INFO_FLAG.EVENTFD];
        const p = payload(IRQ_INFO.length);
        p.view.setUint32(IRQ_INFO.argsz, IRQ_INFO.length, true);
        p.view.setUint32(IRQ_INFO.flags, flags[index]!, true);
        p.view.setUint32(IRQ_INFO.index, index, true);
        p.view.setUint32(IRQ_INFO.count, counts[index]!, true);
        return { body: p.bytes };
      }
      case CMD.DEVICE_SET_IRQS:
        this.setIrqs(m);
        return {};
      case CMD.REGION_READ:
        return this.regionRead(m);
      case CMD.REGION_WRITE:
        return this.regionWrite(m);
      case CMD.DEVICE_RESET:
        if (m.payload.length !== 0) throw new Refusal(ERRNO.EINVAL, `DEVICE_RESET carries no payload, got ${m.payload.length} bytes`);
        this.fn.resetRegisters();
        this.device.reset();
        return {};
      case CMD.VERSION:
        throw new Refusal(ERRNO.EINVAL, 'the version was negotiated already');
      case CMD.DEVICE_FEATURE:
        throw new Refusal(ERRNO.ENOTSUP, 'no device features (migration) are offered');
      default:
        throw new Refusal(ERRNO.EINVAL, `${m.command} is not a command this server takes`);
    }
  }

  /** A fixed-size request with argsz: the payload is exactly `length` bytes, argsz at least that. */
  private fixed(m: Message, length: number): number {
    if (m.payload.length !== length) throw new Refusal(ERRNO.EINVAL, `a ${length}-byte payload was expected, got ${m.payload.length}`);
    const argsz = viewOf(m.payload).getUint32(0, true);
    if (argsz < length) throw new Refusal(ERRNO.EINVAL, `argsz ${argsz} is below the ${length}-byte structure`);
    return argsz;
  }

  private dmaMap(m: Message): Record<string, never> {
    if (m.payload.length !== DMA_MAP.length) throw new Refusal(ERRNO.EINVAL, `DMA_MAP carries ${DMA_MAP.length} bytes, got ${m.payload.length}`);
    const v = viewOf(m.payload);
    const flags = v.getUint32(DMA_MAP.flags, true);
    const offset = v.getBigUint64(DMA_MAP.offset, true);
    const address = v.getBigUint64(DMA_MAP.address, true);
    const size = v.getBigUint64(DMA_MAP.size, true);
    if (v.getUint32(DMA_MAP.argsz, true) !== DMA_MAP.length) throw new Refusal(ERRNO.EINVAL, `DMA_MAP argsz must be ${DMA_MAP.length}`);
    if (size === 0n || address + size > 1n << 64n || (flags & ~(DMA_FLAG.READ | DMA_FLAG.WRITE)) !== 0) throw new Refusal(ERRNO.EINVAL, 'DMA_MAP: empty, wrapping, or unknown flags');
    if (m.fds.length > 1) throw new Refusal(ERRNO.EINVAL, `DMA_MAP takes at most one fd, got ${m.fds.length}`);
    if (this.dma.some((r) => address < r.address + r.size && r.address < address + size)) throw new Refusal(ERRNO.EEXIST, `[0x${address.toString(16)}, +0x${size.toString(16)}) overlaps a mapped region`);
    let mapping: Mapping | undefined;
    const fd = m.fds[0];
    if (fd !== undefined) {
      if (size > BigInt(Number.MAX_SAFE_INTEGER) || offset % BigInt(PAGE) !== 0n) throw new Refusal(ERRNO.EINVAL, 'DMA_MAP: the fd offset must be page aligned');
      const prot = ((flags & DMA_FLAG.READ) !== 0 ? PROT_READ : 0) | ((flags & DMA_FLAG.WRITE) !== 0 ? PROT_WRITE : 0);
      try {
        mapping = this.sys.mmap(Number(size), prot === 0 ? PROT_READ : prot, MAP_SHARED, fd, Number(offset));
      } catch (err) {
        throw new Refusal(ERRNO.EINVAL, `cannot mmap the region's fd: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        this.sys.close(fd);
      }
    }
    this.dma.push({ address, size, flags, offset, mapping });
    return {};
  }

  private dmaUnmap(m: Message): { body: Uint8Array } {
    if (m.payload.length !== DMA_UNMAP.length) throw new Refusal(ERRNO.EINVAL, `DMA_UNMAP carries ${DMA_UNMAP.length} bytes, got ${m.payload.length}`);
    const v = viewOf(m.payload);
    const address = v.getBigUint64(DMA_UNMAP.address, true);
    const size = v.getBigUint64(DMA_UNMAP.size, true);
    const i = this.dma.findIndex((r) => r.address === address && r.size === size);
    if (i < 0) throw new Refusal(ERRNO.EINVAL, `no mapping is exactly [0x${address.toString(16)}, +0x${size.toString(16)})`);
    const r = this.dma.splice(i, 1)[0]!;
    if (r.mapping !== undefined) this.sys.munmap(r.mapping);
    return { body: m.payload.slice() };
  }

  private regionInfo(m: Message): { body: Uint8Array; fds?: number[] } {
    const argsz = this.fixed(m, REGION_INFO.length);
    const index = viewOf(m.payload).getUint32(REGION_INFO.index, true);
    if (index >= PCI_REGIONS) throw new Refusal(ERRNO.EINVAL, `no region ${index}`);
    const size = this.regionSize(index);
    let flags = size > 0 ? REGION_FLAG.READ | REGION_FLAG.WRITE : 0;
    const mem = this.memoryBars.get(index);
    // A memory BAR is mappable but for the pages holding the MSI-X table or PBA, which must trap.
    let areas: Array<{ offset: number; size: number }> = [];
    if (mem !== undefined) {
      const traps = this.device.trappedSpans(index).map((s) => ({ start: Math.floor(s.offset / PAGE) * PAGE, end: Math.ceil((s.offset + s.length) / PAGE) * PAGE }));
      traps.sort((a, b) => a.start - b.start);
      let at = 0;
      const end = Math.ceil(size / PAGE) * PAGE;
      for (const t of traps) {
        if (t.start > at) areas.push({ offset: at, size: t.start - at });
        at = Math.max(at, t.end);
      }
      if (at < end) areas.push({ offset: at, size: end - at });
      flags |= REGION_FLAG.MMAP;
    }
    const sparse = mem !== undefined && (areas.length !== 1 || areas[0]!.offset !== 0 || areas[0]!.size < size);
    const capLength = sparse ? SPARSE.areas + areas.length * SPARSE.areaLength : 0;
    const full = REGION_INFO.length + capLength;
    const fits = argsz >= full;
    if (!fits) areas = [];
    const p = payload(fits ? full : REGION_INFO.length);
    p.view.setUint32(REGION_INFO.argsz, full, true);
    p.view.setUint32(REGION_INFO.flags, flags | (sparse && fits ? REGION_FLAG.CAPS : 0), true);
    p.view.setUint32(REGION_INFO.index, index, true);
    p.view.setUint32(REGION_INFO.capOffset, sparse && fits ? REGION_INFO.length : 0, true);
    p.view.setBigUint64(REGION_INFO.size, BigInt(size), true);
    p.view.setBigUint64(REGION_INFO.offset, 0n, true);
    if (sparse && fits) {
      const c = REGION_INFO.length;
      p.view.setUint16(c + CAP.id, CAP_SPARSE_MMAP, true);
      p.view.setUint16(c + CAP.version, 1, true);
      p.view.setUint32(c + CAP.next, 0, true);
      p.view.setUint32(c + SPARSE.nrAreas, areas.length, true);
      areas.forEach((a, i) => {
        p.view.setBigUint64(c + SPARSE.areas + i * SPARSE.areaLength, BigInt(a.offset), true);
        p.view.setBigUint64(c + SPARSE.areas + i * SPARSE.areaLength + 8, BigInt(a.size), true);
      });
    }
    return { body: p.bytes, ...(mem === undefined ? {} : { fds: [mem.fd] }) };
  }

  private access(m: Message, write: boolean): { region: number; offset: number; count: number; data: Uint8Array } {
    if (m.payload.length < REGION_ACCESS.data) throw new Refusal(ERRNO.EINVAL, `a region access needs ${REGION_ACCESS.data} bytes of fields, got ${m.payload.length}`);
    const v = viewOf(m.payload);
    const offset = v.getBigUint64(REGION_ACCESS.offset, true);
    const region = v.getUint32(REGION_ACCESS.region, true);
    const count = v.getUint32(REGION_ACCESS.count, true);
    const expect = REGION_ACCESS.data + (write ? count : 0);
    if (m.payload.length !== expect) throw new Refusal(ERRNO.EINVAL, `count ${count} needs a ${expect}-byte payload, got ${m.payload.length}`);
    if (count > MAX_DATA_XFER) throw new Refusal(ERRNO.EINVAL, `count ${count} exceeds max_data_xfer_size ${MAX_DATA_XFER}`);
    if (region >= PCI_REGIONS) throw new Refusal(ERRNO.EINVAL, `no region ${region}`);
    const size = this.regionSize(region);
    if (offset + BigInt(count) > BigInt(size)) throw new Refusal(ERRNO.EINVAL, `[0x${offset.toString(16)}, +${count}) is outside region ${region} (${size} bytes)`);
    return { region, offset: Number(offset), count, data: m.payload.subarray(REGION_ACCESS.data) };
  }

  /** Pieces of an access as a device takes them: naturally aligned 4, 2 or 1 bytes. */
  private *pieces(offset: number, count: number): Generator<{ at: number; size: AccessSize }> {
    for (let at = offset; at < offset + count; ) {
      const left = offset + count - at;
      const size: AccessSize = left >= 4 && at % 4 === 0 ? 4 : left >= 2 && at % 2 === 0 ? 2 : 1;
      yield { at, size };
      at += size;
    }
  }

  private regionRead(m: Message): { body: Uint8Array } {
    const a = this.access(m, false);
    const p = payload(REGION_ACCESS.data + a.count);
    p.bytes.set(m.payload.subarray(0, REGION_ACCESS.data));
    const bar = a.region === PCI_CONFIG_REGION ? undefined : this.device.barAccess(a.region);
    for (const { at, size } of this.pieces(a.offset, a.count)) {
      const value = bar === undefined ? this.fn.read(at, size) : bar.read(at, size);
      for (let i = 0; i < size; i++) p.bytes[REGION_ACCESS.data + at - a.offset + i] = (value >>> (8 * i)) & 0xff;
    }
    return { body: p.bytes };
  }

  private regionWrite(m: Message): { body: Uint8Array } {
    const a = this.access(m, true);
    const bar = a.region === PCI_CONFIG_REGION ? undefined : this.device.barAccess(a.region);
    for (const { at, size } of this.pieces(a.offset, a.count)) {
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = (value << 8) | a.data[at - a.offset + i]!;
      if (bar === undefined) this.fn.write(at, size, value >>> 0);
      else bar.write(at, size, value >>> 0);
    }
    return { body: m.payload.slice(0, REGION_ACCESS.data) };
  }

  private setIrqs(m: Message): void {
    if (m.payload.length < IRQ_SET.data) throw new Refusal(ERRNO.EINVAL, `SET_IRQS needs ${IRQ_SET.data} bytes, got ${m.payload.length}`);
    const v = viewOf(m.payload);
    const argsz = v.getUint32(IRQ_SET.argsz, true);
    const flags = v.getUint32(IRQ_SET.flags, true);
    const index = v.getUint32(IRQ_SET.index, true);
    const start = v.getUint32(IRQ_SET.start, true);
    const count = v.getUint32(IRQ_SET.count, true);
    const data = flags & IRQ_SET_DATA_MASK;
    const action = flags & IRQ_SET_ACTION_MASK;
    const closeAll = (): void => m.fds.forEach((fd) => this.sys.close(fd));
    const refuse = (message: string): never => {
      closeAll();
      throw new Refusal(ERRNO.EINVAL, message);
    };
    if (argsz !== m.payload.length) refuse(`argsz ${argsz} is not the payload's ${m.payload.length} bytes`);
    if ((flags & ~(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK)) !== 0 || popcount(data) !== 1 || popcount(action) !== 1) refuse(`flags 0x${flags.toString(16)}: exactly one DATA and one ACTION flag`);
    if (index >= PCI_IRQS) refuse(`no IRQ index ${index}`);
    const available = [this.device.layout.interruptPin === 'none' ? 0 : 1, this.device.layout.msi?.vectors ?? (this.device.layout.msi === undefined ? 0 : 1), this.device.layout.msix?.vectors ?? 0, 0, 0][index]!;
    if (start + count > available && !(count === 0 && start === 0)) refuse(`vectors ${start}-${start + count - 1} of index ${index}, which has ${available}`);
    if (data === IRQ_SET_FLAG.DATA_EVENTFD) {
      if (m.payload.length !== IRQ_SET.data) refuse('DATA_EVENTFD carries its fds as SCM_RIGHTS, not in the payload');
      if (m.fds.length !== count) refuse(`${count} eventfds announced, ${m.fds.length} came with the message`);
    } else {
      if (m.fds.length > 0) refuse('file descriptors came with a SET_IRQS that is not DATA_EVENTFD');
      if (data === IRQ_SET_FLAG.DATA_BOOL && m.payload.length !== IRQ_SET.data + count) refuse(`DATA_BOOL needs ${count} bytes of booleans`);
      if (data === IRQ_SET_FLAG.DATA_NONE && m.payload.length !== IRQ_SET.data) refuse('DATA_NONE carries no data');
    }
    const bools = data === IRQ_SET_FLAG.DATA_BOOL ? m.payload.subarray(IRQ_SET.data) : undefined;
    const chosen = (i: number): boolean => bools === undefined || bools[i] !== 0;
    if (index === PCI_IRQ.INTX) {
      const x = this.intx;
      if (action === IRQ_SET_FLAG.ACTION_TRIGGER) {
        if (data === IRQ_SET_FLAG.DATA_EVENTFD) {
          if (x.trigger !== undefined) this.sys.close(x.trigger);
          x.trigger = m.fds[0];
          this.fireIntx();
        } else if (count === 0) {
          if (x.trigger !== undefined) this.sys.close(x.trigger);
          x.trigger = undefined;
        } else if (chosen(0) && x.trigger !== undefined) this.sys.eventfdWrite(x.trigger, 1n);
      } else if (action === IRQ_SET_FLAG.ACTION_UNMASK) {
        if (data === IRQ_SET_FLAG.DATA_EVENTFD) {
          if (x.unmask !== undefined) this.sys.close(x.unmask);
          x.unmask = m.fds[0];
        } else if (count === 0 || chosen(0)) this.unmaskIntx();
      } else if (data === IRQ_SET_FLAG.DATA_EVENTFD) {
        closeAll();
        throw new Refusal(ERRNO.ENOTSUP, 'mask eventfds are not offered');
      } else if (count === 0 || chosen(0)) x.masked = true;
      return;
    }
    if (index === PCI_IRQ.MSI || index === PCI_IRQ.MSIX) {
      const kind = index === PCI_IRQ.MSI ? 'msi' : 'msix';
      if (action !== IRQ_SET_FLAG.ACTION_TRIGGER) refuse(`${kind.toUpperCase()} takes TRIGGER only (the client masks vectors)`);
      if (data === IRQ_SET_FLAG.DATA_EVENTFD && count > 0) {
        if (start !== 0) refuse('vectors are set as a whole, from 0 (NORESIZE)');
        for (const fd of this.vectors?.fds ?? []) this.sys.close(fd);
        this.vectors = { kind, fds: [...m.fds] };
        this.device.setMessageMode(kind, count);
      } else if (count === 0) {
        for (const fd of this.vectors?.fds ?? []) this.sys.close(fd);
        this.vectors = undefined;
        this.device.setMessageMode('off', 0);
      } else {
        for (let i = 0; i < count; i++) {
          const fd = this.vectors?.kind === kind ? this.vectors.fds[start + i] : undefined;
          if (chosen(i) && fd !== undefined) this.sys.eventfdWrite(fd, 1n);
        }
      }
      return;
    }
    closeAll();
    if (count !== 0) throw new Refusal(ERRNO.EINVAL, `IRQ index ${index} has no interrupts`);
  }
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x !== 0; x &= x - 1) c++;
  return c;
}

/** Answers the client's first messages until a VERSION is agreed ('ok'), or says to close. */
function negotiate(channel: Channel, m: Message, log: (line: string) => void): 'ok' | 'refused' | 'close' {
  if (m.command !== CMD.VERSION) {
    for (const fd of m.fds) channel.sys.close(fd);
    channel.replyError(m, ERRNO.EINVAL);
    log(`message ${m.id} (command ${m.command}) before VERSION: refused`);
    return 'refused';
  }
  const v = viewOf(m.payload);
  if (m.payload.length < VERSION.json) {
    channel.replyError(m, ERRNO.EINVAL);
    return 'refused';
  }
  const major = v.getUint16(VERSION.major, true);
  const minor = v.getUint16(VERSION.minor, true);
  if (m.payload.length > VERSION.json) {
    const text = new TextDecoder().decode(m.payload.subarray(VERSION.json)).replace(/\0+$/, '');
    try {
      const caps = JSON.parse(text) as unknown;
      if (typeof caps !== 'object' || caps === null) throw new Error('not an object');
    } catch {
      channel.replyError(m, ERRNO.EINVAL);
      log('VERSION with capabilities that are not a JSON object: refused');
      return 'refused';
    }
  }
  if (major !== VFIO_USER_MAJOR) {
    log(`client speaks vfio-user ${major}.${minor}; this server ${VFIO_USER_MAJOR}.${VFIO_USER_MINOR}: closing`);
    return 'close';
  }
  const json = new TextEncoder().encode(JSON.stringify({ capabilities: { max_msg_fds: MAX_MSG_FDS, max_data_xfer_size: MAX_DATA_XFER, pgsizes: PAGE, max_dma_maps: 65535 } }) + '\0');
  const p = payload(VERSION.json + json.length);
  p.view.setUint16(VERSION.major, VFIO_USER_MAJOR, true);
  p.view.setUint16(VERSION.minor, Math.min(minor, VFIO_USER_MINOR), true);
  p.bytes.set(json, VERSION.json);
  channel.reply(m, p.bytes);
  return 'ok';
}

/** How long one watched slice of the serving loop runs before its clock is reset, ms. */
const SLICE_MS = 200;

/** One client's connection, as the watched slices of the serving loop share it. */
interface Connection {
  readonly fd: number;
  readonly channel: Channel;
  negotiated: boolean;
  /** What the loop was doing, for the watchdog to know what an interruption left undone. */
  phase: 'waiting' | 'receiving' | 'handling' | 'replying';
  message: Message | undefined;
}

/** Handles one command and replies to it: a Refusal becomes the spec's error reply. */
function answer(served: ServedDevice, c: Connection, m: Message, log: (line: string) => void): void {
  let r: { body?: Uint8Array; fds?: number[] };
  try {
    r = served.handle(m);
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    log(`message ${m.id} refused (errno ${err.errno}): ${err.message}`);
    c.phase = 'replying';
    c.channel.replyError(m, err.errno);
    return;
  }
  c.phase = 'replying';
  c.channel.reply(m, r.body, r.fds ?? []);
}

/** Serves the connection until `sliceEnd` (performance.now() ms) has passed while waiting; 'closed' when the client left. */
function serveSlice(served: ServedDevice, c: Connection, sliceEnd: number, log: (line: string) => void): 'closed' | undefined {
  const sys = served.sys;
  for (;;) {
    c.phase = 'waiting';
    const wait = Math.max(0, Math.ceil(sliceEnd - performance.now()));
    const watch = [{ fd: c.fd, events: POLLIN }, ...(served.intx.unmask === undefined ? [] : [{ fd: served.intx.unmask, events: POLLIN }])];
    const revents = sys.poll(watch, wait);
    if (revents[1] !== undefined && (revents[1] & POLLIN) !== 0) {
      sys.eventfdRead(served.intx.unmask!);
      served.unmaskIntx();
    }
    if (revents[0] === 0) {
      if (performance.now() >= sliceEnd) return undefined;
      continue;
    }
    c.phase = 'receiving';
    const m = c.channel.receive();
    if (m === undefined) return 'closed';
    if ((m.flags & FLAG.TYPE_MASK) !== FLAG.COMMAND) {
      for (const f of m.fds) sys.close(f);
      continue;
    }
    if (!c.negotiated) {
      c.phase = 'replying';
      const n = negotiate(c.channel, m, log);
      if (n === 'close') return 'closed';
      c.negotiated = n === 'ok';
      continue;
    }
    c.message = m;
    c.phase = 'handling';
    answer(served, c, m, log);
    c.message = undefined;
  }
}

/**
 * One client's connection, the loop in slices under node's vm timeout as the monitor's vCPU
 * loop runs (vcpu-loop.ts): a plug-in call that runs past the watchdog's limit is stopped,
 * the device failed, and the command it was serving answered again as a failed device answers
 * (all ones), so the client gets its reply and the server goes on. An interruption anywhere
 * else (a message half received or half sent) has lost the framing: the connection closes.
 */
function serveConnection(served: ServedDevice, c: Connection, options: ServeOptions): void {
  const watchdogMs = options.watchdogMs ?? DEFAULT_SERVE_WATCHDOG_MS;
  const g = globalThis as { __hvmptServeSlice?: () => 'closed' | undefined };
  g.__hvmptServeSlice = () => serveSlice(served, c, performance.now() + SLICE_MS, options.log);
  const script = new Script('globalThis.__hvmptServeSlice()', { filename: 'hvmpt-serve-slice' });
  for (;;) {
    let r: 'closed' | undefined;
    try {
      r = script.runInThisContext({ timeout: watchdogMs + 2 * SLICE_MS }) as 'closed' | undefined;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw err;
      const plugin = activePlugin();
      clearActivePlugin();
      if (c.phase === 'handling' && c.message !== undefined && plugin !== undefined) {
        served.device.fail(`watchdog: its code ran longer than ${watchdogMs} ms; stopped`);
        answer(served, c, c.message, options.log);
        c.message = undefined;
        continue;
      }
      options.log(`the connection stalled while ${c.phase} a message: closing it`);
      return;
    }
    if (r === 'closed') return;
  }
}

/** Serves until the process is stopped. Blocks this thread: the server does nothing else. */
export function serveDevice(sys: Sys, options: ServeOptions): never {
  const served = new ServedDevice(sys, options);
  rmSync(options.socket, { force: true });
  const listener = sys.unixSocket();
  sys.bindUnix(listener, options.socket, 1);
  options.log(`serving ${options.definition.name} (${options.name}) as a vfio-user server on ${options.socket}`);
  options.onListening?.();
  for (;;) {
    const fd = sys.accept(listener);
    const channel = new Channel(sys, fd, options.socket, 10_000);
    served.channel = channel;
    options.log('client connected');
    try {
      serveConnection(served, { fd, channel, negotiated: false, phase: 'waiting', message: undefined }, options);
    } catch (err) {
      if (err instanceof FramingError) {
        options.log(`${err.message}: closing the connection`);
        try {
          channel.replyError({ id: err.id, command: err.command }, ERRNO.EINVAL);
        } catch {
          // The client may be gone already.
        }
      } else if (err instanceof VfioUserError) options.log(err.message);
      else throw err;
    }
    served.dropClient();
    closeSync(fd);
    options.log('client gone');
  }
}
