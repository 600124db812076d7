import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadCapture } from '../../src/host/pci/load.js';
import type { AccessSize } from '../../src/hw/io.js';
import { MemoryBackend } from '../../src/hw/pci/backend.js';
import { standardRw1cMask } from '../../src/hw/pci/capabilities.js';
import { ConfigMechanism1 } from '../../src/hw/pci/cf8.js';
import { composePci, type ComposedPci } from '../../src/hw/pci/compose.js';
import { EcamWindow } from '../../src/hw/pci/ecam.js';
import { readLE } from '../../src/hw/pci/endian.js';
import { buildEmulatedFunction, msiCapability, pcieCapability } from '../../src/hw/pci/emulated.js';
import type { PciFunction } from '../../src/hw/pci/function.js';
import { buildRealFunction } from '../../src/hw/pci/real.js';
import { forwardsConfig } from '../../src/hw/pci/topology.js';
import { PCIUTILS_TESTS } from './helpers.js';

/**
 * Properties over random access sequences, on a whole composed machine: the ASUS P6T6 capture
 * with two devices hidden (one behind a bridge, one a function 0 with siblings), a bridge
 * hidden with a device behind it, a fake bridge with an emulated device, buses renumbered.
 */
const asus = loadCapture(join(PCIUTILS_TESTS, 'tree-asus-p6t6'));

function machine(): ComposedPci {
  return composePci({
    base: asus,
    hide: [
      { bdf: { segment: 0, bus: 7, device: 0, fn: 0 }, path: 'hide[0]' }, // NIC behind 00:1c.2
      { bdf: { segment: 0, bus: 0, device: 0x1a, fn: 0 }, path: 'hide[1]' }, // UHCI 1a.0: takes 1a.1, 1a.2, 1a.7 with it
      { bdf: { segment: 0, bus: 0, device: 0x1c, fn: 1 }, path: 'hide[2]' }, // root port 1c.1 and the NIC behind it
    ],
    bridges: [{ name: 'br', at: { kind: 'root', segment: 0, bus: 0, device: 5, fn: 0 }, path: 'bridges[0]' }],
    emulated: [
      {
        name: 'dev',
        at: { kind: 'behind', bridge: 'br', device: 0, fn: 0 },
        spec: {
          id: 'dev',
          vendorId: 0x1234,
          deviceId: 0x11e8,
          classCode: 0xff0000,
          interruptPin: 1,
          bars: [{ index: 0, kind: 'mem32', size: 0x10_0000 }, { index: 2, kind: 'mem64', size: 0x1000, prefetchable: true }],
          capabilities: [msiCapability({ vectors: 4, maskable: true }), pcieCapability()],
          registers: [{ offset: 0x60, size: 4, value: 0xffff_0000, writable: 0xffff_ffff, rw1c: 0xffff_0000 }],
        },
        path: 'emulated[0]',
      },
    ],
    renumber: true,
  });
}

/** Every function that must never be reached: hidden ones and everything that sits behind a hidden bridge or a hidden function 0. */
function forbidden(c: ComposedPci): PciFunction[] {
  const out = new Set<PciFunction>();
  const add = (fn: PciFunction): void => {
    out.add(fn);
    if (forwardsConfig(fn) && c.topology.isAttached(fn)) for (const f of c.topology.secondaryBus(fn).functions()) add(f);
  };
  for (const e of c.hidden) {
    add(e.fn);
    if (e.fn.fn === 0) for (const f of c.topology.busOf(e.fn).functions()) if (f.device === e.fn.device) add(f);
  }
  return [...out];
}

interface Op {
  readonly bus: number;
  readonly device: number;
  readonly fn: number;
  readonly reg: number;
  readonly size: AccessSize;
  readonly value: number | undefined;
}

