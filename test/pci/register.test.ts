import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PciFunction } from '../../src/hw/pci/function.js';
import { buildRealFunction } from '../../src/hw/pci/real.js';
import { buildEmulatedFunction } from '../../src/hw/pci/emulated.js';
import { RecordingBackend, configBytes, endpointBytes } from './helpers.js';

test('emulated, pass-through and mixed bits compose per bit', () => {
  const dev = new RecordingBackend(configBytes(256, [[0x40, 4, 0xaabbccdd]]));
  const fn = new PciFunction({ id: 't', kind: 'real', backend: dev });
  // Low byte emulated (value 0x11), the rest from the device.
  fn.declare({ offset: 0x40, size: 4, emulated: 0x0000_00ff, writable: 0, value: 0x11 });
  assert.equal(fn.read(0x40, 4), 0xaabbcc11);
  assert.equal(fn.read(0x41, 2), 0xbbcc);
  assert.equal(fn.read(0x40, 1), 0x11);
  assert.equal(fn.read(0x43, 1), 0xaa);
});

test('a read reaches the backend at its own offset and size, never wider, and not at all for emulated bytes', () => {
  const dev = new RecordingBackend(configBytes(256, [[0x40, 4, 0xaabbccdd], [0x04, 4, 0x0010_0406]]));
  const fn = new PciFunction({ id: 't', kind: 'real', backend: dev });
  fn.declare({ offset: 0x40, size: 4, emulated: 0x0000_ffff, writable: 0, value: 0x1122 });
  assert.equal(fn.read(0x04, 2), 0x0406);
  assert.equal(fn.read(0x06, 2), 0x0010);
  assert.equal(fn.read(0x05, 1), 0x04);
  assert.deepEqual(dev.reads, [
    [0x04, 2],
    [0x06, 2],
    [0x05, 1],
  ]);
  dev.reads.length = 0;
  // Both bytes emulated: the device is not asked; one emulated byte of two: merged.
  assert.equal(fn.read(0x40, 2), 0x1122);
  assert.equal(fn.read(0x41, 1), 0x11);
  assert.equal(fn.read(0x42, 2), 0xaabb);
  assert.deepEqual(dev.reads, [[0x42, 2]]);
  dev.reads.length = 0;
  // A word straddling emulated and device bytes asks the device for the word and keeps the emulated byte.
  assert.equal(fn.read(0x41, 2), 0xbb11);
  assert.deepEqual(dev.reads, [[0x41, 2]]);
});

test('a write reaches the backend at its own offset and size, never wider', () => {
  const dev = new RecordingBackend(configBytes(256, [[0x40, 4, 0]]));
  const fn = new PciFunction({ id: 't', kind: 'real', backend: dev });
  fn.write(0x41, 1, 0x5a);
  fn.write(0x42, 2, 0x1234);
  assert.deepEqual(dev.writes, [
    [0x41, 1, 0x5a],
    [0x42, 2, 0x1234],
  ]);
  assert.equal(dev.peek(0x40, 4), 0x12345a00);
});

test('reserved-preserve bits carry the device value back; guest bits land; emulated bits stay out of the device', () => {
  const dev = new RecordingBackend(configBytes(256, [[0x50, 2, 0xf0f0]]));
  const fn = new PciFunction({ id: 't', kind: 'real', backend: dev });
  // Bits 0-3 guest-writable pass-through, 4-7 reserved-preserve, 8-15 emulated RW.
  fn.declare({ offset: 0x50, size: 2, emulated: 0xff00, writable: 0xff0f, value: 0x0000 });
  fn.write(0x50, 2, 0xabcd);
  const [, , sent] = dev.writes.at(-1)!;
  assert.equal(sent & 0x0f, 0x0d, 'guest bits forwarded');
  assert.equal(sent & 0xf0, 0xf0, 'reserved-preserve bits keep the device value');
  assert.equal(fn.read(0x50, 2), 0xabfd, 'emulated high byte holds the guest value, low byte is the device');
  assert.equal(dev.peek(0x51, 1), 0xf0, 'the device never sees emulated bits change');
});

