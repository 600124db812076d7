import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { normalizeE820, totalOfType, type E820Map } from '../../src/hw/mem/e820.js';
import { formatLinux, formatXen } from '../../src/hw/mem/e820-format.js';
import { E820ParseError, parseE820Text, selectMap, type FoundMap } from '../../src/hw/mem/e820-parse.js';
import { fixture } from '../helpers/paths.js';

const DMESG = fixture('dmesg');
const read = (name: string): string => readFileSync(fixture('dmesg', name), 'utf8');
const parse = (name: string) => parseE820Text(read(name), name);
const labels = (maps: readonly FoundMap[]): string[] => maps.map((m) => `${m.label}:${m.entries.length}`);

/**
 * The oracle for every fixture with current-format lines is the kernel that wrote them: printing
 * the parsed map in Linux's format must give back the kernel's own lines, byte for byte.
 */
function kernelLines(text: string, label: string): string[] {
  return text
    .split('\n')
    .map((l) => l.match(new RegExp(`${label}: \\[mem .*$`))?.[0])
    .filter((l): l is string => l !== undefined);
}

test('every dmesg fixture yields the maps it holds; the one without a map gets a clear error', () => {
  const expected: Record<string, string[] | 'error'> = {
    'desktop-asrock-x370-pro4-amd-ryzen__arch-5.13.dmesg.head.txt': ['BIOS-e820:19'],
    'laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt': ['BIOS-e820:21'],
    'minipc-apple-macmini6-2__wrapped-ringbuffer-no-e820.dmesg.head.txt': 'error',
    'old-format__amd-rs690-syslog-prefixed-linux2.6.24.dmesg.excerpt.txt': ['BIOS-e820:9'],
    'old-format__asus-eeepc701-linux2.6.29.dmesg.excerpt.txt': ['BIOS-e820:10', 'modified:2'],
    'old-format__smp-ppro-linux2.4.5-ac6-2001.dmesg.excerpt.txt': ['BIOS-e820:9'],
    'qemu-kvm-q35-bochs__alma8.7.dmesg.head.txt': ['BIOS-e820:10'],
    'server-hp-proliant-dl360-g7-intel__pve-5.4.dmesg.head.txt': ['BIOS-e820:10'],
    'server-supermicro-h8dgu-amd-opteron__pve-4.15.dmesg.head.txt': ['BIOS-e820:9'],
    'xen-dom0-amd-890fx-ivrs__xen4.17-linux5.16.serial.excerpt.txt': ['Xen-e820:9', 'Xen:12', 'user:12'],
  };
  const files = readdirSync(DMESG).filter((f) => f.endsWith('.txt'));
  assert.deepEqual(files.sort(), Object.keys(expected).sort(), 'a fixture was added or removed: extend this table');
  for (const file of files) {
    const want = expected[file]!;
    if (want === 'error') {
      assert.throws(() => parse(file), (err: unknown) => {
        assert.ok(err instanceof E820ParseError);
        assert.match(err.message, /^minipc-apple.*: no E820 memory map found/);
        return true;
      });
    } else {
      assert.deepEqual(labels(parse(file).maps), want, file);
    }
  }
});

test('current-format maps print back exactly as the kernel printed them (inclusive ends)', () => {
  for (const file of readdirSync(DMESG).filter((f) => f.endsWith('.txt') && !f.startsWith('old-format') && !f.includes('no-e820'))) {
    const text = read(file);
    for (const map of parse(file).maps.filter((m) => m.format === 'linux')) {
      const normalized = normalizeE820(map.entries);
      assert.deepEqual(normalized.warnings, [], file);
      assert.deepEqual(formatLinux(normalized.map, map.label).trimEnd().split('\n'), kernelLines(text, map.label), `${file} ${map.label}`);
    }
  }
});

test('old-format maps (exclusive ends) print back as the kernel printed them, in Xen\'s classic layout', () => {
  for (const file of readdirSync(DMESG).filter((f) => f.startsWith('old-format'))) {
    const text = read(file);
    const map = selectMap(parse(file), file);
    assert.equal(map.format, 'linux-old');
    const original = text
      .split('\n')
      .map((l) => l.match(/BIOS-e820: (.*)$/)?.[1])
      .filter((l): l is string => l !== undefined);
    const printed = formatXen(normalizeE820(map.entries).map)
      .trimEnd()
      .split('\n')
      .map((l) => l.replace(/^\(XEN\) /, ''));
    assert.deepEqual(printed, original, file);
  }
});

