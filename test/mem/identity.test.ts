import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { normalizeE820, totalOfType, type E820Map } from '../../src/hw/mem/e820.js';
import { formatLinux, formatXen } from '../../src/hw/mem/e820-format.js';
import { parseE820Text, selectMap } from '../../src/hw/mem/e820-parse.js';
import { IdentityPlanError, planIdentity } from '../../src/hw/mem/identity.js';
import { escapeForEtcDefaultGrub, exactmapParams } from '../../src/hw/mem/kernel-params.js';
import { MiB } from '../../src/hw/mem/range.js';
import { REPO_ROOT, fixture } from '../helpers/paths.js';

function load(path: string): E820Map {
  return normalizeE820(selectMap(parseE820Text(readFileSync(path, 'utf8'), path), path).entries).map;
}
const SEED = join(REPO_ROOT, 'examples', 'mem', 'seed-host.dmesg');

test('the seed-style Xen example is reproduced from a host with 2,120,036,352 bytes of RAM', () => {
  const host = load(SEED);
  assert.equal(totalOfType(host), 2_120_036_352n);
  const plan = planIdentity(host, { size: 0x67f00000n, above: 0x7400000n });
  const text = formatXen(plan.hostAfter, { header: [`NEO: Machine Available RAM: ${plan.hostRamBefore}`] });
  assert.deepEqual(text.split('\n').slice(0, 4), [
    '(XEN) NEO: Machine Available RAM: 2120036352',
    '(XEN) 0000000000000000 - 000000000008f000 (usable)',
    '(XEN) 0000000000100000 - 0000000007400000 (usable)',
    '(XEN) 0000000007400000 - 000000006f300000 (1:1)',
  ]);
  assert.equal(text.split('\n')[4], '(XEN) 000000006f300000 - 000000007e644000 (usable)');
  assert.deepEqual(plan.kernelParams, ['memmap=1663M$116M']);
  assert.deepEqual(plan.kernelParamsGrub, ['memmap=1663M\\$116M']);
  assert.equal(escapeForEtcDefaultGrub(plan.kernelParams[0]!), 'memmap=1663M\\\\\\$116M');
  assert.equal(plan.hostRamAfter, 2_120_036_352n - 0x67f00000n);
  // The carve parses back from Xen's format with its (1:1) type.
  const back = selectMap(parseE820Text(text, 'xen'), 'xen');
  assert.deepEqual(normalizeE820(back.entries).map, plan.hostAfter);
});

test('the guest map: RAM only in its identity region plus private low RAM; every host non-RAM range mirrored in place', () => {
  const host = load(SEED);
  const plan = planIdentity(host, { size: 0x67f00000n, above: 0x7400000n });
  const g = plan.guests[0]!;
  assert.deepEqual(g.identity, [{ start: 0x7400000n, end: 0x6f300000n }]);
  assert.deepEqual(g.lowMemory, [{ start: 0n, end: 0x8f000n }]);
  assert.equal(
    formatLinux(g.e820, 'user'),
    [
      'user: [mem 0x0000000000000000-0x000000000008efff] usable',
      'user: [mem 0x0000000007400000-0x000000006f2fffff] usable',
      'user: [mem 0x000000007e644000-0x000000007e6b3fff] ACPI NVS',
      'user: [mem 0x000000007e6b4000-0x000000007e6c3fff] ACPI data',
      'user: [mem 0x000000007e6c4000-0x000000007fffffff] reserved',
      'user: [mem 0x00000000e0000000-0x00000000efffffff] reserved',
      'user: [mem 0x00000000fec00000-0x00000000fec00fff] reserved',
      'user: [mem 0x00000000fee00000-0x00000000fee00fff] reserved',
      'user: [mem 0x00000000ffe00000-0x00000000ffffffff] reserved',
      '',
    ].join('\n'),
  );
  assert.deepEqual(exactmapParams(g.e820).slice(0, 5), [
    'memmap=exactmap',
    'memmap=572K@0',
    'memmap=1663M@116M',
    'memmap=448K%0x7e644000+4',
    'memmap=64K#0x7e6b4000',
  ]);
  const none = planIdentity(host, { size: 0x67f00000n, above: 0x7400000n, lowMemory: 'none' }).guests[0]!;
  assert.equal(none.e820.entries[0]!.start, 0x7400000n);
});

