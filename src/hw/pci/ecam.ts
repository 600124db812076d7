import { allOnes, type AccessSize, type MmioHandler } from '../io.js';
import { PciError } from './errors.js';
import type { PciFunction } from './function.js';
import type { PciTopology } from './topology.js';

export interface EcamOptions {
  /** Guest-physical base of the window (for the monitor's registration and the MCFG table); 1 MiB aligned. */
  readonly base: bigint;
  /** PCI segment the window serves (default 0). */
  readonly segment?: number;
  /** First and last bus decoded (default 0-255). Bus `busStart` sits at offset 0. */
  readonly busStart?: number;
  readonly busEnd?: number;
}

/**
 * ECAM (MMCONFIG): 4 KiB of config space per function at offset
 * (bus - busStart) << 20 | device << 15 | function << 12 | register. Accesses of 1, 2 or 4
 * bytes at any alignment; one that runs into the next function's space is split per byte, and
 * bytes outside the window read as ones.
 */
export class EcamWindow implements MmioHandler {
  readonly base: bigint;
  readonly segment: number;
  readonly busStart: number;
  readonly busEnd: number;
  /** Bytes the window decodes: one MiB per bus. */
  readonly size: number;
  private readonly route: ReadonlyArray<PciFunction | null>;

  constructor(topology: PciTopology, options: EcamOptions) {
    const busStart = options.busStart ?? 0;
    const busEnd = options.busEnd ?? 255;
    if (!Number.isInteger(busStart) || !Number.isInteger(busEnd) || busStart < 0 || busEnd > 255 || busStart > busEnd) {
      throw new PciError(`ECAM bus range ${busStart}-${busEnd}: must be within 0-255, start <= end`);
    }
    if (options.base < 0n || options.base % (1n << 20n) !== 0n) throw new PciError(`ECAM base 0x${options.base.toString(16)}: must be 1 MiB aligned`);
    this.base = options.base;
    this.segment = options.segment ?? 0;
    this.busStart = busStart;
    this.busEnd = busEnd;
    this.size = (busEnd - busStart + 1) * 0x10_0000;
    this.route = topology.routeTable(this.segment);
  }

  readMmio(offset: number, size: AccessSize): number {
    if (offset >= 0 && offset + size <= this.size && (offset & 0xfff) + size <= 0x1000) {
      const fn = this.route[((this.busStart + (offset >>> 20)) << 8) | ((offset >>> 12) & 0xff)];
      return fn === null || fn === undefined ? allOnes(size) : fn.read(offset & 0xfff, size);
    }
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.readByte(offset + i);
    return v >>> 0;
  }

  writeMmio(offset: number, size: AccessSize, value: number): void {
    if (offset >= 0 && offset + size <= this.size && (offset & 0xfff) + size <= 0x1000) {
      this.route[((this.busStart + (offset >>> 20)) << 8) | ((offset >>> 12) & 0xff)]?.write(offset & 0xfff, size, value);
      return;
    }
    for (let i = 0; i < size; i++) this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
  }

  private readByte(offset: number): number {
    if (offset < 0 || offset >= this.size) return 0xff;
    const fn = this.route[((this.busStart + (offset >>> 20)) << 8) | ((offset >>> 12) & 0xff)];
    return fn === null || fn === undefined ? 0xff : fn.read(offset & 0xfff, 1);
  }

  private writeByte(offset: number, value: number): void {
    if (offset < 0 || offset >= this.size) return;
    this.route[((this.busStart + (offset >>> 20)) << 8) | ((offset >>> 12) & 0xff)]?.write(offset & 0xfff, 1, value);
  }
}
