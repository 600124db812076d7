import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { normalizeE820, type E820Entry, type E820Type } from '../../src/hw/mem/e820.js';
import { IdentityPlanError, planIdentity, type DeviceWindow } from '../../src/hw/mem/identity.js';
import { MiB, overlaps, subtractRanges, unionRanges, type AddressRange } from '../../src/hw/mem/range.js';

const TYPES: E820Type[] = ['usable', 'usable', 'usable', 'reserved', 'acpi', 'nvs', 'unusable', 'pmem', '1:1', 'type-20'];
const PAGE = 0x1000n;

/** Random maps: page-granular entries anywhere below 16 GiB, overlapping freely, plus the odd one near 2^64. */
const entryArb = fc
  .record({
    page: fc.bigInt({ min: 0n, max: (16n << 30n) / PAGE }),
    pages: fc.bigInt({ min: 0n, max: (2n << 30n) / PAGE }),
    type: fc.constantFrom(...TYPES),
    high: fc.boolean(),
  })
  .map(({ page, pages, type, high }): E820Entry => {
    const start = high ? (1n << 64n) - (pages + 1n) * PAGE : page * PAGE;
    return { start, end: start + pages * PAGE, type };
  });
const mapArb = fc.array(entryArb, { minLength: 1, maxLength: 24 });

test('normalization is idempotent and leaves sorted, disjoint, merged entries', () => {
  fc.assert(
    fc.property(mapArb, (entries) => {
      const once = normalizeE820(entries);
      const twice = normalizeE820(once.map.entries);
      assert.deepEqual(twice.map, once.map);
      assert.deepEqual(twice.warnings, []);
      const es = once.map.entries;
      for (let i = 1; i < es.length; i++) {
        assert.ok(es[i - 1]!.end <= es[i]!.start, 'sorted and disjoint');
        assert.ok(es[i - 1]!.end < es[i]!.start || es[i - 1]!.type !== es[i]!.type, 'merged');
      }
      // Every byte listed in the input is listed in the output, and nothing else.
      assert.deepEqual(unionRanges(es), unionRanges(entries));
    }),
    { numRuns: 300 },
  );
});

test('property: no guest-accessible range overlaps a host-reserved or hypervisor range, and guests never share a region', () => {
  const requestArb = fc.record({
    sizeMiB: fc.integer({ min: 1, max: 2048 }),
    guests: fc.integer({ min: 1, max: 4 }),
    alignShift: fc.integer({ min: 12, max: 30 }),
    aboveMiB: fc.integer({ min: 0, max: 4096 }),
    maxRegions: fc.integer({ min: 1, max: 3 }),
    reservations: fc.array(
      fc.record({ startMiB: fc.integer({ min: 0, max: 16384 }), sizeMiB: fc.integer({ min: 1, max: 1024 }) }),
      { maxLength: 3 },
    ),
    // Device windows aimed anywhere, including on top of RAM, reservations and each other.
    devices: fc.array(
      fc.record({
        guest: fc.nat(3),
        page: fc.bigInt({ min: 0n, max: (17n << 30n) / PAGE }),
        pages: fc.bigInt({ min: 0n, max: 4096n }),
        skew: fc.constantFrom(0n, 0n, 0n, 0x800n),
        firmware: fc.boolean(),
      }),
      { maxLength: 6 },
    ),
  });
  let planned = 0;
  fc.assert(
    fc.property(mapArb, requestArb, (entries, r) => {
      const host = normalizeE820(entries).map;
      const reservations = r.reservations.map((x, i) => ({
        start: BigInt(x.startMiB) * MiB,
        end: BigInt(x.startMiB + x.sizeMiB) * MiB,
        owner: 'hypervisor' as const,
        name: `r${i}`,
      }));
      const devices: DeviceWindow[] = r.devices
        .filter((d) => d.guest < r.guests)
        .map((d, i) => ({
          guest: d.guest,
          start: d.page * PAGE + d.skew,
          end: (d.page + d.pages) * PAGE,
          name: `dev${i}`,
          kind: d.firmware ? 'firmware' : 'bar',
        }));
      let plan;
      try {
        plan = planIdentity(host, {
          size: BigInt(r.sizeMiB) * MiB,
          guests: r.guests,
          align: 1n << BigInt(r.alignShift),
          above: BigInt(r.aboveMiB) * MiB,
          maxRegionsPerGuest: r.maxRegions,
          reservations,
          devices,
          hostKeep: 0n,
        });
      } catch (err) {
        if (err instanceof IdentityPlanError) return;
        throw err;
      }
      planned++;
      const hostRam = host.entries.filter((e) => e.type === 'usable');
      const hostNonRam = host.entries.filter((e) => e.type !== 'usable');
      const all = plan.guests.flatMap((g) => g.identity);
      // Regions: inside host RAM, above 1 MiB, clear of reservations, pairwise disjoint, the requested size.
      for (const g of plan.guests) {
        assert.equal(g.identity.reduce((s, x) => s + x.end - x.start, 0n), BigInt(r.sizeMiB) * MiB);
        for (const x of g.identity) {
          assert.deepEqual(subtractRanges([x], hostRam), [], 'identity inside host RAM');
          assert.ok(x.start >= MiB);
          for (const res of reservations) assert.ok(!overlaps(x, res));
        }
      }
      for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) assert.ok(!overlaps(all[i]!, all[j]!), 'guests overlap');
      // Protection: every grant avoids host non-RAM, host RAM not its own, reservations, low memory, other guests.
      for (const g of plan.guests) {
        const others = subtractRanges(all, g.identity);
        const hostOnly = subtractRanges(hostRam, g.identity);
        const denied: AddressRange[] = [...hostNonRam, ...hostOnly, ...reservations, ...others, { start: 0n, end: MiB }];
        for (const grant of g.protection.grants) {
          for (const d of denied) assert.ok(!overlaps(grant, d), `grant ${grant.name} overlaps a forbidden range`);
          assert.equal(grant.start % PAGE, 0n);
          assert.equal(grant.end % PAGE, 0n);
        }
        // And the decision agrees: a probe is allowed only inside grants.
        for (const d of denied) {
          const s = (d.start / PAGE) * PAGE;
          const e = ((d.end + PAGE - 1n) / PAGE) * PAGE;
          if (e <= 1n << 64n && s < e) assert.equal(g.protection.mayMap({ start: s, end: e }, 'read').allowed, false);
        }
        // Guest E820: RAM only in its identity regions and private low memory; host non-RAM mirrored.
        const guestRam = g.e820.entries.filter((e) => e.type === 'usable');
        assert.deepEqual(subtractRanges(guestRam, [...g.identity, ...g.lowMemory]), []);
        assert.deepEqual(subtractRanges(hostNonRam.filter((e) => e.type !== '1:1'), g.e820.entries.filter((e) => e.type !== 'usable')), []);
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(planned > 50, `only ${planned} of 300 random requests could be planned: the generator is too harsh to test much`);
});
