import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GPE0_BASE, Gpe0Block, PCIHP_BASE, PCIHP_DOWN, PCIHP_EJ, PCIHP_RMV, PCIHP_SEL, PCIHP_UP, PciHotplug } from '../../src/hw/chipset/pci-hotplug.js';

/**
 * The PIIX4-style hot-plug block as the guest's DSDT uses it (QEMU's hw/acpi/pcihp.c): UP and
 * DOWN bitmaps, EJ, RMV, bus select, and the GPE0 block whose enabled status drives the SCI.
 */
function rig(removable = 0b1110_0000) {
  const sci: boolean[] = [];
  const ejected: number[] = [];
  const gpe = new Gpe0Block(GPE0_BASE, { set: (level) => sci.push(level) });
  const hp = new PciHotplug(PCIHP_BASE, removable, gpe, { onEject: (slot) => ejected.push(slot) });
  return { gpe, hp, sci, ejected };
}

test('a plug sets UP (cleared by its read) and GPE bit 1; the SCI follows status AND enable, and clears by writing 1', () => {
  const { gpe, hp, sci } = rig();
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_RMV, 4), 0b1110_0000);
  hp.plug(5);
  assert.deepEqual(sci, [], 'no SCI while the guest has not enabled the GPE');
  assert.equal(gpe.readPort(GPE0_BASE, 2), 0x2);
  gpe.writePort(GPE0_BASE + 2, 1, 0x02);
  assert.deepEqual(sci, [true]);
  assert.equal(gpe.readPort(GPE0_BASE + 2, 1), 0x02);
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_UP, 4), 1 << 5);
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_UP, 4), 0, 'UP is reported once');
  gpe.writePort(GPE0_BASE, 1, 0x02);
  assert.deepEqual(sci, [true, false]);
  assert.equal(gpe.status, 0);
  assert.equal(hp.isFree(5), false);
  assert.equal(hp.freeSlot(), 6);
});

test('an unplug request sets DOWN; the guest\'s EJ write empties the slot once; slots outside RMV and other buses are ignored', () => {
  const { hp, ejected } = rig();
  hp.plug(6);
  hp.requestUnplug(6);
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_DOWN, 4), 1 << 6);
  hp.writePort(PCIHP_BASE + PCIHP_SEL, 4, 1);
  hp.writePort(PCIHP_BASE + PCIHP_EJ, 4, 1 << 6);
  assert.deepEqual(ejected, [], 'bus 1 has no hot-plug slots');
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_DOWN, 4), 0);
  hp.writePort(PCIHP_BASE + PCIHP_SEL, 4, 0);
  hp.writePort(PCIHP_BASE + PCIHP_EJ, 4, (1 << 6) | (1 << 2));
  assert.deepEqual(ejected, [6]);
  assert.equal(hp.readPort(PCIHP_BASE + PCIHP_DOWN, 4), 0);
  hp.writePort(PCIHP_BASE + PCIHP_EJ, 4, 1 << 6);
  assert.deepEqual(ejected, [6], 'an empty slot ejects nothing');
  assert.equal(hp.isFree(6), true);
});

test('a slot emptied by the monitor (forced) ignores the guest\'s later eject; a full bus has no free slot', () => {
  const { hp, ejected } = rig(1 << 7);
  hp.plug(7);
  assert.equal(hp.freeSlot(), undefined);
  hp.requestUnplug(7);
  hp.cleared(7);
  hp.writePort(PCIHP_BASE + PCIHP_EJ, 4, 1 << 7);
  assert.deepEqual(ejected, []);
  assert.equal(hp.freeSlot(), 7);
});
