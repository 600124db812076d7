import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { allocateResources, type GuestWindows } from '../../src/hw/pci/allocator.js';
import { bridgeWindows, type Window } from '../../src/hw/pci/bridge.js';
import { renumberBuses } from '../../src/hw/pci/compose.js';
import { buildEmulatedFunction, fakeBridgeSpec, type BarSpec } from '../../src/hw/pci/emulated.js';
import { PciAllocationError } from '../../src/hw/pci/errors.js';
import type { PciFunction } from '../../src/hw/pci/function.js';
import { intxRoutes, swizzle } from '../../src/hw/pci/intx.js';
import { PciTopology, type BusNode } from '../../src/hw/pci/topology.js';

const WINDOWS: GuestWindows = {
  io: { base: 0xc000n, limit: 0xffffn },
  mem32: { base: 0xc000_0000n, limit: 0xfebf_ffffn },
  mem64: { base: 0x8_0000_0000n, limit: 0xf_ffff_ffffn },
};

function device(id: string, bars: BarSpec[], pin: 0 | 1 | 2 | 3 | 4 = 1): PciFunction {
  return buildEmulatedFunction({ id, vendorId: 0x1af4, deviceId: 0x1000, classCode: 0x020000, bars, interruptPin: pin }).fn;
}

function bridge(id: string, pref64 = true): PciFunction {
  return buildEmulatedFunction({ ...fakeBridgeSpec({ id }), bridge: { pref64 } }).fn;
}

test('bridge windows: 1 MiB memory and 4 KiB I/O granularity, aligned to their largest member, decode enabled', () => {
  const t = new PciTopology();
  const root = t.addRootBus(0, 0);
  const br = bridge('br');
  t.attach(br, root, 1, 0);
  const d = device('d', [{ index: 0, kind: 'mem32', size: 0x1000 }, { index: 1, kind: 'io', size: 16 }, { index: 2, kind: 'mem64', size: 0x2_0000, prefetchable: true }]);
  t.attach(d, t.secondaryBus(br), 0, 0);
  renumberBuses(t);
  const r = allocateResources(t, WINDOWS);
  const w = bridgeWindows(br);
  assert.deepEqual(w.mem, { base: 0xc000_0000n, limit: 0xc00f_ffffn });
  assert.deepEqual(w.io, { base: 0xc000n, limit: 0xcfffn });
  assert.deepEqual(w.pref, { base: 0x8_0000_0000n, limit: 0x8_000f_ffffn }, '64-bit prefetchable goes above 4 GiB');
  assert.equal(r.bars.length, 3);
  assert.equal(d.read(0x04, 2) & 3, 3, 'device decodes I/O and memory');
  assert.equal(br.read(0x04, 2) & 3, 3, 'bridge forwards both');
  assert.deepEqual(t.mappings().map((m) => [m.fn.id, m.bar.index, m.mapping.address]), [
    ['d', 0, 0xc000_0000n],
    ['d', 1, 0xc000n],
    ['d', 2, 0x8_0000_0000n],
  ]);
});

test('a bridge without a 64-bit prefetchable window keeps 64-bit BARs below 4 GiB; non-prefetchable 64-bit BARs always do', () => {
  const t = new PciTopology();
  const root = t.addRootBus(0, 0);
  const br = bridge('br32', false);
  t.attach(br, root, 1, 0);
  t.attach(device('a', [{ index: 0, kind: 'mem64', size: 0x10_0000, prefetchable: true }]), t.secondaryBus(br), 0, 0);
  t.attach(device('b', [{ index: 0, kind: 'mem64', size: 0x1000 }]), root, 2, 0);
  renumberBuses(t);
  const r = allocateResources(t, WINDOWS);
  for (const p of r.bars) assert.ok(p.address < 1n << 32n, `${p.fn.id} BAR ${p.bar.index} at 0x${p.address.toString(16)}`);
  assert.equal(r.bars.find((p) => p.fn.id === 'a')!.window, 'mem32');
});

test('errors name what did not fit: no I/O window, a window too small', () => {
  const t = new PciTopology();
  t.attach(device('io-dev', [{ index: 0, kind: 'io', size: 32 }]), t.addRootBus(0, 0), 3, 0);
  assert.throws(() => allocateResources(t, { mem32: WINDOWS.mem32 }), (e: unknown) => e instanceof PciAllocationError && /cannot place io-dev \(at 00:03\.0\) BAR 0 \(io, 32\): the plan gives no I\/O window/.test(e.message));
  const big = new PciTopology();
  big.attach(device('big', [{ index: 0, kind: 'mem32', size: 1n << 30n }]), big.addRootBus(0, 0), 0, 0);
  assert.throws(() => allocateResources(big, { mem32: { base: 0xe000_0000n, limit: 0xefff_ffffn } }), /cannot place big \(at 00:00\.0\) BAR 0 \(mem32, 1G\) in the mem32 window 0xe0000000-0xefffffff/);
});

// ------------------------------------------------------------------ random topologies

interface Tree {
  readonly bars: BarSpec[];
  readonly children: Tree[];
  readonly pref64: boolean;
}

const barArb = fc.oneof(
  fc.record({ kind: fc.constant('mem32' as const), log: fc.integer({ min: 4, max: 22 }), prefetchable: fc.boolean() }),
  fc.record({ kind: fc.constant('mem64' as const), log: fc.integer({ min: 4, max: 28 }), prefetchable: fc.boolean() }),
  fc.record({ kind: fc.constant('io' as const), log: fc.integer({ min: 2, max: 8 }), prefetchable: fc.constant(false) }),
);

