import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccessSize, PortIoHandler } from '../../src/hw/io.js';
import { ConfigMechanism1 } from '../../src/hw/pci/cf8.js';
import { EcamWindow } from '../../src/hw/pci/ecam.js';
import { buildEmulatedFunction, fakeBridgeSpec } from '../../src/hw/pci/emulated.js';
import type { PciFunction } from '../../src/hw/pci/function.js';
import { PciTopology } from '../../src/hw/pci/topology.js';

function dev(id: string, deviceId: number): PciFunction {
  return buildEmulatedFunction({ id, vendorId: 0x1af4, deviceId, classCode: 0xff0000, interruptPin: 1 }).fn;
}

/** Root bus 0: 00.0 host, 01.0 bridge A (02.0 and 02.1 behind it, and bridge B at 03.0 with 00.0 behind), 04.1 alone. */
function machine() {
  const t = new PciTopology();
  const root = t.addRootBus(0, 0);
  const host = dev('host', 0x0001);
  const a = buildEmulatedFunction(fakeBridgeSpec({ id: 'A' })).fn;
  const b = buildEmulatedFunction(fakeBridgeSpec({ id: 'B' })).fn;
  const d20 = dev('d20', 0x0020);
  const d21 = dev('d21', 0x0021);
  const deep = dev('deep', 0x0030);
  const lone = dev('lone', 0x0041);
  t.attach(host, root, 0, 0);
  t.attach(a, root, 1, 0);
  t.attach(d20, t.secondaryBus(a), 2, 0);
  t.attach(d21, t.secondaryBus(a), 2, 1);
  t.attach(b, t.secondaryBus(a), 3, 0);
  t.attach(deep, t.secondaryBus(b), 0, 0);
  t.attach(lone, root, 4, 1);
  t.updateMultifunction();
  return { t, a, b, d20, d21, deep, lone };
}

const addr = (bus: number, device: number, fn: number, reg: number): number => (0x8000_0000 | (bus << 16) | (device << 11) | (fn << 8) | reg) >>> 0;

function cfgRead(cf8: ConfigMechanism1, bus: number, device: number, fn: number, reg: number, size: AccessSize = 4): number {
  cf8.writePort(0xcf8, 4, addr(bus, device, fn, reg & ~3));
  return cf8.readPort(0xcfc + (reg & 3), size);
}

function cfgWrite(cf8: ConfigMechanism1, bus: number, device: number, fn: number, reg: number, size: AccessSize, value: number): void {
  cf8.writePort(0xcf8, 4, addr(bus, device, fn, reg & ~3));
  cf8.writePort(0xcfc + (reg & 3), size, value);
}

test('devices behind a bridge appear only once firmware gives the bridge bus numbers, and only within its range', () => {
  const { t } = machine();
  const cf8 = new ConfigMechanism1(t);
  assert.equal(cfgRead(cf8, 0, 1, 0, 0), 0x0001_1b36, 'the fake bridge answers on the root bus');
  assert.equal(cfgRead(cf8, 0, 0, 0, 0), 0x0001_1af4);
  assert.equal(cfgRead(cf8, 1, 2, 0, 0), 0xffff_ffff, 'secondary bus 0 after reset: nothing behind it is reachable');
  // Primary 0, secondary 1, subordinate 1.
  cfgWrite(cf8, 0, 1, 0, 0x18, 4, 0x0001_0100);
  assert.equal(cfgRead(cf8, 1, 2, 0, 0), 0x0020_1af4);
  assert.equal(cfgRead(cf8, 1, 2, 1, 0), 0x0021_1af4);
  assert.equal(cfgRead(cf8, 1, 3, 0, 0), 0x0001_1b36, 'bridge B on bus 1');
  // B: secondary 2, but A's range ends at 1: type-1 cycles for bus 2 never leave A's range.
  cfgWrite(cf8, 1, 3, 0, 0x18, 4, 0x0002_0201);
  assert.equal(cfgRead(cf8, 2, 0, 0, 0), 0xffff_ffff);
  cfgWrite(cf8, 0, 1, 0, 0x1a, 1, 0x02);
  assert.equal(cfgRead(cf8, 2, 0, 0, 0), 0x0030_1af4, 'reachable once A forwards bus 2');
  // Renumber A to bus 5-6: everything behind moves.
  cfgWrite(cf8, 0, 1, 0, 0x18, 4, 0x0006_0500);
  assert.equal(cfgRead(cf8, 1, 2, 0, 0), 0xffff_ffff);
  assert.equal(cfgRead(cf8, 5, 2, 0, 0), 0x0020_1af4);
  assert.equal(cfgRead(cf8, 2, 0, 0, 0), 0xffff_ffff, 'B still says bus 2, outside A');
  cfgWrite(cf8, 5, 3, 0, 0x19, 1, 0x06);
  cfgWrite(cf8, 5, 3, 0, 0x1a, 1, 0x06);
  assert.equal(cfgRead(cf8, 6, 0, 0, 0), 0x0030_1af4);
  assert.deepEqual(
    t.reachable().map((r) => `${r.bdf.bus}:${r.bdf.device}.${r.bdf.fn} ${r.fn.id}`),
    ['0:0.0 host', '0:1.0 A', '5:2.0 d20', '5:2.1 d21', '5:3.0 B', '6:0.0 deep'],
  );
});

