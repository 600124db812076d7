import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IoConflictError, IoLedger, MmioBus, PortBus } from '../../src/vmm/io-bus.js';

test('port bus: dispatch by port, overlap refused, unclaimed counted, a throwing device is failed and contained', () => {
  const ledger = new IoLedger();
  const faults: string[] = [];
  ledger.onFault = (f) => void faults.push(`${f.device}@${f.address.toString(16)}`);
  const ports = new PortBus(ledger);
  const mmio = new MmioBus(ledger);
  const seen: string[] = [];
  ports.register('good', 0x100, 4, { readPort: (p, s) => p + s, writePort: (p, s, v) => void seen.push(`${p}:${s}:${v}`) });
  let explode = false;
  const bad = {
    readPort: () => {
      if (explode) throw new Error('model bug');
      return 7;
    },
    writePort: () => {},
  };
  ports.register('bad', 0x200, 1, bad);
  mmio.register('bad', 0xd000_0000, 0x1000, { readMmio: () => 9, writeMmio: () => {} });
  assert.throws(() => ports.register('other', 0x103, 2, bad), (e: unknown) => e instanceof IoConflictError && /port 0x103 already belongs to good/.test(e.message));
  assert.equal(ports.read(0x102, 2), 0x104);
  ports.write(0x101, 1, 0xaa);
  assert.deepEqual(seen, [`${0x101}:1:170`]);
  assert.equal(ports.read(0x300, 4), 0xffff_ffff);
  ports.write(0x300, 1, 1);
  ports.read(0x300, 4);
  assert.deepEqual(ledger.summary(), ['pio 0x300 r4 x2', 'pio 0x300 w1 x1']);
  assert.equal(ports.read(0x200, 1), 7);
  explode = true;
  assert.equal(ports.read(0x200, 1), 0xff, 'the faulting access reads all ones');
  explode = false;
  assert.equal(ports.read(0x200, 1), 0xff, 'a failed device stays failed');
  assert.equal(mmio.read(0xd000_0010, 4), 0xffff_ffff, 'its MMIO ranges fail with it');
  assert.equal(ports.read(0x100, 1), 0x101, 'other devices go on');
  assert.deepEqual(faults, ['bad@200']);
});

test('MMIO bus: binary search over sorted ranges, offsets relative to the base, overlap refused', () => {
  const bus = new MmioBus(new IoLedger());
  const bases = [0xfeb0_0000, 0xc000_0000, 0xe000_0000, 0x1_0000_0000 - 0x1000];
  for (const b of bases) bus.register(`d${b.toString(16)}`, b, 0x1000, { readMmio: (o) => (b + o) >>> 0, writeMmio: () => {} });
  for (const b of bases) assert.equal(bus.read(b + 0x10, 4), (b + 0x10) >>> 0);
  assert.equal(bus.read(0xd000_0000, 2), 0xffff);
  assert.throws(() => bus.register('x', 0xe000_0800, 0x1000, { readMmio: () => 0, writeMmio: () => {} }), IoConflictError);
  bus.unregister('de0000000');
  assert.equal(bus.read(0xe000_0010, 1), 0xff);
});