test('inclusive and exclusive ends: the same firmware range read from both formats', () => {
  // eeePC (old, exclusive): 0000000000100000 - 000000007f780000 (usable)
  const old = selectMap(parse('old-format__asus-eeepc701-linux2.6.29.dmesg.excerpt.txt'), 'eeepc');
  assert.deepEqual(old.entries[3], { start: 0x100000n, end: 0x7f780000n, type: 'usable' });
  assert.deepEqual(old.entries[0], { start: 0n, end: 0x9fc00n, type: 'usable' });
  // X230 (new, inclusive): [mem 0x0000000000100000-0x000000001fffffff] usable
  const x230 = selectMap(parse('laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt'), 'x230');
  assert.deepEqual(x230.entries[3], { start: 0x100000n, end: 0x20000000n, type: 'usable' });
  // Xen's current format is inclusive too: [0000000000000000, 00000000000963ff] (usable)
  const xen = selectMap(parse('xen-dom0-amd-890fx-ivrs__xen4.17-linux5.16.serial.excerpt.txt'), 'xen');
  assert.equal(xen.label, 'Xen-e820');
  assert.deepEqual(xen.entries[0], { start: 0n, end: 0x96400n, type: 'usable' });
  assert.deepEqual(xen.entries[8], { start: 0x100000000n, end: 0x6b8000000n, type: 'usable' });
});

test('types: ACPI data/NVS, unknown numeric types kept by code, syslog prefixes ignored', () => {
  const asrock = selectMap(parse('desktop-asrock-x370-pro4-amd-ryzen__arch-5.13.dmesg.head.txt'), 'asrock');
  assert.deepEqual(asrock.entries[13], { start: 0xdcccc000n, end: 0xdcd5d000n, type: 'type-20' });
  assert.equal(asrock.entries[5]!.type, 'nvs');
  const rs690 = selectMap(parse('old-format__amd-rs690-syslog-prefixed-linux2.6.24.dmesg.excerpt.txt'), 'rs690');
  assert.deepEqual(rs690.entries[5], { start: 0x97fe3000n, end: 0x97ff0000n, type: 'acpi' });
  assert.deepEqual(rs690.entries[8], { start: 0xfec00000n, end: 0x100000000n, type: 'reserved' });
});

test('RAM totals agree with what the kernels themselves reported', () => {
  // Xen: "System RAM: 26623MB (27262104kB)" counts the whole pages of its usable ranges.
  const xen = selectMap(parse('xen-dom0-amd-890fx-ivrs__xen4.17-linux5.16.serial.excerpt.txt'), 'xen');
  const pages = normalizeE820(xen.entries)
    .map.entries.filter((e) => e.type === 'usable')
    .reduce((n, e) => n + e.end / 4096n - (e.start + 4095n) / 4096n, 0n);
  assert.equal(pages * 4n, 27262104n);
  assert.equal(totalOfType(normalizeE820(xen.entries).map), 27262104n * 1024n + 0x400n);
  // 2.4.5: "On node 0 totalpages: 65520" = the pages below the end of the last usable range.
  const ppro = normalizeE820(selectMap(parse('old-format__smp-ppro-linux2.4.5-ac6-2001.dmesg.excerpt.txt'), 'ppro').entries).map;
  const usable = ppro.entries.filter((e) => e.type === 'usable');
  assert.equal(usable[usable.length - 1]!.end / 4096n, 65520n);
});

test('the map selection prefers the machine map and can name another', () => {
  const r = parse('xen-dom0-amd-890fx-ivrs__xen4.17-linux5.16.serial.excerpt.txt');
  assert.equal(selectMap(r, 'x').label, 'Xen-e820');
  const user = selectMap(r, 'x', 'user');
  // dom0 booted with mem=2048M: its user map ends RAM at 2 GiB.
  assert.deepEqual(user.entries[2], { start: 0x100000n, end: 0x80000000n, type: 'usable' });
  assert.throws(() => selectMap(r, 'x', 'nope'), /no map labelled 'nope'; found: Xen-e820 \(line 5, 9 entries\)/);
  const eee = parse('old-format__asus-eeepc701-linux2.6.29.dmesg.excerpt.txt');
  assert.equal(selectMap(eee, 'e').label, 'BIOS-e820');
  assert.equal(selectMap(eee, 'e', 'modified').entries.length, 2);
});