test('several guests get disjoint aligned regions; limits, reservations and the host share are honoured', () => {
  const host = load(fixture('dmesg', 'server-hp-proliant-dl360-g7-intel__pve-5.4.dmesg.head.txt'));
  const request = {
    size: 1024n * MiB,
    align: 1024n * MiB,
    below: 0x100000000n,
    reservations: [{ start: 0n, end: 1024n * MiB, owner: 'hypervisor' as const, name: 'xen heap' }],
  };
  const two = planIdentity(host, { ...request, guests: 2 });
  assert.deepEqual(
    two.guests.map((g) => g.identity),
    [[{ start: 0x40000000n, end: 0x80000000n }], [{ start: 0x80000000n, end: 0xc0000000n }]],
  );
  // Touching carves are one kernel parameter.
  assert.deepEqual(two.kernelParams, ['memmap=2G$1G']);
  assert.throws(
    () => planIdentity(host, { ...request, guests: 3 }),
    (err: unknown) =>
      err instanceof IdentityPlanError &&
      /no room for guest 2's 1 GiB in one contiguous region: the largest free 1 GiB-aligned block left is 526577664 bytes \(502\.2 MiB\), of 2674065408 bytes \(2550\.2 MiB\) of carvable RAM \(usable RAM from 0x100000 to 0x100000000, outside reservations\)/.test(err.message),
  );
  // Without the 4 GiB limit the third lands above 4 GiB.
  const three = planIdentity(host, { ...request, below: undefined, guests: 3 });
  assert.deepEqual(three.guests[2]!.identity, [{ start: 0x100000000n, end: 0x140000000n }]);
  // Split across holes when allowed.
  const window = { align: 2n * MiB, above: 0xc0000000n, below: 0x140000000n };
  assert.throws(() => planIdentity(host, { ...window, size: 0x50000000n }), IdentityPlanError);
  const split = planIdentity(host, { ...window, size: 0x50000000n, maxRegionsPerGuest: 2 });
  assert.deepEqual(split.guests[0]!.identity, [
    { start: 0xc0000000n, end: 0xdf62f000n },
    { start: 0x100000000n, end: 0x1309d1000n },
  ]);
  assert.deepEqual(split.kernelParams, ['memmap=0x1f62f000$3G', 'memmap=0x309d1000$4G']);
  // The host must keep its share.
  assert.throws(() => planIdentity(load(SEED), { size: 1904n * MiB }), /would leave the host 123547648 bytes \(117\.8 MiB\) of RAM, less than the 256 MiB it must keep/);
  assert.equal(planIdentity(load(SEED), { size: 1904n * MiB, hostKeep: 100n * MiB }).hostRamAfter, 123547648n);
});

test('bad requests are refused with the field named', () => {
  const host = load(SEED);
  const cases: Array<[object, RegExp]> = [
    [{ size: 0n }, /identity request: size: size 0 must be a positive multiple of 4 KiB/],
    [{ size: 0x1001n }, /size: /],
    [{ size: MiB, align: 3n * MiB }, /align: alignment .* power of two/],
    [{ size: MiB, guests: 0 }, /guests: /],
    [{ size: MiB, above: 0x80000000n, below: 0x40000000n }, /below: the address window .* is empty/],
    [{ size: MiB, devices: [{ guest: 1, start: 0n, end: 0x1000n, name: 'x', kind: 'bar' }] }, /devices\[0\]\.guest: guest 1 does not exist/],
  ];
  for (const [req, re] of cases) {
    assert.throws(() => planIdentity(host, { size: 0n, ...req } as Parameters<typeof planIdentity>[1]), re);
  }
});

test('private low RAM is whole pages: a map whose low RAM ends mid-page (QEMU\'s and most firmware\'s 0x9fc00) gives the guest the pages below it', () => {
  const host = normalizeE820([
    { start: 0n, end: 0x9fc00n, type: 'usable' },
    { start: 0x9fc00n, end: 0xa0000n, type: 'reserved' },
    { start: 0xf0000n, end: 0x100000n, type: 'reserved' },
    { start: 0x100000n, end: 0x7fee0000n, type: 'usable' },
  ]).map;
  const g = planIdentity(host, { size: 256n * MiB, above: 2n * MiB }).guests[0]!;
  assert.deepEqual(g.lowMemory, [{ start: 0n, end: 0x9f000n }]);
  for (const r of [...g.lowMemory, ...g.identity]) assert.ok(r.start % 4096n === 0n && r.end % 4096n === 0n, `${r.start}-${r.end} is whole pages`);
});