/** Accesses CF8 can express: a dword-aligned register plus a lane offset within 0xCFC-0xCFF. */
function opArb(buses: readonly number[]): fc.Arbitrary<Op> {
  return fc
    .record({
      bus: fc.oneof(fc.constantFrom(...buses), fc.integer({ min: 0, max: 255 })),
      device: fc.oneof(fc.constantFrom(0, 0x1a, 0x1c, 0x1f, 3, 5, 7), fc.integer({ min: 0, max: 31 })),
      fn: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 7 })),
      dword: fc.oneof(fc.constantFrom(0x00, 0x04, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x3c), fc.integer({ min: 0, max: 63 }).map((d) => d * 4)),
      lane: fc.constantFrom<[number, AccessSize]>([0, 4], [0, 2], [2, 2], [1, 2], [0, 1], [1, 1], [2, 1], [3, 1]),
      value: fc.option(fc.oneof(fc.constant(0xffff_ffff), fc.constant(0), fc.integer({ min: 0, max: 0xffff_ffff })), { freq: 2 }),
    })
    .map((r) => ({ bus: r.bus, device: r.device, fn: r.fn, reg: r.dword + r.lane[0], size: r.lane[1], value: r.value ?? undefined }));
}

const BUSES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff];

function dumpState(c: ComposedPci): number[] {
  const out: number[] = [];
  for (const fn of c.topology.functions()) for (let o = 0; o < fn.length; o += 4) out.push(fn.read(o, 4));
  return out;
}

test('random access sequences through CF8/CFC and through ECAM give identical results and identical state', () => {
  fc.assert(
    fc.property(fc.array(opArb(BUSES), { minLength: 1, maxLength: 120 }), (ops) => {
      const a = machine();
      const b = machine();
      const cf8 = new ConfigMechanism1(a.topology);
      const ecam = new EcamWindow(b.topology, { base: 0xb000_0000n });
      for (const op of ops) {
        const address = (0x8000_0000 | (op.bus << 16) | (op.device << 11) | (op.fn << 8) | (op.reg & 0xfc)) >>> 0;
        const offset = (op.bus << 20) | (op.device << 15) | (op.fn << 12) | op.reg;
        cf8.writePort(0xcf8, 4, address);
        if (op.value === undefined) {
          assert.equal(cf8.readPort(0xcfc + (op.reg & 3), op.size), ecam.readMmio(offset, op.size));
        } else {
          const v = op.size === 4 ? op.value : op.value & ((1 << (8 * op.size)) - 1);
          cf8.writePort(0xcfc + (op.reg & 3), op.size, v);
          ecam.writeMmio(offset, op.size, v);
        }
      }
      assert.deepEqual(dumpState(a), dumpState(b));
      assert.deepEqual(
        a.topology.reachable().map((r) => `${r.bdf.bus}:${r.bdf.device}.${r.bdf.fn}`),
        b.topology.reachable().map((r) => `${r.bdf.bus}:${r.bdf.device}.${r.bdf.fn}`),
      );
    }),
    { numRuns: 60 },
  );
});

/**
 * A hidden function is a security boundary. Its methods are replaced by tripwires, then a
 * guest hammers CF8 (every port, width and alignment, with and without the enable bit) and
 * ECAM (any offset in and past the window, any alignment, crossing function boundaries) and
 * rewrites bridge bus numbers to try to route a bus onto a hidden device.
 */
