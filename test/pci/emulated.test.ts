import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigMechanism1 } from '../../src/hw/pci/cf8.js';
import { composePci } from '../../src/hw/pci/compose.js';
import { buildEmulatedFunction, msiCapability, msixCapability, pcieCapability, pmCapability, type EmulatedFunctionSpec } from '../../src/hw/pci/emulated.js';
import type { ConfigWriteEvent } from '../../src/hw/pci/function.js';
import { writeLspciDump } from '../../src/hw/pci/view.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';

const work = mkdtempSync(join(tmpdir(), 'hvmpt-emu-'));
after(() => rmSync(work, { recursive: true, force: true }));

const root = (device: number) => ({ kind: 'root' as const, segment: 0, bus: 0, device, fn: 0 });

test('an emulated device declared as data reads correctly in lspci: header, BARs, ROM, PM, MSI, MSI-X, PCI Express', (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const spec: EmulatedFunctionSpec = {
    id: 'nic',
    vendorId: 0x8086,
    deviceId: 0x10d3,
    classCode: 0x020000,
    revision: 0x01,
    subsystemVendorId: 0x8086,
    subsystemId: 0xa01f,
    interruptPin: 1,
    bars: [
      { index: 0, kind: 'mem32', size: 0x2_0000 },
      { index: 2, kind: 'io', size: 32 },
      { index: 3, kind: 'mem64', size: 0x4000, prefetchable: true },
    ],
    romSize: 0x4_0000,
    capabilities: [pmCapability(), msiCapability({ vectors: 4, maskable: true }), pcieCapability({ type: 'endpoint' }), msixCapability({ tableSize: 5, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } })],
  };
  const c = composePci({ emulated: [{ name: 'nic', at: root(2), spec, path: 'e' }], allocation: { windows: { io: { base: 0xc000n, limit: 0xffffn }, mem32: { base: 0xe000_0000n, limit: 0xefff_ffffn } }, path: 'a' } });
  const file = join(work, 'nic.txt');
  writeFileSync(file, writeLspciDump(c));
  const text = run('lspci', ['-vvv', '-nn', '-F', file]).stdout;
  assert.match(text, /^00:02\.0 Ethernet controller \[0200\]: Intel Corporation .*\[8086:10d3\] \(rev 01\)/m);
  assert.match(text, /Subsystem: Intel Corporation .*\[8086:a01f\]/);
  assert.match(text, /Control: I\/O\+ Mem\+ BusMaster-/);
  assert.match(text, /Interrupt: pin A routed to IRQ 0/);
  assert.match(text, /Region 0: Memory at e[0-9a-f]{7} \(32-bit, non-prefetchable\)/);
  assert.match(text, /Region 2: I\/O ports at c0[0-9a-f]{2}/);
  assert.match(text, /Region 3: Memory at e[0-9a-f]{7} \(64-bit, prefetchable\)/);
  assert.match(text, /Expansion ROM at e[0-9a-f]{7} \[disabled\]/);
  assert.match(text, /Capabilities: \[40\] Power Management version 3/);
  assert.match(text, /Capabilities: \[48\] MSI: Enable- Count=1\/4 Maskable\+ 64bit\+/);
  assert.match(text, /Capabilities: \[60\] Express \(v2\) Endpoint, MSI 00/);
  assert.match(text, /LnkCap:\tPort #0, Speed 2\.5GT\/s, Width x1/);
  assert.match(text, /Capabilities: \[9c\] MSI-X: Enable- Count=5 Masked-/);
  assert.match(text, /Vector table: BAR=3 offset=00000000/);
  assert.match(text, /PBA: BAR=3 offset=00002000/);
});

/**
 * The monitor's chipset, as its author will write it: an i440FX host bridge whose PAM writes
 * change the memory map, and a PIIX3 whose PIRQ route registers drive interrupt routing.
 */
