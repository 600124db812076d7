import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeE820 } from '../../src/hw/mem/e820.js';
import { planIdentity } from '../../src/hw/mem/identity.js';
import { ProtectionMap } from '../../src/hw/mem/protection.js';
import { MiB } from '../../src/hw/mem/range.js';

const TOP = 1n << 64n;
const host = normalizeE820([
  { start: 0n, end: 0x9f000n, type: 'usable' },
  { start: 0x9f000n, end: 0xa0000n, type: 'reserved' },
  { start: 0xf0000n, end: 0x100000n, type: 'reserved' },
  { start: 0x100000n, end: 0x7ff00000n, type: 'usable' },
  { start: 0x7ff00000n, end: 0x80000000n, type: 'acpi' },
  { start: 0xfec00000n, end: 0xfec01000n, type: 'reserved' },
  { start: 0x100000000n, end: 0x180000000n, type: 'usable' },
  { start: 0xfffffffffffff000n, end: TOP, type: 'reserved' },
]).map;

const plan = planIdentity(host, {
  size: 256n * MiB,
  guests: 2,
  above: 16n * MiB,
  reservations: [{ start: 0x1000000n, end: 0x2000000n, owner: 'hypervisor', name: 'heap' }],
  devices: [
    { guest: 0, start: 0xe0000000n, end: 0xe1000000n, name: '01:00.0 BAR0', kind: 'bar' },
    { guest: 0, start: 0xe1000000n, end: 0xe1001000n, name: '01:00.0 BAR2', kind: 'bar' },
    { guest: 0, start: 0xe2000000n, end: 0xe2020000n, name: '01:00.0 ROM', kind: 'firmware' },
    // Refused: sub-page BAR (its page holds other registers), a BAR over host ACPI memory, one over another guest's RAM.
    { guest: 0, start: 0xe3000000n, end: 0xe3000100n, name: '02:00.0 BAR1', kind: 'bar' },
    { guest: 0, start: 0x7ff00000n, end: 0x80000000n, name: 'evil BAR', kind: 'bar' },
    { guest: 0, start: 0x12000000n, end: 0x12001000n, name: 'aliasing BAR', kind: 'bar' },
    { guest: 1, start: 0xf0000000n, end: 0xf0100000n, name: '03:00.0 BAR0', kind: 'bar' },
  ],
});
const g0 = plan.guests[0]!.protection;
const g1 = plan.guests[1]!.protection;
const ok = (p: ProtectionMap, start: bigint, end: bigint, want: 'read' | 'write' = 'write'): boolean =>
  p.mayMap({ start, end }, want).allowed;

test('the guest may map its RAM, its BARs and its ROM read-only, and nothing it was refused', () => {
  assert.deepEqual(plan.guests[0]!.identity, [{ start: 0x2000000n, end: 0x12000000n }]);
  assert.deepEqual(plan.guests[1]!.identity, [{ start: 0x12000000n, end: 0x22000000n }]);
  assert.ok(ok(g0, 0x2000000n, 0x12000000n));
  assert.ok(ok(g0, 0xe0000000n, 0xe1001000n), 'two adjacent BARs in one mapping');
  assert.ok(ok(g0, 0xe2000000n, 0xe2020000n, 'read'));
  assert.equal(ok(g0, 0xe2000000n, 0xe2001000n, 'write'), false);
  assert.deepEqual(
    g0.rejected.map((r) => [r.grant.name, r.reason.replace(/ at .*$/, '')]),
    [
      ['02:00.0 BAR1', '[0xe3000000, 0xe3000100) is not page aligned; the guest can only reach it through trapped accesses'],
      ['evil BAR', '[0x7ff00000, 0x80000000) overlaps host acpi memory'],
      ['aliasing BAR', '[0x12000000, 0x12001000) overlaps host RAM'],
    ],
  );
  assert.equal(ok(g0, 0xe3000000n, 0xe3001000n), false);
  assert.equal(ok(g1, 0xe0000000n, 0xe1000000n), false, "guest 1 may not map guest 0's BAR");
  assert.ok(ok(g1, 0xf0000000n, 0xf0100000n));
});