test('hidden functions are never reached by any access path, width, alignment, alias or bridge renumbering', () => {
  const rawOp = fc.oneof(
    fc.record({ kind: fc.constant('cf8' as const), port: fc.integer({ min: 0xcf8, max: 0xcff }), size: fc.constantFrom<AccessSize>(1, 2, 4), value: fc.integer({ min: 0, max: 0xffff_ffff }), write: fc.boolean() }),
    fc.record({ kind: fc.constant('ecam' as const), offset: fc.oneof(fc.integer({ min: 0, max: (256 << 20) + 0x2000 }), fc.integer({ min: 0, max: 12 << 20 })), size: fc.constantFrom<AccessSize>(1, 2, 4), value: fc.integer({ min: 0, max: 0xffff_ffff }), write: fc.boolean() }),
    fc.record({ kind: fc.constant('renumber' as const), sec: fc.integer({ min: 0, max: 255 }), sub: fc.integer({ min: 0, max: 255 }), which: fc.nat() }),
    fc.record({ kind: fc.constant('scan' as const), bus: fc.constantFrom(...BUSES) }),
  );
  fc.assert(
    fc.property(fc.array(rawOp, { minLength: 1, maxLength: 150 }), (ops) => {
      const c = machine();
      const trapped = forbidden(c);
      assert.ok(trapped.length >= 7, `expected the hidden functions and those behind them, got ${trapped.length}`);
      for (const fn of trapped) {
        const trip = (): never => {
          throw new Error(`tripwire: hidden function ${fn.id} was accessed`);
        };
        fn.read = trip;
        fn.read32 = trip;
        fn.write = trip;
      }
      const cf8 = new ConfigMechanism1(c.topology, { extendedRegister: true });
      const ecam = new EcamWindow(c.topology, { base: 0xb000_0000n });
      const bridges = c.topology.reachable().filter((r) => forwardsConfig(r.fn));
      for (const op of ops) {
        switch (op.kind) {
          case 'cf8':
            if (op.write) cf8.writePort(op.port, op.size, op.value);
            else cf8.readPort(op.port, op.size);
            break;
          case 'ecam':
            if (op.write) ecam.writeMmio(op.offset, op.size, op.value);
            else ecam.readMmio(op.offset, op.size);
            break;
          case 'renumber': {
            const live = c.topology.reachable().filter((r) => forwardsConfig(r.fn));
            const target = live[op.which % Math.max(1, live.length)] ?? bridges[0]!;
            c.topology.writeConfig(0, target.bdf.bus, (target.bdf.device << 3) | target.bdf.fn, 0x19, 2, op.sec | (op.sub << 8));
            break;
          }
          case 'scan':
            for (let devfn = 0; devfn < 256; devfn++) {
              cf8.writePort(0xcf8, 4, (0x8000_0000 | (op.bus << 16) | (devfn << 8)) >>> 0);
              cf8.readPort(0xcfc, 4);
            }
            break;
        }
      }
      const reachable = new Set(c.topology.reachable().map((r) => r.fn));
      for (const fn of trapped) assert.ok(!reachable.has(fn), `${fn.id} became reachable`);
    }),
    { numRuns: 80 },
  );
});

/** Bytes of one function, with its writable and RW1C masks. */
function masks(fn: PciFunction): { writable: number[]; rw1c: number[] } {
  const writable: number[] = [];
  const rw1c: number[] = [];
  for (let o = 0; o < fn.length; o++) {
    const m = fn.masksAt(o);
    writable.push(m.writable);
    rw1c.push(m.rw1c);
  }
  return { writable, rw1c };
}

const writeArb = fc.record({
  reg: fc.oneof(fc.integer({ min: 0, max: 0x3f }), fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0x100, max: 0x2ff })),
  size: fc.constantFrom<AccessSize>(1, 2, 4),
  value: fc.oneof(fc.constant(0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })),
});

test('read-only bits never change, whatever the guest writes, on real, emulated and fake functions', () => {
  fc.assert(
    fc.property(fc.array(writeArb, { minLength: 1, maxLength: 200 }), fc.nat(), (writes, pick) => {
      const c = machine();
      const all = c.topology.reachable().map((r) => r.fn);
      const fn = all[pick % all.length]!;
      const { writable } = masks(fn);
      const before = Array.from({ length: fn.length }, (_, o) => fn.read(o, 1));
      for (const w of writes) {
        // Stay inside one dword, as CF8 and aligned ECAM accesses do.
        const reg = Math.min(w.reg, fn.length - 4);
        const size = (reg & 3) + w.size > 4 ? 1 : w.size;
        fn.write(reg, size, w.value);
      }
      for (let o = 0; o < fn.length; o++) {
        const ro = ~writable[o]! & 0xff;
        assert.equal(fn.read(o, 1) & ro, before[o]! & ro, `${fn.id} byte 0x${o.toString(16)}: read-only bits changed`);
      }
    }),
    { numRuns: 150 },
  );
});

