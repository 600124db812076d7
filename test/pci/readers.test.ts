import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCapture } from '../../src/host/pci/load.js';
import { parseLspciDump } from '../../src/host/pci/lspci-dump.js';
import { parseResourceFile, readSysfsTree } from '../../src/host/pci/sysfs.js';
import { formatBdf } from '../../src/hw/pci/address.js';
import { PciDumpError } from '../../src/hw/pci/errors.js';
import { fuzzPciDumps } from '../../fuzz/pci-dump.js';
import { skipUnlessCommand } from '../helpers/require.js';
import { run } from '../helpers/run.js';
import { PCIUTILS_TESTS } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'hvmpt-readers-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('lspci dumps: addresses with and without domains, captured lengths, BAR sizes from -v text', () => {
  const virtio = loadCapture(join(PCIUTILS_TESTS, 'cap-vendor-virtio'));
  assert.deepEqual(virtio.functions.map((f) => formatBdf(f.bdf)), ['00:09.0', '00:04.0'], 'file order kept');
  const net = virtio.functions[0]!;
  assert.equal(net.bytes.length, 256);
  assert.deepEqual([...net.barSizes], [[0, 32n], [1, 4096n], [2, 512n << 10n], [6, 256n << 10n]]);
  const fs = virtio.functions[1]!;
  assert.equal(fs.barSizes.get(2), 1n << 30n, '[size=1G]');
  const domains = loadCapture(join(PCIUTILS_TESTS, 'PCI-X-bridges-and-domains'));
  assert.ok(domains.withDomains);
  assert.ok(domains.functions.some((f) => f.bdf.segment === 4));
  assert.equal(loadCapture(join(PCIUTILS_TESTS, 'tree-asus-p6t6')).functions[0]!.bytes.length, 4096);
});

test('malformed dumps are typed errors that name the file and line', () => {
  const cases: Array<[string, RegExp]> = [
    ['00:00.0 x\n00: 86 80 zz 12\n', /line 2: malformed hex line/],
    ['00:00.0 x\nff0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n', /line 2: offset 0x1000 is past the 4096 bytes/],
    ['00:00.0 x\n00: 86 80 12 34\n', /line 1: 00:00.0 has 4 bytes of config space; at least the 64-byte header/],
    ['hello\nworld\n', /no PCI functions found/],
    [`00:00.0 a\n${'00: ' + '00 '.repeat(15) + '00'}\n${'30: ' + '00 '.repeat(15) + '00'}\n\n00:00.0 b\n`, /line 5: function 0000:00:00.0 appears twice \(first at line 1\)/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseLspciDump(text, 'dump.txt'),
      (err: unknown) => {
        assert.ok(err instanceof PciDumpError, String(err));
        assert.equal(err.where.input, 'dump.txt');
        assert.match(err.message, re);
        return true;
      },
    );
  }
});

test('a raw config binary is recognised; its address comes from --bdf', () => {
  const bytes = new Uint8Array(256);
  bytes.set([0x86, 0x80, 0x37, 0x12, 0, 0, 0, 0, 2, 0, 0, 6]);
  const file = join(work, 'config');
  writeFileSync(file, bytes);
  const c = loadCapture(file, { bdf: { segment: 0, bus: 0, device: 3, fn: 0 } });
  assert.equal(formatBdf(c.functions[0]!.bdf), '00:03.0');
  assert.deepEqual([...c.functions[0]!.bytes.slice(0, 4)], [0x86, 0x80, 0x37, 0x12]);
  writeFileSync(join(work, 'short'), new Uint8Array(10));
  assert.throws(() => loadCapture(join(work, 'short')), /10 bytes: a config space holds at least the 64-byte header/);
});

test('sysfs resource files give BAR and ROM sizes', () => {
  const text = [
    '0x00000000fe000000 0x00000000fe003fff 0x0000000000040200',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x000000000000c000 0x000000000000c01f 0x0000000000040101',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x0000000000000000 0x0000000000000000 0x0000000000000000',
    '0x00000000fe040000 0x00000000fe07ffff 0x0000000000046200',
  ].join('\n');
  assert.deepEqual([...parseResourceFile(text, 'resource')], [[0, 0x4000n], [2, 32n], [6, 0x40000n]]);
  assert.throws(() => parseResourceFile('garbage here\n', 'resource'), /resource: line 1: expected "0xSTART 0xEND 0xFLAGS"/);
});

test("this machine's own PCI functions read through sysfs match lspci, byte for byte and size for size (read-only)", (t) => {
  if (!skipUnlessCommand(t, 'lspci', 'pciutils')) return;
  const sys = '/sys/bus/pci/devices';
  if (!existsSync(sys) || readdirSync(sys).length === 0) {
    const why = `SKIPPED (no ${sys} on this machine): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return;
  }
  const capture = readSysfsTree(sys);
  assert.ok(capture.functions.length > 0);
  for (const f of capture.functions) {
    const bdf = formatBdf(f.bdf, true);
    const r = run('lspci', ['-xxxx', '-vv', '-s', bdf]);
    assert.equal(r.status, 0, r.stderr);
    const theirs = parseLspciDump(r.stdout, `lspci -s ${bdf}`).functions[0]!;
    // lspci shows what the kernel lets it read, as hvmpt does: same length, same bytes.
    assert.deepEqual([...f.bytes], [...theirs.bytes], `${bdf} config bytes`);
    for (const [index, size] of theirs.barSizes) assert.equal(f.barSizes.get(index), size, `${bdf} BAR ${index} size`);
  }
});

test('fuzzing the dump readers with mutated real dumps: typed errors only, no crash, no hang (sample)', () => {
  // The bound is a hang guard, not a timing: 2 s per input failed on a loaded machine (load 7+, two test files at once).
  const r = fuzzPciDumps(400, 20240601, 60_000);
  assert.deepEqual(r.failures.map((f) => f.error.split('\n')[0]), []);
  assert.ok(r.accepted > 50 && r.rejected > 50, `both outcomes exercised: ${r.accepted} accepted, ${r.rejected} rejected`);
});

test('a dump cut inside a function is read as lspci -F reads it, with a warning naming the line (issue 9, item 11)', () => {
  const text = [
    '00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma] (rev 02)',
    ...Array.from({ length: 4 }, (_, i) => `${(i * 16).toString(16).padStart(2, '0')}: ${Array(16).fill('00').join(' ')}`),
    '',
    '00:01.0 ISA bridge: Intel Corporation 82371SB PIIX3 ISA [Natoma/Triton II]',
    ...Array.from({ length: 4 }, (_, i) => `${(i * 16).toString(16).padStart(2, '0')}: ${Array(16).fill('00').join(' ')}`),
    `40: ${Array(7).fill('00').join(' ')}`,
  ].join('\n');
  const c = parseLspciDump(text, 'cut.lspci');
  assert.equal(c.functions.length, 2);
  assert.equal(c.functions[1]!.bytes.length, 71);
  assert.deepEqual(c.warnings, ['line 12: 00:01.0 has 71 bytes of config space, not the 64, 256 or 4096 lspci prints: the dump may be cut short here']);
  assert.equal(parseLspciDump(text.split('\n').slice(0, 11).join('\n') + '\n', 'whole').warnings, undefined);
});
