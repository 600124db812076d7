/**
 * TEMPORARY: a stand-in for the PCI core (issue 2), which owns CF8/CFC decoding and the
 * composed bus. It holds only the two chipset functions SeaBIOS needs (00:00.0 i440FX host
 * bridge, 00:01.0 PIIX3 ISA bridge) so the monitor can boot firmware before the core lands.
 * It is removed when the chipset moves onto the core's emulated-device API.
 */
import type { AccessSize, PortIoHandler } from '../../hw/io.js';
import { allOnes } from '../../hw/io.js';
import { PAM_FIRST_REGISTER, PAM_REGISTER_COUNT } from '../../hw/chipset/pam.js';

interface StubFunction {
  readonly config: Uint8Array;
  readonly writable: Uint8Array;
  onWrite?: (offset: number, size: number) => void;
}

export interface ChipsetHooks {
  /** The PAM bytes changed: the monitor remaps 0xC0000-0xFFFFF. */
  pamChanged(registers: Uint8Array): void;
  /** A PIRQ route register (0..3) changed. */
  pirqChanged(pirq: number, value: number): void;
  /** Byte accesses at 0xCF9 belong to the reset control register. */
  readonly resetControl: PortIoHandler;
}

function makeFunction(vendor: number, device: number, classCode: number, headerType: number): StubFunction {
  const config = new Uint8Array(256);
  const v = new DataView(config.buffer);
  v.setUint16(0x00, vendor, true);
  v.setUint16(0x02, device, true);
  v.setUint16(0x04, 0x0007, true);
  v.setUint16(0x06, 0x0200, true);
  config[0x08] = 0x02;
  v.setUint32(0x08, (classCode << 8) | config[0x08]!, true);
  config[0x0e] = headerType;
  // Red Hat / "QEMU virtual machine": SeaBIOS enables fw_cfg only when it sees these on 00:00.0.
  v.setUint16(0x2c, 0x1af4, true);
  v.setUint16(0x2e, 0x1100, true);
  return { config, writable: new Uint8Array(256) };
}

export class InterimPciBus implements PortIoHandler {
  private address = 0;
  private readonly functions = new Map<number, StubFunction>();

  constructor(private readonly hooks: ChipsetHooks) {
    const host = makeFunction(0x8086, 0x1237, 0x060000, 0x00);
    host.writable.fill(0xff, PAM_FIRST_REGISTER, PAM_FIRST_REGISTER + PAM_REGISTER_COUNT);
    host.writable[0x72] = 0xff; // SMRAM
    host.config[0x72] = 0x02;
    host.onWrite = (off, size) => {
      if (off + size > PAM_FIRST_REGISTER && off < PAM_FIRST_REGISTER + PAM_REGISTER_COUNT) {
        hooks.pamChanged(host.config.slice(PAM_FIRST_REGISTER, PAM_FIRST_REGISTER + PAM_REGISTER_COUNT));
      }
    };
    this.functions.set(0x00, host);
    const isa = makeFunction(0x8086, 0x7000, 0x060100, 0x80);
    isa.config.fill(0x80, 0x60, 0x64);
    isa.writable.fill(0xff, 0x60, 0x64);
    isa.writable.fill(0xff, 0x69, 0x6a);
    isa.writable.fill(0xff, 0x70, 0x80);
    isa.onWrite = (off, size) => {
      for (let o = off; o < off + size; o++) if (o >= 0x60 && o < 0x64) hooks.pirqChanged(o - 0x60, isa.config[o]!);
    };
    this.functions.set(0x08, isa);
  }

  readPort(port: number, size: AccessSize): number {
    if (port === 0xcf8 && size === 4) return this.address;
    if (port === 0xcf9 && size === 1) return this.hooks.resetControl.readPort(port, size);
    if (port < 0xcfc) return allOnes(size);
    const fn = this.target(port);
    if (fn === undefined) return allOnes(size);
    const off = (this.address & 0xfc) + (port - 0xcfc);
    let v = 0;
    for (let i = 0; i < size; i++) v |= (fn.config[(off + i) & 0xff] ?? 0xff) << (8 * i);
    return v >>> 0;
  }

  writePort(port: number, size: AccessSize, value: number): void {
    if (port === 0xcf8 && size === 4) {
      this.address = value >>> 0;
      return;
    }
    if (port === 0xcf9 && size === 1) return this.hooks.resetControl.writePort(port, size, value);
    if (port < 0xcfc) return;
    const fn = this.target(port);
    if (fn === undefined) return;
    const off = (this.address & 0xfc) + (port - 0xcfc);
    for (let i = 0; i < size; i++) {
      const o = (off + i) & 0xff;
      const mask = fn.writable[o]!;
      fn.config[o] = (fn.config[o]! & ~mask) | (((value >>> (8 * i)) & 0xff) & mask);
    }
    fn.onWrite?.(off & 0xff, size);
  }

  private target(port: number): StubFunction | undefined {
    void port;
    if ((this.address & 0x8000_0000) === 0) return undefined;
    const bus = (this.address >>> 16) & 0xff;
    if (bus !== 0) return undefined;
    return this.functions.get((this.address >>> 8) & 0xff);
  }
}
