/**
 * A host chipset's GPE block that the monitor does not model (the ICH9's GPE0 in a P2V or twin
 * guest that keeps the host's FADT and DSDT): its status half reads 0, so no event ever fires,
 * and its enable half keeps what the guest writes. Left unclaimed, the ports would read all
 * ones: every GPE would look raised, and the host's own handlers (QEMU's _E01 PCI hot-plug
 * scan among them) would run against registers nobody serves, ejecting devices that are there.
 */
import type { AccessSize, PortIoHandler } from '../io.js';

export class QuietGpeBlock implements PortIoHandler {
  private readonly enable: Uint8Array;

  /** `length` is the FADT's GPEx_BLK_LEN: status bytes, then as many enable bytes. */
  constructor(
    readonly base: number,
    readonly length: number,
  ) {
    this.enable = new Uint8Array(length >> 1);
  }

  readPort(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(port - this.base + i) << (8 * i);
    return v >>> 0;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const off = port - this.base + i - this.enable.length;
      // Status bytes are write-1-to-clear, and nothing is ever set: only enables are kept.
      if (off >= 0 && off < this.enable.length) this.enable[off] = (value >>> (8 * i)) & 0xff;
    }
  }

  private readByte(off: number): number {
    const e = off - this.enable.length;
    return e >= 0 && e < this.enable.length ? this.enable[e]! : 0;
  }
}