test('function 0 rules the slot: a lone function 1 is absent; hiding function 0 hides its siblings', () => {
  const { t, d20 } = machine();
  const cf8 = new ConfigMechanism1(t);
  assert.equal(cfgRead(cf8, 0, 4, 1, 0), 0xffff_ffff, '04.1 without 04.0');
  cfgWrite(cf8, 0, 1, 0, 0x18, 4, 0x0001_0100);
  assert.equal(cfgRead(cf8, 0, 0, 0, 0x0c) >>> 16 & 0x80, 0, 'host bridge is single-function');
  assert.equal(cfgRead(cf8, 1, 2, 0, 0x0e, 1) & 0x80, 0x80, 'function 0 of a slot with function 1 has the multi-function bit');
  t.setHidden(d20, true);
  assert.equal(cfgRead(cf8, 1, 2, 0, 0), 0xffff_ffff);
  assert.equal(cfgRead(cf8, 1, 2, 1, 0), 0xffff_ffff, '02.1 goes with 02.0');
});

test('CF8/CFC decoding: enable bit, address read-back, byte and word lanes, 0xCF9 as legacy I/O', () => {
  const { t } = machine();
  const legacy: Array<[string, number, number, number]> = [];
  const cf9: PortIoHandler = {
    readPort: (port, size) => {
      legacy.push(['r', port, size, 0]);
      return 0x5a;
    },
    writePort: (port, size, value) => {
      legacy.push(['w', port, size, value]);
    },
  };
  const cf8 = new ConfigMechanism1(t, { legacy: cf9 });
  cf8.writePort(0xcf8, 4, 0x7fff_fffc & addr(0, 0, 0, 0));
  assert.equal(cf8.readPort(0xcfc, 4), 0xffff_ffff, 'enable bit clear: no config cycle');
  cf8.writePort(0xcf8, 4, 0xffff_ffff);
  assert.equal(cf8.readPort(0xcf8, 4), 0x80ff_fffc, 'reserved bits 30:24 and 1:0 read 0');
  cf8.writePort(0xcf8, 4, addr(0, 0, 0, 0));
  assert.equal(cf8.readPort(0xcfc, 2), 0x1af4);
  assert.equal(cf8.readPort(0xcfe, 2), 0x0001);
  assert.equal(cf8.readPort(0xcfd, 1), 0x1a);
  assert.equal(cf8.readPort(0xcfd, 2), 0x011a, 'word at 0xCFD: bytes 1-2');
  assert.equal(cf8.readPort(0xcfe, 4), 0xffff_0001, 'bytes past 0xCFF are not config space');
  cf8.writePort(0xcf9, 1, 0x06);
  assert.equal(cf8.readPort(0xcf9, 1), 0x5a);
  cf8.writePort(0xcf8, 2, 0x1234);
  assert.deepEqual(legacy, [
    ['w', 0xcf9, 1, 0x06],
    ['r', 0xcf9, 1, 0],
    ['w', 0xcf8, 2, 0x1234],
  ]);
  assert.equal(cf8.readPort(0xcf8, 4), addr(0, 0, 0, 0), 'a narrow write to 0xCF8 does not change the address');
  cfgWrite(cf8, 0, 0, 0, 0x3c, 1, 0x0b);
  assert.equal(cfgRead(cf8, 0, 0, 0, 0x3c, 1), 0x0b, 'Interrupt Line is writable');
  cfgWrite(cf8, 0, 0, 0, 0x3d, 1, 0x04);
  assert.equal(cfgRead(cf8, 0, 0, 0, 0x3d, 1), 0x01, 'Interrupt Pin is not');
});

