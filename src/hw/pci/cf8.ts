import { allOnes, type AccessSize, type PortIoHandler } from '../io.js';
import type { PciFunction } from './function.js';
import type { PciTopology } from './topology.js';

/** Configuration mechanism #1: the address register at 0xCF8 and the data window at 0xCFC-0xCFF. */
export const CF8_PORT = 0xcf8;
export const CFC_PORT = 0xcfc;
/** The handler claims 0xCF8-0xCFF. */
export const CF8_PORT_COUNT = 8;

const ENABLE = 0x8000_0000;

export interface ConfigMechanism1Options {
  /**
   * AMD's extended configuration space through CF8: address bits 27:24 carry register bits
   * 11:8, reaching 4 KiB per function without ECAM. Off by default (Intel chipsets ignore them).
   */
  readonly extendedRegister?: boolean;
  /**
   * Receives the accesses to 0xCF8-0xCFB that are not a 32-bit access at 0xCF8. On PIIX/ICH
   * chipsets those are ordinary I/O: 0xCF9 is the reset control register. Without it they read
   * as all ones and writes are dropped.
   */
  readonly legacy?: PortIoHandler;
}

/**
 * CF8/CFC decoding onto a composed topology's segment 0. Only a 32-bit write to 0xCF8 sets the
 * address (as on PIIX and ICH); data accesses of any width at 0xCFC-0xCFF reach register
 * (address & 0xFC) + (port - 0xCFC) of the addressed function; bytes of an access that fall
 * past 0xCFF are not config space and read as ones.
 */
export class ConfigMechanism1 implements PortIoHandler {
  private address = 0;
  private enabled = false;
  private key = 0;
  private reg = 0;
  private readonly addressMask: number;
  private readonly extended: boolean;
  private readonly legacy: PortIoHandler | undefined;
  private readonly route: ReadonlyArray<PciFunction | null>;

  constructor(topology: PciTopology, options: ConfigMechanism1Options = {}) {
    // The routing table is rebuilt in place when bridges change, so holding it is safe.
    this.route = topology.routeTable(0);
    this.extended = options.extendedRegister === true;
    this.addressMask = (this.extended ? 0x8fff_fffc : 0x80ff_fffc) >>> 0;
    this.legacy = options.legacy;
  }

  /** The address register as the guest would read it back. */
  get addressRegister(): number {
    return this.address;
  }

  readPort(port: number, size: AccessSize): number {
    if (port === CFC_PORT && size === 4) {
      // The hot path: an aligned dword read of the data window.
      if (!this.enabled) return 0xffff_ffff;
      const fn = this.route[this.key];
      return fn === null || fn === undefined ? 0xffff_ffff : fn.read32(this.reg);
    }
    if (port < CFC_PORT) {
      if (port === CF8_PORT && size === 4) return this.address;
      return this.legacy?.readPort(port, size) ?? allOnes(size);
    }
    return this.readData(port, size);
  }

  writePort(port: number, size: AccessSize, value: number): void {
    if (port < CFC_PORT) {
      if (port === CF8_PORT && size === 4) this.latch(value);
      else this.legacy?.writePort(port, size, value);
      return;
    }
    if (!this.enabled) return;
    const fn = this.route[this.key];
    if (fn === null || fn === undefined) return;
    const first = port - CFC_PORT;
    const n = Math.min(size, 4 - first);
    if (n === size) fn.write(this.reg + first, size, value);
    else for (let i = 0; i < n; i++) fn.write(this.reg + first + i, 1, (value >>> (8 * i)) & 0xff);
  }

  private latch(value: number): void {
    this.address = (value & this.addressMask) >>> 0;
    this.enabled = (this.address & ENABLE) !== 0;
    this.key = (this.address >>> 8) & 0xffff;
    this.reg = (this.address & 0xfc) | (this.extended ? (this.address >>> 16) & 0xf00 : 0);
  }

  private readData(port: number, size: AccessSize): number {
    const first = port - CFC_PORT;
    const n = Math.min(size, 4 - first);
    if (!this.enabled) return allOnes(size);
    const fn = this.route[this.key];
    if (fn === null || fn === undefined) return allOnes(size);
    if (n === size) return fn.read(this.reg + first, size);
    let v = allOnes(size);
    for (let i = 0; i < n; i++) v = (v & ~(0xff << (8 * i))) | (fn.read(this.reg + first + i, 1) << (8 * i));
    return v >>> 0;
  }
}
