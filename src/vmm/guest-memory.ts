import type { DmaMemory } from '../hw/chipset/fw-cfg.js';
import { decodePam, type PamSegment } from '../hw/chipset/pam.js';
import type { AccessSize, MmioHandler } from '../hw/io.js';
import { MAP_SHARED, O_CLOEXEC, O_RDWR, PROT_READ, PROT_WRITE, type Mapping } from '../native/sys.js';
import type { ProtectionMap } from '../hw/mem/protection.js';
import { HvmptError } from '../errors.js';
import type { Vm } from './kvm/vm.js';
import { readLe, writeLe } from '../util/le-bytes.js';
import { ramTopBelow4G, type RamLayout, type RamRange } from '../hw/mem/ram-layout.js';


/** The firmware image cannot be placed (wrong size). */
export class FirmwareImageError extends HvmptError {}

/** Identity RAM the protection map does not allow, or /dev/mem would not map. */
export class IdentityRamError extends HvmptError {}

/**
 * RAM at the host's own addresses (an identity layout): the host-physical pages behind
 * [start, end) are mapped from /dev/mem, so guest frame == machine frame and a device's DMA
 * lands where the guest put its buffers. Each range must be allowed by the protection map.
 */
export interface IdentityBacking {
  readonly ranges: readonly RamRange[];
  readonly protection: ProtectionMap | undefined;
  /** /dev/mem, or a stand-in in tests. */
  readonly device?: string;
}

const FOUR_GIB = 0x1_0000_0000n;
const ISA_HOLE_START = 0xa0000n;
const PAM_BASE = 0xc0000;
const PAM_SIZE = 0x40000;
const HIGH_BASE = 0x100000n;
/** A host mapping is seen through one ArrayBuffer, and Node's stop short of 4 GiB. */
const MAX_RAM_PIECE = 0x1_0000_0000n;
const ISA_BIOS_MAX = 0x20000;

interface PamRun {
  readonly base: number;
  size: number;
  readonly source: 'ram' | 'rom';
  readonly readonly: boolean;
  slot: number;
}

interface Backed {
  readonly start: bigint;
  readonly end: bigint;
  readonly mapping: Mapping;
}

/**
 * Guest RAM and firmware as KVM memory slots: each RAM range (less the legacy VGA/ROM window
 * 640 KiB-1 MiB) backed by its own anonymous memory; 0xC0000-0xFFFFF switched by the host
 * bridge's PAM registers between shadow RAM and the BIOS ROM's alias; and the BIOS image
 * read-only just below 4 GiB. It is also the DMA view devices get: only RAM is reachable,
 * never ROM, MMIO or anything of the host's.
 */
export class GuestMemory implements DmaMemory {
  private readonly backed: Backed[] = [];
  /** Shadow RAM behind the PAM window; always present, as on an i440FX. */
  private readonly shadow: Mapping;
  private readonly shadowBytes: Uint8Array;
  readonly rom: Mapping;
  private readonly romBytes: Uint8Array;
  private pam: PamSegment[];
  private pamRuns: PamRun[] = [];