test('AMD extended register bits reach 4 KiB through CF8 only when enabled', () => {
  const t = new PciTopology();
  const fn = buildEmulatedFunction({ id: 'x', vendorId: 1, deviceId: 2, classCode: 0, extendedConfig: true, registers: [{ offset: 0x140, size: 4, value: 0xdeadbeef }] }).fn;
  t.attach(fn, t.addRootBus(0, 0), 0, 0);
  const plain = new ConfigMechanism1(t);
  const amd = new ConfigMechanism1(t, { extendedRegister: true });
  const a = (addr(0, 0, 0, 0x40) | (0x1 << 24)) >>> 0;
  plain.writePort(0xcf8, 4, a);
  amd.writePort(0xcf8, 4, a);
  assert.equal(plain.readPort(0xcfc, 4), 0, 'Intel decoding: register 0x40');
  assert.equal(amd.readPort(0xcfc, 4), 0xdeadbeef, 'AMD decoding: register 0x140');
});

test('ECAM: configurable bus range, any alignment, splits at function boundaries, ones outside', () => {
  const { t } = machine();
  const ecam = new EcamWindow(t, { base: 0xe000_0000n, busStart: 0, busEnd: 7 });
  assert.equal(ecam.size, 8 << 20);
  ecam.writeMmio((1 << 15) | 0x18, 4, 0x0001_0100);
  assert.equal(ecam.readMmio((1 << 20) | (2 << 15) | (1 << 12), 4), 0x0021_1af4);
  assert.equal(ecam.readMmio(0x1, 2), 0x011a, 'unaligned word inside a function');
  assert.equal(ecam.readMmio(0xfe, 4), 0xffff_0000, 'dword across 0xff/0x100: past a 256-byte function reads ones');
  assert.equal(ecam.readMmio(8 << 20, 4), 0xffff_ffff, 'past the window');
  const offset = new EcamWindow(t, { base: 0xe000_0000n, busStart: 1, busEnd: 1 });
  assert.equal(offset.readMmio((2 << 15) | 0, 4), 0x0020_1af4, 'bus 1 at offset 0 of a window starting at bus 1');
  assert.throws(() => new EcamWindow(t, { base: 0xe000_1000n }), /1 MiB aligned/);
  // A dword straddling the end of a 4 KiB function and the start of an absent one.
  const x = buildEmulatedFunction({ id: 'x', vendorId: 1, deviceId: 2, classCode: 0, extendedConfig: true, registers: [{ offset: 0xffc, size: 4, value: 0x11223344 }] }).fn;
  t.attach(x, t.addRootBus(0, 0), 6, 0);
  const split = ecam.readMmio((6 << 15) | 0xffe, 4);
  assert.equal(split, 0xffff_1122, 'bytes of 06.0, then ones from the absent 06.1');
  ecam.writeMmio((6 << 15) | 0xffe, 4, 0);
  assert.equal(x.read(0xffc, 4), 0x11223344, 'the register is read-only');
  assert.throws(() => new EcamWindow(t, { base: 0n, busStart: 9, busEnd: 3 }), /bus range/);
});