test('a byte write to Status never clears the RW1C bits of the other byte, in storage or in the device', () => {
  // Status 0xf910: every RW1C bit set and the capability list bit.
  const bytes = endpointBytes({ status: 0xf910 });
  bytes[0x34] = 0x40;
  bytes[0x40] = 0x01; // a PM capability so the list is well formed
  const dev = new RecordingBackend(bytes, configBytes(256, [[0x06, 2, 0xf900]]));
  const { fn } = buildRealFunction({ id: 't', backend: dev });
  // A byte write to Command's upper byte (0x05) must not touch Status.
  fn.write(0x05, 1, 0x04);
  assert.equal(fn.read(0x06, 2), 0xf910);
  // Clearing one bit with a byte write to 0x07 clears exactly that bit.
  fn.write(0x07, 1, 0x80);
  assert.equal(fn.read(0x06, 2), 0x7910);
  // A word write to Command (0x04) with Status untouched must not send ones to Status.
  fn.write(0x04, 2, 0x0006);
  assert.equal(fn.read(0x06, 2), 0x7910);
  // A dword write that carries zeros in Status clears nothing.
  fn.write(0x04, 4, 0x0000_0006);
  assert.equal(fn.read(0x06, 2), 0x7910);
  // The same write with ones clears them all.
  fn.write(0x04, 4, 0xffff_0006);
  assert.equal(fn.read(0x06, 2), 0x0010);
});

test('emulated RW1C registers of a model behave the same', () => {
  const { fn } = buildEmulatedFunction({
    id: 'm',
    vendorId: 0x1234,
    deviceId: 0x5678,
    classCode: 0xff0000,
    registers: [{ offset: 0x40, size: 4, value: 0xffff_ffff, writable: 0xffff_ffff, rw1c: 0xffff_0000 }],
  });
  fn.write(0x42, 1, 0x01);
  assert.equal(fn.read(0x40, 4), 0xfffe_ffff, 'one bit cleared, the rest kept');
  fn.write(0x40, 2, 0x0000);
  assert.equal(fn.read(0x40, 4), 0xfffe_0000, 'plain RW bits take the written zeros');
  fn.write(0x41, 2, 0x0000);
  assert.equal(fn.read(0x40, 4), 0xfffe_0000, 'writing 0 to RW1C bits keeps them');
});

test('reads past the visible length are ones; writes there are dropped', () => {
  const dev = new RecordingBackend(endpointBytes({ length: 64 }));
  const fn = new PciFunction({ id: 't', kind: 'real', backend: dev });
  assert.equal(fn.length, 64);
  assert.equal(fn.read(0x40, 4), 0xffff_ffff);
  assert.equal(fn.read(0x3e, 4), (0xffff_0000 | dev.peek(0x3e, 2)) >>> 0);
  fn.write(0x40, 4, 0);
  assert.equal(dev.writes.length, 0);
  assert.equal(fn.read(0xffc, 4), 0xffff_ffff);
});

test('unaligned reads across a dword boundary assemble both dwords', () => {
  const fn = new PciFunction({ id: 't', kind: 'real', backend: new RecordingBackend(configBytes(256, [[0x40, 4, 0x44332211], [0x44, 4, 0x88776655]])) });
  assert.equal(fn.read(0x43, 2), 0x5544);
  assert.equal(fn.read(0x42, 4), 0x66554433);
  assert.equal(fn.read(0x41, 4), 0x55443322);
});

test('watchers run after the write has landed, only for overlapping writes', () => {
  const seen: Array<[number, number, number]> = [];
  const { fn } = buildEmulatedFunction({
    id: 'pam',
    vendorId: 0x8086,
    deviceId: 0x1237,
    classCode: 0x060000,
    registers: [{ offset: 0x59, size: 1, writable: 0x30, onWrite: (e) => seen.push([e.offset, e.size, e.fn.getStored(0x59, 1)]) }],
  });
  fn.write(0x58, 4, 0xffff_ffff);
  fn.write(0x5c, 4, 0);
  fn.write(0x59, 1, 0x10);
  assert.deepEqual(seen, [
    [0x58, 4, 0x30],
    [0x59, 1, 0x10],
  ]);
});