test('sysfs listings, /proc/iomem and JSON parse; iomem read as non-root is refused with the reason', () => {
  const sysfs = [
    '/sys/firmware/memmap/0/end:0x9fbff',
    '/sys/firmware/memmap/0/start:0x0',
    '/sys/firmware/memmap/0/type:System RAM',
    '/sys/firmware/memmap/10/end:0xfebfffff',
    '/sys/firmware/memmap/10/start:0xeec00000',
    '/sys/firmware/memmap/10/type:Reserved',
    '/sys/firmware/memmap/2/end:0xbfffffff',
    '/sys/firmware/memmap/2/start:0x100000',
    '/sys/firmware/memmap/2/type:System RAM',
  ].join('\n');
  assert.deepEqual(parseE820Text(sysfs, 's').maps[0]!.entries, [
    { start: 0n, end: 0xa0000n - 0x400n, type: 'usable' },
    { start: 0x100000n, end: 0xc0000000n, type: 'usable' },
    { start: 0xeec00000n, end: 0xfec00000n, type: 'reserved' },
  ]);
  const iomem = [
    '00000000-00000fff : Reserved',
    '00001000-0009fbff : System RAM',
    '0009fc00-000fffff : Reserved',
    '  000f0000-000fffff : System ROM',
    '00100000-bfffffff : System RAM',
    '  01000000-0220bb07 : Kernel code',
    'c0001000-eebfffff : PCI Bus 0000:00',
    'bffe0000-bfffffff : ACPI Tables',
    '100000000-63fffffff : System RAM',
  ].join('\n');
  const r = parseE820Text(iomem, 'iomem');
  assert.equal(r.maps[0]!.entries.length, 6);
  assert.match(r.notes[0]!, /PCI Bus 0000:00/);
  // Overlap between "System RAM" and "ACPI Tables": ACPI wins, with a warning.
  const n = normalizeE820(r.maps[0]!.entries);
  assert.equal(n.warnings.length, 1);
  assert.match(n.warnings[0]!.message, /overlap at \[mem 0xbffe0000-0xbfffffff\] \(usable, acpi\): treated as acpi/);
  assert.throws(
    () => parseE820Text('00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n', '/proc/iomem'),
    /\/proc\/iomem: every address reads as zero.*root/,
  );
  const json = parseE820Text('{"entries":[{"start":"0x0","end":"0x9f000","type":"usable"},{"start":"0x100000","end":"0x200000","type":"1:1"}]}', 'j');
  assert.deepEqual(json.maps[0]!.entries[1], { start: 0x100000n, end: 0x200000n, type: '1:1' });
});

test('malformed entries are typed errors naming the input and line', () => {
  const cases: Array<[string, RegExp]> = [
    ['x\n[ 0.0] BIOS-e820: [mem 0x0000-0x00zz] usable\n', /^in: line 2: malformed BIOS-e820 memory map entry/],
    ['BIOS-e820: [mem 0x2000-0x0fff] usable\n', /^in: line 1: end 0x0fff is below start 0x2000 \(this format lists inclusive ends\)/],
    ['BIOS-e820: [mem 0x0-0x10000000000000000] usable\n', /beyond the 64-bit physical address space/],
    ['BIOS-e820: [mem 0x0-0xfff] bananas\n', /^in: line 1: unknown memory type 'bananas'/],
    ['(XEN)  [0000000000000000, zz] (usable)\n', /^in: line 1: malformed Xen memory map entry/],
    ['{"entries":[{"start":"0x0","end":"0x10","type":"ram"}]}', /^in: entries\[0\]\.type: unknown type "ram"/],
    ['{"entries":[{"start":0,"end":"0x10","type":"usable"}]}', /^in: entries\[0\]\.start: expected a hex string/],
    ['{"entries":[]}', /^in: entries: the map has no entries/],
    ['{"entries":', /^in: not valid JSON/],
    ['memmap/0/start:0x0\nmemmap/0/type:System RAM\n', /^in: line 1: entry 0 has no end/],
    ['hello\n', /^in: no E820 memory map found/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseE820Text(text, 'in'), (err: unknown) => err instanceof E820ParseError && re.test(err.message), text);
  }
});

