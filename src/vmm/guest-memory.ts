import type { DmaMemory } from '../hw/chipset/fw-cfg.js';
import { decodePam, type PamSegment } from '../hw/chipset/pam.js';
import type { AccessSize, MmioHandler } from '../hw/io.js';
import type { Mapping } from '../native/sys.js';
import { HvmptError } from '../errors.js';
import type { Vm } from './kvm/vm.js';

/** The firmware image cannot be placed (wrong size). */
export class FirmwareImageError extends HvmptError {}

const FOUR_GIB = 0x1_0000_0000n;
const LEGACY_VGA_BASE = 0xa0000;
const PAM_BASE = 0xc0000;
const HIGH_BASE = 0x100000;
const ISA_BIOS_MAX = 0x20000;

export interface RamLayout {
  /** RAM from 0 up to the PCI hole, in bytes (a multiple of 4 KiB, at least 1 MiB). */
  readonly below4G: number;
  /** RAM from 4 GiB up. */
  readonly above4G: number;
}

/**
 * Guest RAM and firmware as KVM memory slots: RAM below the legacy VGA window, the PAM-controlled
 * 0xC0000-0xFFFFF (RAM or the BIOS ROM's alias, per the host bridge's registers), RAM from 1 MiB
 * to the PCI hole and above 4 GiB, and the BIOS image read-only just below 4 GiB. It is also the
 * DMA view devices get: only RAM is reachable, never ROM, MMIO or anything of the host's.
 */
export class GuestMemory implements DmaMemory {
  readonly ram: Mapping;
  readonly ramBytes: Uint8Array;
  readonly rom: Mapping;
  private readonly romBytes: Uint8Array;
  private pam: PamSegment[];
  private pamSlots: number[] = [];
  private high: Mapping | undefined;

  constructor(
    private readonly vm: Vm,
    readonly layout: RamLayout,
    firmware: Uint8Array,
    firmwareName: string,
  ) {
    if (firmware.length === 0 || firmware.length % 0x10000 !== 0 || firmware.length > 16 << 20) {
      throw new FirmwareImageError(`${firmware.length} bytes: a BIOS image must be a non-empty multiple of 64 KiB, at most 16 MiB`, { input: firmwareName });
    }
    if (layout.below4G < HIGH_BASE || layout.below4G % 4096 !== 0) {
      throw new FirmwareImageError(`RAM below 4 GiB must be a multiple of 4 KiB and at least 1 MiB (got ${layout.below4G})`, { input: 'memory' });
    }
    this.ram = vm.allocate(layout.below4G);
    this.ramBytes = new Uint8Array(this.ram.buffer);
    this.rom = vm.allocate(firmware.length);
    this.romBytes = new Uint8Array(this.rom.buffer);
    this.romBytes.set(firmware);
    this.slot(0n, LEGACY_VGA_BASE, this.ram.address, false);
    if (layout.below4G > HIGH_BASE) this.slot(BigInt(HIGH_BASE), layout.below4G - HIGH_BASE, this.ram.address + BigInt(HIGH_BASE), false);
    if (layout.above4G > 0) {
      this.high = vm.allocate(layout.above4G);
      this.slot(FOUR_GIB, layout.above4G, this.high.address, false);
    }
    this.slot(FOUR_GIB - BigInt(firmware.length), firmware.length, this.rom.address, true);
    // Reset state of the PAM: everything from the PCI side, as on real hardware.
    this.pam = decodePam(new Uint8Array(7));
    this.applyPam();
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

  private applyPam(): void {
    for (const s of this.pamSlots) this.vm.removeMemorySlot(s);
    this.pamSlots = [];
    const isaBiosSize = Math.min(this.romBytes.length, ISA_BIOS_MAX);
    const isaBiosBase = 0x100000 - isaBiosSize;
    // Coalesce neighbouring segments that map the same way onto contiguous backing.
    let run: { base: number; size: number; source: 'ram' | 'rom'; readonly: boolean } | undefined;
    const flush = (): void => {
      if (run === undefined) return;
      const host = run.source === 'ram' ? this.ram.address + BigInt(run.base) : this.rom.address + BigInt(this.romBytes.length - isaBiosSize + (run.base - isaBiosBase));
      this.pamSlots.push(this.slot(BigInt(run.base), run.size, host, run.readonly));
      run = undefined;
    };
    for (const seg of this.pam) {
      let want: { source: 'ram' | 'rom'; readonly: boolean } | undefined;
      if (seg.readRam) want = { source: 'ram', readonly: !seg.writeRam };
      else if (seg.base >= isaBiosBase) want = { source: 'rom', readonly: true };
      if (want === undefined) {
        flush();
        continue;
      }
      if (run !== undefined && run.source === want.source && run.readonly === want.readonly && run.base + run.size === seg.base) run.size += seg.size;
      else {
        flush();
        run = { base: seg.base, size: seg.size, ...want };
      }
    }
    flush();
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
        if (seg?.readRam) return readLe(this.ramBytes, addr, size);
        return size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff;
      },
      writeMmio: (offset: number, size: AccessSize, value: number): void => {
        const addr = PAM_BASE + offset;
        if (this.segment(addr)?.writeRam) writeLe(this.ramBytes, addr, size, value);
      },
    };
  }

  private segment(addr: number): PamSegment | undefined {
    return this.pam.find((s) => addr >= s.base && addr < s.base + s.size);
  }

  /** RAM the guest can reach by DMA: below the VGA hole, PAM segments that are writable RAM, 1 MiB up, and above 4 GiB. */
  covers(address: bigint, length: number): boolean {
    if (length < 0 || address < 0n) return false;
    const end = address + BigInt(length);
    if (end <= BigInt(LEGACY_VGA_BASE)) return true;
    if (address >= BigInt(HIGH_BASE) && end <= BigInt(this.layout.below4G)) return true;
    if (address >= FOUR_GIB && end <= FOUR_GIB + BigInt(this.layout.above4G)) return true;
    if (address >= BigInt(PAM_BASE) && end <= BigInt(HIGH_BASE)) {
      for (let a = Number(address); a < Number(end); a += 0x1000) {
        const seg = this.segment(a);
        if (seg === undefined || !seg.readRam || !seg.writeRam) return false;
      }
      const last = this.segment(Number(end) - 1);
      return last !== undefined && last.readRam && last.writeRam;
    }
    return false;
  }

  private view(address: bigint, length: number): Uint8Array | undefined {
    if (!this.covers(address, length)) return undefined;
    if (address >= FOUR_GIB) {
      const off = Number(address - FOUR_GIB);
      return new Uint8Array(this.high!.buffer, off, length);
    }
    return this.ramBytes.subarray(Number(address), Number(address) + length);
  }

  read(address: bigint, length: number): Uint8Array | undefined {
    const v = this.view(address, length);
    return v === undefined ? undefined : Uint8Array.from(v);
  }

  write(address: bigint, data: Uint8Array): boolean {
    const v = this.view(address, data.length);
    if (v === undefined) return false;
    v.set(data);
    return true;
  }
}

function readLe(bytes: Uint8Array, addr: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) v |= bytes[addr + i]! << (8 * i);
  return v >>> 0;
}

function writeLe(bytes: Uint8Array, addr: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) bytes[addr + i] = (value >>> (8 * i)) & 0xff;
}