test('setWritable changes masks at run time (a lock bit)', () => {
  const { fn } = buildEmulatedFunction({
    id: 'smram',
    vendorId: 0x8086,
    deviceId: 0x1237,
    classCode: 0x060000,
    registers: [
      {
        offset: 0x72,
        size: 1,
        value: 0x02,
        writable: 0x78,
        // D_LCK (bit 4) locks D_OPEN (bit 6) and itself.
        onWrite: (e) => {
          if (e.fn.getStored(0x72, 1) & 0x10) e.fn.setWritable(0x72, 1, 0x28);
        },
      },
    ],
  });
  fn.write(0x72, 1, 0x40);
  assert.equal(fn.read(0x72, 1), 0x42);
  fn.write(0x72, 1, 0x50);
  assert.equal(fn.read(0x72, 1), 0x52);
  fn.write(0x72, 1, 0x08);
  assert.equal(fn.read(0x72, 1), 0x5a, 'D_OPEN and D_LCK stay set once locked');
});

test('reset returns emulated registers to their reset values, not their captured ones', () => {
  const dev = new RecordingBackend(endpointBytes({ bars: [[0, 0xfe00_0000]] }));
  dev.write(0x04, 2, 0x0007);
  const { fn } = buildRealFunction({ id: 't', backend: dev, bars: [{ index: 0, size: 0x10000n }] });
  assert.equal(fn.read(0x04, 2) & 3, 3);
  assert.equal(fn.read(0x10, 4), 0xfe00_0000);
  fn.resetRegisters();
  assert.equal(fn.read(0x04, 2) & 3, 0, 'decode off');
  assert.equal(fn.read(0x10, 4), 0, 'BAR unassigned');
  assert.equal(fn.read(0x00, 4), 0x1234_8086, 'IDs kept');
});

test('unclaimed bytes: pass through writable, read-only, or hidden (capabilities the guest sees stay readable)', () => {
  const bytes = endpointBytes({ status: 0x10 });
  bytes[0x34] = 0x40;
  bytes.set([0x01, 0x00, 0x03, 0x00, 0x08, 0x00], 0x40); // PM capability, the last one
  bytes.set([0xaa, 0xbb, 0xcc, 0xdd], 0x80); // a vendor register
  const build = (unclaimed: 'pass' | 'read-only' | 'hide') => {
    const dev = new RecordingBackend(bytes);
    return { dev, fn: buildRealFunction({ id: unclaimed, backend: dev, unclaimed }).fn };
  };
  const pass = build('pass');
  pass.fn.write(0x80, 4, 0x11223344);
  assert.equal(pass.fn.read(0x80, 4), 0x11223344);
  const ro = build('read-only');
  ro.fn.write(0x80, 4, 0x11223344);
  assert.equal(ro.fn.read(0x80, 4), 0xddccbbaa);
  assert.equal(ro.dev.peek(0x80, 4), 0xddccbbaa);
  const hide = build('hide');
  assert.equal(hide.fn.read(0x80, 4), 0, 'vendor register hidden');
  assert.equal(hide.fn.read(0x40, 4), 0x0003_0001, 'the PM capability stays');
  hide.fn.write(0x80, 4, 0x11223344);
  assert.equal(hide.dev.peek(0x80, 4), 0xddccbbaa, 'nothing reached the device');
});

test('a write that changes nothing in the device is not sent to it', () => {
  const dev = new RecordingBackend(endpointBytes());
  const { fn } = buildRealFunction({ id: 't', backend: dev });
  fn.write(0x3c, 4, 0xffff_ff0b); // Interrupt Line (emulated), pin, Min_Gnt, Max_Lat (read-only)
  fn.write(0x00, 4, 0); // IDs: emulated, read-only
  fn.write(0x08, 4, 0); // class and revision
  assert.deepEqual(dev.writes, []);
  assert.equal(fn.read(0x3c, 1), 0x0b);
});