test('chipset models: PAM and PIRQ registers notify after the composed write lands', () => {
  const pam: Array<[number, number]> = [];
  const pirq: Array<[number, number]> = [];
  const i440fx: EmulatedFunctionSpec = {
    id: 'i440fx',
    vendorId: 0x8086,
    deviceId: 0x1237,
    classCode: 0x060000,
    revision: 0x02,
    registers: [
      { offset: 0x59, size: 1, writable: 0x30, onWrite: (e) => pam.push([0x59, e.fn.getStored(0x59, 1)]) },
      ...[0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f].map((offset) => ({ offset, size: 1 as const, writable: 0x33, onWrite: (e: ConfigWriteEvent) => pam.push([offset, e.fn.getStored(offset, 1)]) })),
      { offset: 0x72, size: 1, value: 0x02, writable: 0x78 },
    ],
  };
  const piix3: EmulatedFunctionSpec = {
    id: 'piix3',
    vendorId: 0x8086,
    deviceId: 0x7000,
    classCode: 0x060100,
    registers: [
      {
        offset: 0x60,
        size: 4,
        value: 0x8080_8080,
        writable: 0x8f8f_8f8f,
        onWrite: (e) => {
          for (let i = Math.max(0, e.offset - 0x60); i < Math.min(4, e.offset + e.size - 0x60); i++) pirq.push([i, e.fn.getStored(0x60 + i, 1)]);
        },
      },
    ],
  };
  const c = composePci({
    chipset: [
      { name: 'i440fx', at: root(0), spec: i440fx, path: 'chipset[0]' },
      { name: 'piix3', at: root(1), spec: piix3, path: 'chipset[1]' },
    ],
  });
  const cf8 = new ConfigMechanism1(c.topology);
  const write = (device: number, reg: number, size: 1 | 2 | 4, value: number): void => {
    cf8.writePort(0xcf8, 4, (0x8000_0000 | (device << 11) | (reg & 0xfc)) >>> 0);
    cf8.writePort(0xcfc + (reg & 3), size, value);
  };
  // SeaBIOS makes the BIOS area RAM: PAM0 = 0x30, PAM1-6 = 0x33, with dword writes.
  write(0, 0x58, 4, 0x3333_3000);
  write(0, 0x5c, 4, 0x3333_3333);
  assert.deepEqual(pam.slice(0, 2), [
    [0x59, 0x30],
    [0x5a, 0x33],
  ]);
  assert.equal(pam.length, 7, 'every PAM register notified once');
  // PIRQA -> IRQ 11 with a byte write; the others stay disabled.
  write(1, 0x60, 1, 0x0b);
  assert.deepEqual(pirq, [[0, 0x0b]]);
  write(1, 0x62, 2, 0x0a0a);
  assert.deepEqual(pirq.slice(1), [
    [2, 0x0a],
    [3, 0x0a],
  ]);
  cf8.writePort(0xcf8, 4, 0x8000_0860);
  assert.equal(cf8.readPort(0xcfc, 4), 0x0a0a_800b, 'reserved bits 4-6 of each route stay 0');
  // A host bridge and an ISA bridge in slots 0 and 1; nothing else.
  assert.deepEqual(c.topology.reachable().map((r) => r.fn.id), ['i440fx', 'piix3']);
});

test('a reset puts an emulated device back to its declared values', () => {
  const { fn } = buildEmulatedFunction({ id: 'x', vendorId: 1, deviceId: 2, classCode: 0x010000, bars: [{ index: 0, kind: 'io', size: 16 }], registers: [{ offset: 0x40, size: 4, value: 0x1234, writable: 0xffff_ffff }] });
  fn.write(0x04, 2, 0x0001);
  fn.write(0x10, 4, 0xc100);
  fn.write(0x40, 4, 0xdead_beef);
  fn.write(0x3c, 1, 9);
  fn.resetRegisters();
  assert.equal(fn.read(0x04, 2), 0);
  assert.equal(fn.read(0x10, 4), 0x1);
  assert.equal(fn.read(0x40, 4), 0x1234);
  assert.equal(fn.read(0x3c, 1), 0);
});

test('inconsistent specs are refused with the function named', () => {
  const base = { vendorId: 1, deviceId: 2, classCode: 0 };
  assert.throws(() => buildEmulatedFunction({ id: 'a', ...base, vendorId: 0x1_0000 }), /a: vendor ID 65536 does not fit in 16 bits/);
  assert.throws(() => buildEmulatedFunction({ id: 'b', ...base, registers: [{ offset: 0x10, size: 4 }] }), /b: register at 0x10: device registers start at 0x40/);
  assert.throws(() => buildEmulatedFunction({ id: 'c', ...base, capabilities: [{ id: 9, length: 8, offset: 0x41 }] }), /c: capability 0x9 at 0x41 .* dword-aligned/);
  assert.throws(() => buildEmulatedFunction({ id: 'd', ...base, capabilities: [{ id: 9, length: 8, offset: 0x40 }, { id: 9, length: 8, offset: 0x44 }] }), /overlaps/);
  assert.throws(() => buildEmulatedFunction({ id: 'e', ...base, bars: [{ index: 0, kind: 'mem64', size: 4096 }, { index: 1, kind: 'io', size: 4 }] }), /declared twice/);
  assert.throws(() => msiCapability({ vectors: 3 }), /MSI vectors 3/);
});

test('a model can declare its Command value and the multi-function bit; both survive a reset', () => {
  const { fn } = buildEmulatedFunction({ id: 'host', vendorId: 0x8086, deviceId: 0x1237, classCode: 0x060000, command: 0x0006, status: 0x0200, subsystemVendorId: 0x1af4, subsystemId: 0x1100, multifunction: true });
  assert.equal(fn.read(0x04, 4), 0x0200_0006);
  assert.equal(fn.read(0x0e, 1), 0x80);
  assert.equal(fn.read(0x2c, 4), 0x1100_1af4);
  fn.write(0x04, 2, 0);
  fn.resetRegisters();
  assert.equal(fn.read(0x04, 2), 0x0006);
  assert.equal(fn.read(0x0e, 1), 0x80);
  assert.deepEqual([...fn.getStoredBytes(0x2c, 4)], [0xf4, 0x1a, 0x00, 0x11]);
});
