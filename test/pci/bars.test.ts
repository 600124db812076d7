import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BarMappingEvent } from '../../src/hw/pci/bars.js';
import { buildEmulatedFunction } from '../../src/hw/pci/emulated.js';
import { buildRealFunction } from '../../src/hw/pci/real.js';
import { PciTopology } from '../../src/hw/pci/topology.js';
import { MemoryBackend } from '../../src/hw/pci/backend.js';
import { endpointBytes } from './helpers.js';

function device() {
  return buildEmulatedFunction({
    id: 'dev',
    vendorId: 0x1234,
    deviceId: 0x0001,
    classCode: 0x020000,
    bars: [
      { index: 0, kind: 'mem32', size: 0x10_0000 },
      { index: 2, kind: 'mem64', size: 8n << 30n, prefetchable: true },
      { index: 4, kind: 'io', size: 32 },
    ],
    romSize: 0x1_0000,
  }).fn;
}

/** The sizing protocol as Linux and SeaBIOS run it: save, write ones, read, restore. */
function size32(fn: ReturnType<typeof device>, offset: number, ones = 0xffff_ffff): number {
  const saved = fn.read(offset, 4);
  fn.write(offset, 4, ones);
  const v = fn.read(offset, 4);
  fn.write(offset, 4, saved);
  assert.equal(fn.read(offset, 4), saved, 'the BAR reads back what was restored');
  return v;
}

test('sizing protocol: 32-bit memory, 64-bit memory (both halves), I/O, ROM with its enable bit', () => {
  const fn = device();
  assert.equal(size32(fn, 0x10), 0xfff0_0000, 'mem32 1M');
  assert.equal(size32(fn, 0x18), 0x0000_000c, 'mem64 8G low half: all address bits above 4G, flags 64-bit prefetchable');
  assert.equal(size32(fn, 0x1c), 0xffff_fffe, 'mem64 8G upper half');
  assert.equal(size32(fn, 0x20), 0xffff_ffe1, 'io 32');
  assert.equal(size32(fn, 0x30, 0xffff_fffe), 0xffff_0000, 'ROM 64K, enable bit left clear');
  assert.equal(size32(fn, 0x30), 0xffff_0001, 'ROM enable bit is writable');
  assert.equal(size32(fn, 0x14), 0, 'unimplemented BAR 1 reads 0 whatever is written');
  assert.equal(size32(fn, 0x24), 0, 'unimplemented BAR 5');
});

test('a replayed device answers sizing with the sizes its dump recorded, and stays fixed without them', () => {
  const bytes = endpointBytes({ bars: [[0, 0xfe00_0000], [1, 0x0000_e001], [2, 0xfd00_0000]] });
  const backend = new MemoryBackend(bytes, { source: 't', barSizes: new Map([[0, 0x4000n], [1, 256n]]) });
  const { fn, bars } = buildRealFunction({ id: 't', backend });
  assert.equal(bars.layout(0)?.sizeSource, 'backend');
  assert.equal(size32(fn, 0x10), 0xffff_c000);
  assert.equal(size32(fn, 0x14), 0xffff_ff01);
  assert.equal(bars.layout(2)?.sizeSource, 'unknown');
  assert.equal(size32(fn, 0x18), 0xfd00_0000, 'size unknown: the register is fixed at its captured value');
  const guessed = buildRealFunction({ id: 't', backend: new MemoryBackend(bytes, { source: 't' }), unknownBarSize: 'alignment' });
  assert.equal(guessed.bars.layout(2)?.size, 0x100_0000n, 'alignment guess: 0xfd000000 is 16M aligned');
  const planned = buildRealFunction({ id: 't', backend: new MemoryBackend(bytes, { source: 't' }), bars: [{ index: 2, size: 0x1000n }] });
  assert.equal(planned.bars.layout(2)?.sizeSource, 'plan');
  assert.equal(size32(planned.fn, 0x18), 0xffff_f000);
});