  constructor(
    private readonly vm: Vm,
    readonly layout: RamLayout,
    firmware: Uint8Array,
    firmwareName: string,
    identity?: IdentityBacking,
  ) {
    if (firmware.length === 0 || firmware.length % 0x10000 !== 0 || firmware.length > 16 << 20) {
      throw new FirmwareImageError(`${firmware.length} bytes: a BIOS image must be a non-empty multiple of 64 KiB, at most 16 MiB`, { input: firmwareName });
    }
    const romBase = FOUR_GIB - BigInt(firmware.length);
    let prevEnd = 0n;
    layout.ranges.forEach((r, i) => {
      const at = `memory range ${i} [0x${r.start.toString(16)}, 0x${r.end.toString(16)})`;
      if (r.start % 4096n !== 0n || r.end % 4096n !== 0n || r.end <= r.start) throw new FirmwareImageError('RAM ranges must be non-empty and page aligned', { input: 'memory', at });
      if (r.start < prevEnd) throw new FirmwareImageError('RAM ranges must be sorted and disjoint', { input: 'memory', at });
      if (r.start < FOUR_GIB && r.end > romBase) throw new FirmwareImageError(`RAM overlaps the BIOS ROM at 0x${romBase.toString(16)}`, { input: 'memory', at });
      if (r.end - r.start >= MAX_RAM_PIECE) throw new FirmwareImageError('the monitor maps each RAM range as one buffer, which holds less than 4 GiB: give the guest less memory', { input: 'memory', at });
      prevEnd = r.end;
    });
    this.shadow = vm.allocate(PAM_SIZE);
    this.shadowBytes = new Uint8Array(this.shadow.buffer);
    for (const r of layout.ranges) {
      // The legacy window is never RAM: split a range that spans it.
      const pieces: RamRange[] = [];
      if (r.start < ISA_HOLE_START) pieces.push({ start: r.start, end: r.end < ISA_HOLE_START ? r.end : ISA_HOLE_START });
      if (r.end > HIGH_BASE) pieces.push({ start: r.start > HIGH_BASE ? r.start : HIGH_BASE, end: r.end });
      for (const p of pieces) {
        const inIdentity = identity?.ranges.some((r) => p.start < r.end && r.start < p.end) ?? false;
        const mapping = inIdentity ? this.identityRam(p, identity!) : vm.allocateRam(Number(p.end - p.start), p.start);
        this.backed.push({ start: p.start, end: p.end, mapping });
        this.slot(p.start, Number(p.end - p.start), mapping.address, false);
      }
    }
    this.rom = vm.allocate(firmware.length);
    this.romBytes = new Uint8Array(this.rom.buffer);
    this.romBytes.set(firmware);
    this.slot(romBase, firmware.length, this.rom.address, true);
    // Reset state of the PAM: everything from the PCI side, as on real hardware.
    this.pam = decodePam(new Uint8Array(7));
    this.applyPam();
  }

  /**
   * Maps host-physical [p.start, p.end) from /dev/mem, shared (the machine's own pages, not a
   * copy), after the protection map allowed it; zeroed, so a guest never reads what the last one
   * left there.
   */
  private identityRam(p: RamRange, identity: IdentityBacking): Mapping {
    const at = `[0x${p.start.toString(16)}, 0x${p.end.toString(16)})`;
    const inside = identity.ranges.some((r) => p.start >= r.start && p.end <= r.end);
    if (!inside) throw new IdentityRamError(`RAM range ${at} is only partly identity RAM`, { input: 'memory', at });
    if (identity.protection !== undefined) {
      const d = identity.protection.mayMap(p, 'write');
      if (!d.allowed) throw new IdentityRamError(`the protection map refuses identity RAM ${at}: ${d.reason}`, { input: 'memory', at });
    }
    const device = identity.device ?? '/dev/mem';
    const sys = this.vm.sys;
    const fd = sys.open(device, O_RDWR | O_CLOEXEC);
    try {
      const m = sys.mmap(Number(p.end - p.start), PROT_READ | PROT_WRITE, MAP_SHARED, fd, Number(p.start));
      new Uint8Array(m.buffer).fill(0);
      return m;
    } finally {
      sys.close(fd);
    }
  }

  private slot(guest: bigint, size: number, host: bigint, readonly: boolean): number {
    const slot = this.vm.freeSlot();
    this.vm.setMemorySlot({ slot, guestAddress: guest, size, hostAddress: host, readonly });
    return slot;
  }

  /** The host bridge's PAM registers changed. */
  setPam(registers: Uint8Array): void {
    this.pam = decodePam(registers);
    this.applyPam();
  }

