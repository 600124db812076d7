import type { AccessSize } from '../io.js';
import { assertLittleEndian, readLE } from './endian.js';

assertLittleEndian();

/**
 * Where a real function's config space lives: a replayed dump, a sysfs `config` file, and
 * later VFIO's config region or sysfs+uio. The composition layer reads and writes through
 * this and nothing else, so a backend is a few lines to add.
 *
 * Offsets are byte offsets in the function's config space, any alignment, with
 * `offset + size <= length`; values are little-endian and zero-extended.
 */
export interface ConfigBackend {
  /** How many bytes of config space the backend serves: 64, 256 or 4096 (or a dump's captured length). */
  readonly length: number;
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * The size of BAR `index` (0-5, 6 = expansion ROM) when the backend knows it (VFIO region
   * info, sysfs `resource`, `[size=…]` in an `lspci -v` dump); undefined when it does not.
   */
  barSize?(index: number): bigint | undefined;
  /** One line for reports: where the function comes from. */
  readonly source: string;
  /** Puts the device in its power-on state (a replay returns to its capture). */
  reset?(): void;
}

/**
 * A function held in memory: the replay of a captured config space. Writes land in the
 * bytes (a captured device has no other behaviour to model) except the bits named in
 * `rw1c`, which a write of 1 clears, as the real device would.
 */
export class MemoryBackend implements ConfigBackend {
  readonly length: number;
  readonly source: string;
  private readonly bytes: Uint8Array;
  private readonly captured: Uint8Array;
  private readonly words: Uint32Array;
  private readonly rw1c: Uint8Array | undefined;
  private readonly sizes: ReadonlyMap<number, bigint>;

  constructor(
    bytes: Uint8Array,
    options: { source: string; rw1c?: Uint8Array; barSizes?: ReadonlyMap<number, bigint> },
  ) {
    if (bytes.length > 0x1000) throw new RangeError(`config space of ${bytes.length} bytes: at most 4096`);
    // Always 4 KiB, ones past the captured length, so an aligned dword read needs no bounds check.
    this.words = new Uint32Array(0x400).fill(0xffff_ffff);
    this.bytes = new Uint8Array(this.words.buffer);
    this.bytes.set(bytes);
    this.captured = new Uint8Array(bytes);
    this.length = bytes.length;
    this.source = options.source;
    this.rw1c = options.rw1c;
    this.sizes = options.barSizes ?? new Map();
  }

  read(offset: number, size: AccessSize): number {
    if (size === 4 && (offset & 3) === 0) return this.words[offset >>> 2]!;
    return readLE(this.bytes, offset, size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      if (o >= this.length) return;
      const b = (value >>> (8 * i)) & 0xff;
      const c = this.rw1c?.[o] ?? 0;
      this.bytes[o] = (this.bytes[o]! & c & ~b) | (b & ~c);
    }
  }

  reset(): void {
    this.bytes.set(this.captured);
  }

  barSize(index: number): bigint | undefined {
    return this.sizes.get(index);
  }