test('update-mapping events fire exactly when the effective mapping changes', () => {
  const topology = new PciTopology();
  const fn = device();
  topology.attach(fn, topology.addRootBus(0, 0), 3, 0);
  const events: BarMappingEvent[] = [];
  topology.onMapping((e) => events.push(e));
  const step = (what: string, act: () => void, expect: Array<[number, bigint | null, bigint | null]>): void => {
    events.length = 0;
    act();
    assert.deepEqual(
      events.map((e) => [e.bar, e.old?.address ?? null, e.new?.address ?? null]),
      expect,
      what,
    );
  };
  step('programming addresses with decode off', () => {
    fn.write(0x10, 4, 0xc000_0000);
    fn.write(0x18, 4, 0x0000_0000);
    fn.write(0x1c, 4, 0x0000_0008);
    fn.write(0x20, 4, 0xc000);
    fn.write(0x30, 4, 0xc010_0000);
  }, []);
  step('memory decode on', () => fn.write(0x04, 2, 0x0002), [
    [0, null, 0xc000_0000n],
    [2, null, 0x8_0000_0000n],
  ]);
  step('the same address again', () => fn.write(0x10, 4, 0xc000_0000), []);
  step('a Command write that changes nothing decoded', () => fn.write(0x04, 2, 0x0006), []);
  step('moving BAR 0 while decoding', () => fn.write(0x10, 4, 0xc020_0000), [[0, 0xc000_0000n, 0xc020_0000n]]);
  step('moving the upper half of the 64-bit BAR', () => fn.write(0x1c, 4, 0x0000_000a), [[2, 0x8_0000_0000n, 0xa_0000_0000n]]);
  step('ROM enable with memory decode on', () => fn.write(0x30, 4, 0xc010_0001), [[6, null, 0xc010_0000n]]);
  step('I/O decode on', () => fn.write(0x04, 1, 0x07), [[4, null, 0xc000n]]);
  step('I/O BAR moved above 64K: no longer reachable on x86', () => fn.write(0x20, 4, 0x0001_0000), [[4, 0xc000n, null]]);
  step('a byte write to Command turning memory off', () => fn.write(0x04, 1, 0x05), [
    [0, 0xc020_0000n, null],
    [2, 0xa_0000_0000n, null],
    [6, 0xc010_0000n, null],
  ]);
  step('moving a BAR with decode off', () => fn.write(0x10, 4, 0xd000_0000), []);
  const e = events;
  step('memory back on', () => fn.write(0x04, 2, 0x0002), [
    [0, null, 0xd000_0000n],
    [2, null, 0xa_0000_0000n],
    [6, null, 0xc010_0000n],
  ]);
  assert.equal(e, events);
  const last = events[0]!;
  assert.equal(last.kind, 'mem32');
  assert.equal(last.new?.size, 0x10_0000n);
  assert.equal(last.bdf.device, 3);
  assert.equal(events[1]!.kind, 'mem64');
  assert.equal(events[1]!.prefetchable, true);
  assert.equal(events[2]!.kind, 'rom');
  assert.deepEqual(
    topology.mappings().map((m) => [m.bar.index, m.mapping.address]),
    [
      [0, 0xd000_0000n],
      [2, 0xa_0000_0000n],
      [6, 0xc010_0000n],
    ],
  );
  // The device side (a model, a plug-in) may set a BAR's register with no event; the next Command
  // write, even one that changes no decode bit (INTx disable), works the mappings out again.
  step('a BAR set device-side while decoding: no event of its own', () => fn.setStored(0x10, 4, 0xd020_0000), []);
  step('a Command write that changes no decode bit picks the move up', () => fn.write(0x04, 2, 0x0402), [[0, 0xd000_0000n, 0xd020_0000n]]);
  step('and the next one finds nothing changed', () => fn.write(0x04, 2, 0x0002), []);
  step('topology reset unmaps everything', () => topology.reset(), [
    [0, 0xd020_0000n, null],
    [2, 0xa_0000_0000n, null],
    [6, 0xc010_0000n, null],
  ]);
});

test('BAR sizes a BAR cannot decode are rejected with the function named', () => {
  assert.throws(
    () => buildEmulatedFunction({ id: 'bad', vendorId: 1, deviceId: 2, classCode: 0, bars: [{ index: 0, kind: 'mem32', size: 3000 }] }),
    /bad: BAR 0: size 3000 is not a power of two/,
  );
  assert.throws(() => buildEmulatedFunction({ id: 'bad', vendorId: 1, deviceId: 2, classCode: 0, bars: [{ index: 5, kind: 'mem64', size: 4096 }] }), /BAR 5 \(mem64\) does not fit/);
  assert.throws(() => buildEmulatedFunction({ id: 'bad', vendorId: 1, deviceId: 2, classCode: 0, romSize: 1024 }), /expansion ROM: size 1024 is below/);
});

test('a plan can hide a BAR: it reads 0, answers sizing with 0 and never maps', () => {
  const bytes = endpointBytes({ bars: [[0, 0xfe00_0000], [1, 0xfd00_000c], [2, 0x0000_0001]] });
  const { fn, bars } = buildRealFunction({
    id: 't',
    backend: new MemoryBackend(bytes, { source: 't' }),
    bars: [{ index: 0, size: 0x1000n }, { index: 1, hide: true }],
  });
  assert.deepEqual(bars.layouts.map((b) => b.index), [0]);
  assert.equal(fn.read(0x14, 4), 0);
  assert.equal(fn.read(0x18, 4), 0, 'the upper half of the hidden 64-bit BAR too');
  assert.equal(size32(fn as ReturnType<typeof device>, 0x14), 0);
  // A size for a register that reads 0 declares a BAR the host left unassigned...
  const unassigned = buildRealFunction({ id: 't', backend: new MemoryBackend(bytes, { source: 't' }), bars: [{ index: 3, size: 4096n }] });
  assert.equal(size32(unassigned.fn as ReturnType<typeof device>, 0x1c), 0xffff_f000);
  // ...but the upper half of a 64-bit BAR is no BAR of its own.
  assert.throws(() => buildRealFunction({ id: 't', backend: new MemoryBackend(bytes, { source: 't' }), bars: [{ index: 2, size: 4096n }] }), /BAR 2 is the upper half of 64-bit BAR 1/);
  assert.throws(() => buildRealFunction({ id: 't', backend: new MemoryBackend(bytes, { source: 't' }), bars: [{ index: 0, size: 100n }] }), /BAR 0: size 100 is not a power of two/);
});