  /**
   * Maps the PAM window as the registers say. Only the slots that change are touched: each
   * KVM memory-slot update is costly under nested virtualization, and firmware rewrites the
   * PAM bytes many times while shadowing itself and option ROMs.
   */
  private applyPam(): void {
    const isaBiosSize = Math.min(this.romBytes.length, ISA_BIOS_MAX);
    const isaBiosBase = 0x100000 - isaBiosSize;
    // Coalesce neighbouring segments that map the same way onto contiguous backing.
    const runs: PamRun[] = [];
    let run: PamRun | undefined;
    for (const seg of this.pam) {
      let want: { source: 'ram' | 'rom'; readonly: boolean } | undefined;
      if (seg.readRam) want = { source: 'ram', readonly: !seg.writeRam };
      else if (seg.base >= isaBiosBase) want = { source: 'rom', readonly: true };
      if (want !== undefined && run !== undefined && run.source === want.source && run.readonly === want.readonly && run.base + run.size === seg.base) {
        run.size += seg.size;
        continue;
      }
      if (run !== undefined) runs.push(run);
      run = want === undefined ? undefined : { base: seg.base, size: seg.size, ...want, slot: -1 };
    }
    if (run !== undefined) runs.push(run);
    const same = (a: PamRun, b: PamRun): boolean => a.base === b.base && a.size === b.size && a.source === b.source && a.readonly === b.readonly;
    // Remove before adding: KVM refuses overlapping slots.
    const kept: PamRun[] = [];
    for (const old of this.pamRuns) {
      if (runs.some((r) => same(r, old))) kept.push(old);
      else this.vm.removeMemorySlot(old.slot);
    }
    for (const r of runs) {
      const existing = kept.find((k) => same(k, r));
      if (existing !== undefined) {
        r.slot = existing.slot;
        continue;
      }
      const host = r.source === 'ram' ? this.shadow.address + BigInt(r.base - PAM_BASE) : this.rom.address + BigInt(this.romBytes.length - isaBiosSize + (r.base - isaBiosBase));
      r.slot = this.slot(BigInt(r.base), r.size, host, r.readonly);
    }
    this.pamRuns = runs;
  }

  /**
   * MMIO exits in 0xC0000-0xFFFFF: writes to read-only PAM segments (RAM if the segment takes
   * writes, dropped otherwise) and reads of segments with nothing behind them.
   */
  pamHandler(): MmioHandler {
    return {
      readMmio: (offset: number, size: AccessSize): number => {
        const addr = PAM_BASE + offset;
        const seg = this.segment(addr);
        if (seg?.readRam) return readLe(this.shadowBytes, offset, size);
        return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
      },
      writeMmio: (offset: number, size: AccessSize, value: number): void => {
        const addr = PAM_BASE + offset;
        if (this.segment(addr)?.writeRam) writeLe(this.shadowBytes, offset, size, value);
      },
    };
  }

  private segment(addr: number): PamSegment | undefined {
    return this.pam.find((s) => addr >= s.base && addr < s.base + s.size);
  }

  /** RAM the guest can reach by DMA: its RAM ranges (less the legacy window) and PAM segments that are writable RAM. */
  /** Guest RAM and the host memory behind it (what a device's DMA is given). */
  ramRanges(): Array<{ start: bigint; end: bigint; host: bigint }> {
    return this.backed.map((b) => ({ start: b.start, end: b.end, host: b.mapping.address }));
  }

  covers(address: bigint, length: number): boolean {
    return this.locate(address, length) !== undefined;
  }

  private locate(address: bigint, length: number): Uint8Array | undefined {
    if (length < 0 || address < 0n) return undefined;
    const end = address + BigInt(length);
    for (const b of this.backed) {
      if (address >= b.start && end <= b.end) {
        const off = Number(address - b.start);
        return new Uint8Array(b.mapping.buffer, off, length);
      }
    }
    if (address >= BigInt(PAM_BASE) && end <= HIGH_BASE) {
      for (let a = Number(address) & ~0xfff; a < Number(end); a += 0x1000) {
        const seg = this.segment(a);
        if (seg === undefined || !seg.readRam || !seg.writeRam) return undefined;
      }
      return this.shadowBytes.subarray(Number(address) - PAM_BASE, Number(end) - PAM_BASE);
    }
    return undefined;
  }

  /**
   * What the guest's own reads would see in RAM: like `read`, but read-only shadow segments
   * count (firmware leaves its F-segment, where the RSDP lives, read-only). A copy; undefined
   * when any byte is not RAM.
   */
  peek(address: bigint, length: number): Uint8Array | undefined {
    const v = this.locate(address, length);
    if (v !== undefined) return Uint8Array.from(v);
    const end = address + BigInt(length);
    if (length < 0 || address < BigInt(PAM_BASE) || end > HIGH_BASE) return undefined;
    for (let a = Number(address) & ~0xfff; a < Number(end); a += 0x1000) {
      if (this.segment(a)?.readRam !== true) return undefined;
    }
    return this.shadowBytes.slice(Number(address) - PAM_BASE, Number(end) - PAM_BASE);
  }

  read(address: bigint, length: number): Uint8Array | undefined {
    const v = this.locate(address, length);
    return v === undefined ? undefined : Uint8Array.from(v);
  }

  write(address: bigint, data: Uint8Array): boolean {
    const v = this.locate(address, data.length);
    if (v === undefined) return false;
    v.set(data);
    return true;
  }
}
