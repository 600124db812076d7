import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePam } from '../../src/hw/chipset/pam.js';
import { PirqRouter } from '../../src/hw/irq/pirq.js';

test('PIRQ router: disabled at reset, routes to ISA IRQs, shares lines, re-routes live levels', () => {
  const calls: Array<[number, boolean]> = [];
  const r = new PirqRouter({ setGsi: (g, l) => void calls.push([g, l]) });
  r.setIntx(0, 'dev1', true);
  assert.deepEqual(calls, [], 'nothing routed at reset (0x80)');
  r.setRoute(0, 11);
  assert.deepEqual(calls, [[11, true]]);
  r.setRoute(1, 11); // PIRQB shares IRQ11
  r.setIntx(1, 'dev2', true);
  r.setIntx(0, 'dev1', false);
  assert.deepEqual(calls, [[11, true]], 'IRQ11 stays up while dev2 asserts');
  r.setIntx(1, 'dev2', false);
  assert.deepEqual(calls, [[11, true], [11, false]]);
  r.setIntx(2, 'dev3', true);
  r.setRoute(2, 10);
  r.setRoute(2, 5);
  // Moving a live PIRQ raises the new IRQ and drops the old one.
  assert.deepEqual(calls.slice(2), [[10, true], [5, true], [10, false]]);
  r.setRoute(3, 2); // IRQ2 is reserved: treated as disabled
  assert.equal(r.isaIrq(3), undefined);
  assert.equal(PirqRouter.pirqOf(1, 1), 0);
  assert.equal(PirqRouter.pirqOf(3, 1), 2);
  assert.equal(PirqRouter.pirqOf(3, 4), 1);
});

test('PAM decode: SeaBIOS\'s make_bios_writable values', () => {
  const regs = Uint8Array.of(0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33);
  const segs = decodePam(regs);
  assert.equal(segs.length, 13);
  assert.ok(segs.every((s) => s.readRam && s.writeRam));
  assert.deepEqual(segs[12], { base: 0xf0000, size: 0x10000, readRam: true, writeRam: true });
  const ro = decodePam(Uint8Array.of(0x10, 0x31, 0, 0, 0, 0, 0x20));
  assert.deepEqual(ro[0], { base: 0xc0000, size: 0x4000, readRam: true, writeRam: false });
  assert.deepEqual(ro[1], { base: 0xc4000, size: 0x4000, readRam: true, writeRam: true });
  assert.deepEqual(ro[11], { base: 0xec000, size: 0x4000, readRam: false, writeRam: true });
  assert.deepEqual(ro[12], { base: 0xf0000, size: 0x10000, readRam: true, writeRam: false });
});