test('the full 64-bit space: an entry ending at 0xffffffffffffffff ends (exclusively) at 2^64', () => {
  const r = parseE820Text('BIOS-e820: [mem 0xfffffffffffff000-0xffffffffffffffff] reserved\n', 'top');
  assert.deepEqual(r.maps[0]!.entries[0], { start: 0xfffffffffffff000n, end: 1n << 64n, type: 'reserved' });
  const printed = formatLinux(normalizeE820(r.maps[0]!.entries).map as E820Map);
  assert.equal(printed, 'BIOS-e820: [mem 0xfffffffffffff000-0xffffffffffffffff] reserved\n');
});

test('two boots in one log are two maps; Xen maps with date stamps and headers keep their labels; a BOM is ignored', () => {
  const log = [
    '\uFEFF[    0.000000] BIOS-provided physical RAM map:',
    '[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable',
    '[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000003fffffff] usable',
    '[    9.000000] something else',
    '[    0.000000] BIOS-provided physical RAM map:',
    '[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable',
    '[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000007fffffff] usable',
    '(XEN) [2022-01-18 10:00:00.123] Multiboot-e820 RAM map:',
    '(XEN) [2022-01-18 10:00:00.124]  0000000000000000 - 000000000009fc00 (usable)',
    '(XEN) [2022-01-18 10:00:00.125]  0000000000100000 - 0000000080000000 (usable)',
    '(XEN) [2022-01-18 10:00:00.126] Xen-e820 RAM map:',
    '(XEN) [2022-01-18 10:00:00.127]  [0000000000000000, 000000000009fbff] (usable)',
  ].join('\r\n');
  const r = parseE820Text(log, 'two');
  assert.deepEqual(labels(r.maps), ['BIOS-e820:2', 'BIOS-e820:2', 'Multiboot-e820:2', 'Xen-e820:1']);
  assert.equal(selectMap(r, 'two', 'BIOS-e820#2').entries[1]!.end, 0x80000000n);
  assert.equal(selectMap(r, 'two').label, 'Xen-e820');
  assert.equal(r.maps[2]!.format, 'xen-old');
  assert.equal(r.maps[3]!.format, 'xen');
});

test('an input cut inside a map is read as given, with a warning naming the line (issue 9, item 11)', () => {
  const name = 'laptop-lenovo-thinkpad-x230-intel__fedora37.dmesg.head.txt';
  const lines = read(name).split('\n');
  const last = lines.findLastIndex((l) => l.includes('BIOS-e820: [mem'));
  const whole = parseE820Text(lines.slice(0, last + 1).join('\n') + '\n', name);
  assert.equal(whole.warnings, undefined, 'a log that ends with a line end is not suspected');
  // Cut before `[mem`: the line is no entry, so the map is one short.
  const beforeEntry = parseE820Text([...lines.slice(0, last), lines[last]!.slice(0, lines[last]!.indexOf('[mem') + 2)].join('\n'), name);
  assert.equal(selectMap(beforeEntry, name).entries.length, selectMap(whole, name).entries.length - 1);
  assert.deepEqual(beforeEntry.warnings, [`line ${last + 1}: the input ends inside a line just after the BIOS-e820 map: the map may be cut short`]);
  // Cut inside the last entry's type: `type 12` read as `type 1` would be usable RAM.
  const typeCut = parseE820Text('BIOS-e820: [mem 0x0000000000000000-0x000000000009ffff] usable\nBIOS-e820: [mem 0x0000000000100000-0x00000000001fffff] type 1', 'cut');
  assert.deepEqual(typeCut.warnings, ["line 2: the input ends inside this line, the BIOS-e820 map's last entry: it may be cut short"]);
  // A memmap listing cut inside a value.
  const sysfs = parseE820Text('/sys/firmware/memmap/0/start:0x0\n/sys/firmware/memmap/0/end:0x9fbff\n/sys/firmware/memmap/0/type:System RAM\n/sys/firmware/memmap/1/type:System RAM\n/sys/firmware/memmap/1/start:0x100000\n/sys/firmware/memmap/1/end:0x7fffff', 'cut');
  assert.deepEqual(sysfs.warnings, ["line 6: the input ends inside this line, the sysfs map's last entry: it may be cut short"]);
  // Text after the map that merely lacks a final line end is no sign of a cut.
  assert.equal(parseE820Text(lines.slice(0, last + 3).join('\n'), name).warnings, undefined);
});