test('mayMap refuses ranges that straddle an edge of what is granted', () => {
  for (const [s, e] of [
    [0x1fff000n, 0x2001000n], // starts in the hypervisor's reservation
    [0x11fff000n, 0x12001000n], // runs into guest 1's RAM
    [0xdffff000n, 0xe0001000n], // starts in the hole below BAR0
    [0xe1000000n, 0xe1002000n], // runs past BAR2
    [0x2000000n, 0xe0000000n], // RAM to BAR with a gap between
    [0n, 0x1000n], // the host's low memory
    [0x9f000n, 0xa0000n], // host-reserved EBDA
  ] as const) {
    const d = g0.mayMap({ start: s, end: e });
    assert.equal(d.allowed, false, `[${s.toString(16)}, ${e.toString(16)})`);
    if (!d.allowed) assert.match(d.reason, /is not in any range this guest may map/);
  }
});

test('mayMap refuses empty, inverted, negative, unaligned and wrapping ranges', () => {
  const cases: Array<[bigint, bigint, RegExp]> = [
    [0x2000000n, 0x2000000n, /empty or inverted/],
    [0x3000000n, 0x2000000n, /empty or inverted/],
    [-0x1000n, 0x2000000n, /negative/],
    [0x2000800n, 0x2001000n, /not page aligned/],
    [0x2000000n, 0x2000800n, /not page aligned/],
    [0x2000001n, 0x2001001n, /not page aligned/],
    [0xfffffffffffff000n, TOP + 0x1000n, /past the top of the 64-bit address space/],
    [0n, TOP * 2n, /past the top/],
  ];
  for (const [start, end, re] of cases) {
    const d = g0.mayMap({ start, end });
    assert.equal(d.allowed, false);
    if (!d.allowed) assert.match(d.reason, re);
  }
  // (start, size) pairs that wrap past 2^64 are denied, not wrapped to low memory.
  const wrap = g0.mayMapSpan(0xfffffffffffff000n, 0x2001000n);
  assert.equal(wrap.allowed, false);
  assert.equal(g0.mayMapSpan(0x2000000n, 0n).allowed, false);
  assert.equal(g0.mayMapSpan(0x2000000n, -0x1000n).allowed, false);
  assert.ok(g0.mayMapSpan(0x2000000n, 0x1000n).allowed);
  // The top page of the space is host-reserved here; a mapping ending exactly at 2^64 is judged, not rejected as overflow.
  const top = g0.mayMap({ start: 0xfffffffffffff000n, end: TOP });
  assert.equal(top.allowed, false);
  if (!top.allowed) assert.match(top.reason, /not in any range/);
});

test('a protection map built by hand admits nothing that overlaps what is forbidden or already granted', () => {
  const p = ProtectionMap.build(
    [
      { start: 0x1000n, end: 0x3000n, access: 'rw', kind: 'ram', name: 'a' },
      { start: 0x2000n, end: 0x4000n, access: 'rw', kind: 'bar', name: 'b' },
      { start: 0x4000n, end: 0x6000n, access: 'rw', kind: 'bar', name: 'c' },
      { start: 0x8000n, end: 0x8000n, access: 'rw', kind: 'bar', name: 'empty' },
      { start: 0xfffffffffffff000n, end: TOP + 0x1000n, access: 'rw', kind: 'bar', name: 'wraps' },
    ],
    [{ start: 0x5fffn, end: 0x6000n, owner: 'hypervisor' }],
  );
  assert.deepEqual(p.grants.map((g) => g.name), ['a']);
  assert.deepEqual(p.rejected.map((r) => r.grant.name), ['b', 'c', 'empty', 'wraps']);
  assert.equal(p.grantAt(0x2fffn)?.name, 'a');
  assert.equal(p.grantAt(0x3000n), undefined);
});
