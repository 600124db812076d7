import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildEmulatedFunction, msiCapability, msixCapability } from '../../src/hw/pci/emulated.js';
import type { PciFunction } from '../../src/hw/pci/function.js';
import { deliverable, MsiCapability, MsixTable, type InterruptConfigEvent } from '../../src/hw/pci/msi.js';

/** MSI and MSI-X programming becomes events carrying the whole guest-visible state. */

function device(): { fn: PciFunction; msi: number; msix: number } {
  const { fn, capabilities } = buildEmulatedFunction({
    id: 'dev',
    vendorId: 0x1234,
    deviceId: 0x11e8,
    classCode: 0x00ff00,
    bars: [{ index: 0, kind: 'mem32', size: 0x4000 }],
    capabilities: [msiCapability({ vectors: 4, maskable: true }), msixCapability({ tableSize: 5, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } })],
  });
  const msi = capabilities.caps.find((c) => c.id === 0x05)!.offset;
  const msix = capabilities.caps.find((c) => c.id === 0x11)!.offset;
  return { fn, msi, msix };
}

test('MSI: enable, multiple messages, per-vector mask and disable are events; rewriting the same values is not', () => {
  const { fn, msi } = device();
  const events: InterruptConfigEvent[] = [];
  const cap = new MsiCapability(fn, msi, (e) => events.push(e));
  assert.deepEqual(cap.state(), { kind: 'msi', enabled: false, vectors: [] });
  fn.write(msi + 4, 4, 0xfee0_1000);
  fn.write(msi + 8, 4, 0);
  fn.write(msi + 0x0c, 2, 0x4041);
  // Programming address and data with MSI off changes nothing the device would send.
  assert.equal(events.length, 0);
  fn.write(msi + 2, 2, 0x0021); // enable, MME = 2 (4 vectors)
  assert.equal(events.length, 1);
  const s = events[0]!.state;
  assert.equal(s.kind, 'msi');
  assert.equal(s.enabled, true);
  assert.deepEqual(s.vectors.map((v) => [v.address, v.data, v.masked]), [
    [0xfee0_1000n, 0x4040, false],
    [0xfee0_1000n, 0x4041, false],
    [0xfee0_1000n, 0x4042, false],
    [0xfee0_1000n, 0x4043, false],
  ]);
  fn.write(msi + 2, 2, 0x0021);
  assert.equal(events.length, 1, 'the same control value again is no event');
  fn.write(msi + 0x10, 4, 0b0010); // mask vector 1
  assert.equal(events.length, 2);
  assert.deepEqual(events[1]!.state.vectors.map((v) => v.masked), [false, true, false, false]);
  assert.equal(deliverable(events[1]!.state, 1), false);
  assert.equal(deliverable(events[1]!.state, 2), true);
  fn.write(msi + 2, 2, 0x0020);
  assert.deepEqual(events[2]!.state, { kind: 'msi', enabled: false, vectors: [] });
  // More messages enabled than the device offers (MME 5 = 32 > 4): the device's own count.
  fn.write(msi + 2, 2, 0x0051);
  assert.equal(events.at(-1)!.state.vectors.length, 4);
});

test('MSI-X: the table powers on masked; entries, vector masks, enable and function mask are events; PBA bits are the monitor\'s', () => {
  const { fn, msix } = device();
  const events: InterruptConfigEvent[] = [];
  const t = new MsixTable(fn, msix, (e) => events.push(e));
  assert.equal(t.size, 5);
  assert.deepEqual(t.table, { bar: 0, offset: 0x2000, length: 80 });
  assert.deepEqual(t.pba, { bar: 0, offset: 0x3000, length: 8 });
  for (let i = 0; i < 5; i++) assert.equal(t.readTable(i * 16 + 12, 4), 1, `vector ${i} masked at power-on`);
  t.writeTable(16, 4, 0xfee0_0003); // low bits of the address are read-only zero
  t.writeTable(20, 4, 0);
  t.writeTable(24, 4, 0x41);
  assert.equal(t.readTable(16, 4), 0xfee0_0000);
  assert.equal(t.readTable(24, 2), 0x41);
  t.writeTable(28, 4, 0xffff_fff0); // unmask vector 1: the reserved bits stay zero
  assert.equal(t.readTable(28, 4), 0);
  const last = events.at(-1)!.state;
  assert.equal(last.kind, 'msix');
  assert.equal(last.enabled, false);
  assert.deepEqual(last.vectors[1], { address: 0xfee0_0000n, data: 0x41, masked: false });
  assert.equal(deliverable(last, 1), false, 'nothing is delivered before MSI-X is enabled');
  const n = events.length;
  fn.write(msix + 2, 2, 0xc000); // enable with the function masked
  assert.equal(events.length, n + 1);
  assert.equal(deliverable(events.at(-1)!.state, 1), false);
  fn.write(msix + 2, 2, 0x8000);
  assert.equal(deliverable(events.at(-1)!.state, 1), true);
  assert.equal(deliverable(events.at(-1)!.state, 0), false, 'vector 0 is still masked');
  assert.equal(fn.read(msix + 2, 2) & 0x7ff, 4, 'the table size stays read-only');
  t.setPending(4, true);
  assert.equal(t.readPba(0, 4), 0x10);
  assert.equal(t.isPending(4), true);
  t.setPending(4, false);
  assert.equal(t.readPba(0, 1), 0);
  // Out of the table: all ones, writes dropped.
  assert.equal(t.readTable(80, 4), 0xffff_ffff);
  t.reset();
  assert.equal(t.readTable(28, 4), 1);
});