/** A real PCI Express root port with AER, every RW1C status bit set in the capture. */
function dirtyRootPort(): PciFunction {
  const cap = loadCapture(join(PCIUTILS_TESTS, 'cap-aer-root')).functions[0]!;
  const bytes = new Uint8Array(cap.bytes);
  const set = (o: number, size: number, bits: number): void => {
    for (let i = 0; i < size; i++) bytes[o + i]! |= (bits >>> (8 * i)) & 0xff;
  };
  set(0x06, 2, 0xf900); // Status
  set(0x1e, 2, 0xf900); // Secondary status
  set(0x90 + 0x0a, 2, 0x000f); // PCIe DevSta
  set(0x90 + 0x12, 2, 0xc000); // LnkSta
  set(0x148 + 0x04, 4, 0x003f_f030); // AER uncorrectable status
  set(0x148 + 0x10, 4, 0x0000_31c1); // AER correctable status
  const read = (o: number, s: AccessSize): number => readLE(bytes, o, s);
  const backend = new MemoryBackend(bytes, { source: 'dirty', rw1c: standardRw1cMask(read, bytes.length, 1) });
  return buildRealFunction({ id: 'rp', backend }).fn;
}

test('RW1C: a write of 1 clears exactly the bits it covers; partial writes never clear unrelated bits', () => {
  const regs = [0x04, 0x1c, 0x98, 0x9c, 0xa0, 0x14c, 0x158, 0x60];
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.record({ dword: fc.constantFrom(...regs), lane: fc.constantFrom<[number, AccessSize]>([0, 4], [0, 2], [2, 2], [1, 2], [0, 1], [1, 1], [2, 1], [3, 1]), value: fc.integer({ min: 0, max: 0xffff_ffff }) }), { minLength: 1, maxLength: 60 }),
      (emulated, writes) => {
        const fn = emulated ? machine().topology.reachable().find((r) => r.fn.id === 'dev')!.fn : dirtyRootPort();
        const { rw1c } = masks(fn);
        const tracked = rw1c.map((m, o) => (m !== 0 ? o : -1)).filter((o) => o >= 0);
        assert.ok(tracked.length >= (emulated ? 2 : 8), 'the function has RW1C bits to test');
        const expect = new Map(tracked.map((o) => [o, fn.read(o, 1) & rw1c[o]!]));
        assert.ok([...expect.values()].some((v) => v !== 0), 'some RW1C bits start set');
        for (const w of writes) {
          const reg = w.dword + w.lane[0];
          if (reg + w.lane[1] > fn.length) continue;
          fn.write(reg, w.lane[1], w.value);
          for (let i = 0; i < w.lane[1]; i++) {
            const o = reg + i;
            const e = expect.get(o);
            if (e !== undefined) expect.set(o, e & ~((w.value >>> (8 * i)) & 0xff));
          }
          for (const [o, e] of expect) assert.equal(fn.read(o, 1) & rw1c[o]!, e, `byte 0x${o.toString(16)} after a ${w.lane[1]}-byte write at 0x${reg.toString(16)}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('an emulated function with no backend keeps every register in its own storage', () => {
  const { fn } = buildEmulatedFunction({ id: 'x', vendorId: 1, deviceId: 2, classCode: 0, registers: [{ offset: 0x40, size: 4, writable: 0xffff_ffff }] });
  fn.write(0x40, 4, 0x12345678);
  assert.equal(fn.getStored(0x40, 4), 0x12345678);
  assert.equal(fn.backend, null);
});
