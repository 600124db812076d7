import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuietGpeBlock } from '../../src/hw/chipset/quiet-gpe.js';

test('a quiet GPE block: status reads 0 whatever is written, enables read back, bytes past the block are not its own', () => {
  // The ICH9's GPE0 as QEMU's q35 FADT gives it: 16 bytes at 0x620, status then enable.
  const g = new QuietGpeBlock(0x620, 16);
  assert.equal(g.readPort(0x620, 4), 0);
  g.writePort(0x620, 4, 0xffffffff);
  assert.equal(g.readPort(0x620, 4), 0, 'write-1-to-clear of nothing');
  assert.equal(g.readPort(0x624, 4), 0);
  g.writePort(0x628, 4, 0x12345678);
  g.writePort(0x62f, 1, 0xa5);
  assert.equal(g.readPort(0x628, 4), 0x12345678);
  assert.equal(g.readPort(0x62c, 4), 0xa5000000);
  assert.equal(g.readPort(0x62a, 2), 0x1234, 'an unaligned read of the enables');
  assert.equal(g.readPort(0x620, 1) | g.readPort(0x627, 1), 0, 'the status half is still clear');
});