const barsArb = fc.array(barArb, { maxLength: 3 }).map((bs) => {
  let i = 0;
  const out: BarSpec[] = [];
  for (const b of bs) {
    if (i + (b.kind === 'mem64' ? 2 : 1) > 6) break;
    out.push({ index: i, kind: b.kind, size: 1n << BigInt(b.log), prefetchable: b.prefetchable });
    i += b.kind === 'mem64' ? 2 : 1;
  }
  return out;
});

function treeArb(depth: number): fc.Arbitrary<Tree> {
  return fc.record({
    bars: barsArb,
    children: depth === 0 ? fc.constant([]) : fc.array(treeArb(depth - 1), { maxLength: 3 }),
    pref64: fc.boolean(),
  });
}

function build(t: PciTopology, bus: BusNode, trees: Tree[], prefix: string): void {
  trees.forEach((tree, i) => {
    if (tree.children.length > 0) {
      const br = bridge(`${prefix}${i}br`, tree.pref64);
      t.attach(br, bus, i * 2, 0);
      build(t, t.secondaryBus(br), tree.children, `${prefix}${i}.`);
    }
    t.attach(device(`${prefix}${i}`, tree.bars), bus, i * 2 + 1, 0);
  });
}

function inside(w: Window | null, lo: bigint, hi: bigint): boolean {
  return w !== null && lo >= w.base && hi <= w.limit;
}

test('random topologies: every BAR naturally aligned, inside its window and every bridge window above it, nothing overlaps', () => {
  let placedRuns = 0;
  fc.assert(
    fc.property(fc.array(treeArb(3), { minLength: 1, maxLength: 4 }), (trees) => {
      const t = new PciTopology();
      build(t, t.addRootBus(0, 0), trees, 'd');
      renumberBuses(t);
      let result;
      try {
        result = allocateResources(t, { ...WINDOWS, io: { base: 0x1000n, limit: 0xffffn } });
      } catch (err) {
        assert.ok(err instanceof PciAllocationError, String(err));
        assert.match(err.message, /cannot place .* (BAR \d|window)/);
        return;
      }
      placedRuns++;
      const placed = result.bars.map((p) => ({ ...p, end: p.address + p.bar.size! - 1n }));
      for (const p of placed) {
        assert.equal(p.address % p.bar.size!, 0n, `${p.fn.id} BAR ${p.bar.index} alignment`);
        const w = p.bar.kind === 'io' ? { base: 0x1000n, limit: 0xffffn } : p.window === 'mem64' ? WINDOWS.mem64! : WINDOWS.mem32;
        assert.ok(inside(w, p.address, p.end), `${p.fn.id} BAR ${p.bar.index} outside the ${p.window} window`);
        if (p.bar.kind === 'mem64' && !p.bar.prefetchable) assert.ok(p.end < 1n << 32n, 'non-prefetchable stays below 4 GiB');
        let bus = t.busOf(p.fn);
        while (bus.bridge !== null) {
          const bw = bridgeWindows(bus.bridge);
          const win = p.bar.kind === 'io' ? bw.io : p.bar.prefetchable ? bw.pref : bw.mem;
          assert.ok(inside(win, p.address, p.end), `${p.fn.id} BAR ${p.bar.index} outside ${bus.bridge.id}'s window`);
          bus = bus.parent!;
        }
      }
      for (const a of placed) for (const b of placed) if (a !== b && (a.bar.kind === 'io') === (b.bar.kind === 'io')) assert.ok(a.end < b.address || b.end < a.address, `${a.fn.id}/${a.bar.index} overlaps ${b.fn.id}/${b.bar.index}`);
    }),
    { numRuns: 150 },
  );
  assert.ok(placedRuns > 75, `only ${placedRuns} of 150 random machines were placed`);
});

test('INTx swizzle: the standard table, and routes through nested bridges to a root slot and pin', () => {
  // PCI-to-PCI Bridge spec table 9-1: device 0 passes pins through, device 1 rotates by one...
  assert.deepEqual([1, 2, 3, 4].map((p) => swizzle(p as 1, 0)), [1, 2, 3, 4]);
  assert.deepEqual([1, 2, 3, 4].map((p) => swizzle(p as 1, 1)), [2, 3, 4, 1]);
  assert.deepEqual([1, 2, 3, 4].map((p) => swizzle(p as 1, 2)), [3, 4, 1, 2]);
  assert.deepEqual([1, 2, 3, 4].map((p) => swizzle(p as 1, 7)), [4, 1, 2, 3]);
  const t = new PciTopology();
  const root = t.addRootBus(0, 0);
  const outer = bridge('outer');
  t.attach(outer, root, 5, 0);
  const inner = bridge('inner');
  t.attach(inner, t.secondaryBus(outer), 3, 0);
  t.attach(device('leaf', [], 2), t.secondaryBus(inner), 2, 0);
  t.attach(device('flat', [], 4), root, 9, 0);
  t.attach(device('nopin', [], 0), root, 10, 0);
  renumberBuses(t);
  const routes = intxRoutes(t);
  const leaf = routes.find((r) => r.fn.id === 'leaf')!;
  // INTB of device 2 -> INTD at bridge "inner" (device 3) -> INTC at root slot 5.
  assert.deepEqual([leaf.pin, leaf.rootDevice, leaf.rootPin, leaf.bridges.map((b) => b.id)], [2, 5, 3, ['outer', 'inner']]);
  const flat = routes.find((r) => r.fn.id === 'flat')!;
  assert.deepEqual([flat.rootDevice, flat.rootPin], [9, 4]);
  assert.equal(routes.some((r) => r.fn.id === 'nopin'), false);
});