  /** A copy of the current bytes, for tests and snapshots. */
  snapshot(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

// ---------------------------------------------------------------------------------------------
// The device back-end contract: how hvmpt drives a real function, whatever reaches it.
//
// Every back-end — a replayed capture, VFIO (with an IOMMU), uio_pci_generic and vfio-noiommu
// (without one), vfio-user (a device in another process) — is seen through two faces:
//
// - describe: `DeviceDescription`, plain data about the device (regions, interrupts, reset
//   methods). The main thread composes the guest's bus from it, exporters and reports read it;
//   nothing is opened to produce it beyond what the host layer reads.
// - attach: `AttachedDevice`, live in the vCPU thread: config space, region access and mapping,
//   interrupt wiring to eventfds, DMA mapping of guest memory, reset. Handles are process-wide
//   file descriptors, so what the main thread opened the vCPU thread can drive.
//
// The monitor (src/vmm/) never knows which back-end it drives.

/** How a real function is reached. */
export type BackendKind = 'replay' | 'vfio' | 'uio' | 'vfio-noiommu' | 'vfio-user';

/** Region numbers as VFIO has them: BARs 0-5, then the expansion ROM and config space. */
export const ROM_REGION = 6;
export const CONFIG_REGION = 7;

/** One region of a device: a BAR, the expansion ROM or config space. */
export interface RegionInfo {
  readonly index: number;
  readonly size: bigint;
  readonly read: boolean;
  readonly write: boolean;
  /**
   * Parts of the region the monitor may map into the guest (VFIO's sparse-mmap areas, or the
   * whole region), as offsets into it. Empty: every access is trapped and forwarded.
   */
  readonly mmap: ReadonlyArray<{ readonly offset: bigint; readonly size: bigint }>;
}

export interface InterruptInfo {
  /** INTx: 1 when the function has a pin the back-end can deliver (and mask until the guest's EOI). */
  readonly intx: 0 | 1;
  /** Vectors the back-end can deliver for MSI and for MSI-X (0: not offered). */
  readonly msi: number;
  readonly msix: number;
}

/** Reset methods, as Linux names them in sysfs `reset_method`. */
export type ResetMethod = 'flr' | 'af_flr' | 'pm' | 'bus' | 'device_specific' | 'acpi' | 'none';

/** What a back-end tells about its device before anything runs: plain, structured-clonable data. */
export interface DeviceDescription {
  readonly backend: BackendKind;
  /** Where the device is, for messages: "0000:00:03.0 (vfio-pci, IOMMU group 5)". */
  readonly source: string;
  readonly regions: readonly RegionInfo[];
  readonly interrupts: InterruptInfo;
  /** The reset methods the host offers, best first; ['none'] when there is none. */
  readonly reset: readonly ResetMethod[];
}

/** Host memory mapped into the monitor: its address (for a KVM memory slot) and a view of it. */
export interface HostMemory {
  readonly address: bigint;
  readonly length: number;
  readonly buffer: ArrayBuffer;
}

/** Access to one region of an attached device. Offsets are into the region. */
export interface RegionAccess {
  readonly info: RegionInfo;
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
  /**
   * Maps [offset, offset + size) of the region (inside one of its mmap areas) into the monitor,
   * once; later calls return the same mapping. Undefined when the back-end cannot map it.
   */
  map(offset: bigint, size: bigint): HostMemory | undefined;
}

/**
 * Interrupt delivery, wired to eventfds (process-wide fd numbers) that KVM injects from
 * (irqfd), so no interrupt passes through the monitor's threads when the back-end can help it.
 */
export interface InterruptWiring {
  /**
   * INTx: the back-end signals `trigger` when the device asserts its line and keeps the line
   * masked until `resample` is signalled (KVM signals it when the guest's EOI clears the
   * virtual IOAPIC's Remote IRR), then unmasks it: a line still asserted triggers again.
   */
  connectIntx(trigger: number, resample: number): void;
  disconnectIntx(): void;
  /**
   * MSI or MSI-X: vector i signals `fds[i]` (undefined: that vector is not wired); an empty
   * list turns the mode off. Enabling one mode disables the other and INTx, as on a device.
   */
  setVectors(kind: 'msi' | 'msix', fds: ReadonlyArray<number | undefined>): void;
}

/** Makes guest memory reachable by the device's DMA, at guest-physical addresses (IOVA = GPA). */
export interface DmaControl {
  /** The device may DMA to [iova, iova + size), backed by host memory at `host`. */
  map(iova: bigint, size: bigint, host: bigint): void;
  unmap(iova: bigint, size: bigint): void;
}

/** A device driven from the vCPU thread. */
export interface AttachedDevice {
  readonly description: DeviceDescription;
  readonly config: ConfigBackend;
  region(index: number): RegionAccess | undefined;
  readonly interrupts: InterruptWiring;
  readonly dma: DmaControl;
  /** Puts the device in its power-on state with the best method it has; returns the method used. */
  reset(): ResetMethod;
  /** The expansion ROM image the guest sees at the ROM BAR (already checked), if any. */
  rom(): Uint8Array | undefined;
  /** Releases mappings, interrupts and DMA; the device stays with its host driver. */
  close(): void;
}

/**
 * What the main thread hands the vCPU thread so it can attach an opened device: plain data
 * (fd numbers are process-wide), one shape per back-end.
 */
export type BackendHandle =
  | {
      readonly kind: 'vfio';
      /** `0000:00:03.0`. */
      readonly address: string;
      readonly container: number;
      readonly group: number;
      readonly device: number;
    }
  | {
      readonly kind: 'uio';
      /** `0000:00:03.0`. */
      readonly address: string;
      /** sysfs `config`, open read-write. */
      readonly config: number;
      /** Bytes of config space sysfs serves (256, or 4096 for PCI Express). */
      readonly configLength: number;
      /** /dev/uioN: its reads count the interrupts uio_pci_generic masked. */
      readonly uio: number;
      /** sysfs `resourceN` of each implemented BAR, open read-write. */
      readonly resources: ReadonlyArray<{ readonly index: number; readonly fd: number }>;
      /** sysfs `reset`, when the host offers a reset method. */
      readonly reset: number | undefined;
    }
  | {
      readonly kind: 'vfio-user';
      /** The server's socket path, for messages. */
      readonly address: string;
      /** The connected socket, version already negotiated. */
      readonly socket: number;
      /** How long a reply may take, ms. */
      readonly timeoutMs: number;
    };
