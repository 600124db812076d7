import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as b from '../../../src/hw/acpi/aml/builder.js';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { AmlEncodeError } from '../../../src/hw/acpi/aml/errors.js';
import { parseAml } from '../../../src/hw/acpi/aml/parse.js';
import type { Term } from '../../../src/hw/acpi/aml/terms.js';
import { RegionSpace } from '../../../src/hw/acpi/aml/terms.js';
import { readResources } from '../../../src/hw/acpi/namespace/crs.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { readPrt } from '../../../src/hw/acpi/namespace/prt.js';
import type { Resource } from '../../../src/hw/acpi/resources/types.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { compileAsl, disassembleTable } from './asl.js';
import { HEADER_LENGTH } from './fixtures.js';

/**
 * The builder writes what a generated guest DSDT needs, and ACPICA's tools take the result as
 * valid AML: iasl -d disassembles it with no errors and its ASL says what was built; iasl
 * recompiles that ASL to the same bytes; acpiexec runs _PIC and _PRT and returns the routing.
 */

/** A table around `body`: the 36-byte header with a valid checksum. */
function table(signature: string, body: Uint8Array): Uint8Array {
  const t = new Uint8Array(HEADER_LENGTH + body.length);
  const dv = new DataView(t.buffer);
  const ascii = (s: string, at: number, len: number) => {
    for (let i = 0; i < len; i++) t[at + i] = i < s.length ? s.charCodeAt(i) : 0x20;
  };
  ascii(signature, 0, 4);
  dv.setUint32(4, t.length, true);
  t[8] = 2;
  ascii('HVMPT', 10, 6);
  ascii('GUEST', 16, 8);
  dv.setUint32(24, 1, true);
  ascii('HVMP', 28, 4);
  dv.setUint32(32, 1, true);
  t.set(body, HEADER_LENGTH);
  t[9] = (256 - (t.reduce((s, x) => s + x, 0) & 0xff)) & 0xff;
  return t;
}

const windows: Resource[] = [
  { type: 'AddressSpace', width: 16, space: { kind: 'bus' }, producer: true, subtractive: false, minFixed: true, maxFixed: true, granularity: 0n, min: 0n, max: 0xffn, translation: 0n, length: 0x100n },
  { type: 'Io', decode16: true, min: 0xcf8, max: 0xcf8, alignment: 1, length: 8 },
  { type: 'AddressSpace', width: 16, space: { kind: 'io', ranges: 'entire', typeTranslation: false, sparse: false }, producer: true, subtractive: false, minFixed: true, maxFixed: true, granularity: 0n, min: 0n, max: 0xcf7n, translation: 0n, length: 0xcf8n },
  { type: 'AddressSpace', width: 16, space: { kind: 'io', ranges: 'entire', typeTranslation: false, sparse: false }, producer: true, subtractive: false, minFixed: true, maxFixed: true, granularity: 0n, min: 0xd00n, max: 0xffffn, translation: 0n, length: 0xf300n },
  { type: 'AddressSpace', width: 32, space: { kind: 'memory', writable: true, caching: 'noncacheable', rangeType: 'memory', typeTranslation: false }, producer: true, subtractive: false, minFixed: true, maxFixed: true, granularity: 0n, min: 0xc000_0000n, max: 0xfebf_ffffn, translation: 0n, length: 0x3ec0_0000n },
  { type: 'AddressSpace', width: 64, space: { kind: 'memory', writable: true, caching: 'prefetchable', rangeType: 'memory', typeTranslation: false }, producer: true, subtractive: false, minFixed: true, maxFixed: true, granularity: 0n, min: 0x80_0000_0000n, max: 0xff_ffff_ffffn, translation: 0n, length: 0x80_0000_0000n },
];

const LINKS = ['LNKA', 'LNKB', 'LNKC', 'LNKD'];
/** Slots 1-4, INTx swizzled: slot s pin p -> link (s + p) % 4 and GSI 16 + that. */
const SLOTS = [1, 2, 3, 4];
const routes = SLOTS.flatMap((slot) => [0, 1, 2, 3].map((pin) => ({ slot, pin, link: (slot + pin) % 4 })));

const LEVEL_LOW_SHARED = { edge: false, activeLow: true, shared: true, wake: false } as const;

function linkDevice(n: number): Term {
  const irqs: Resource[] = [{ type: 'Irq', interrupts: [5, 10, 11], mode: LEVEL_LOW_SHARED }];
  return b.device(LINKS[n]!, [
    b.name('_HID', b.eisaId('PNP0C0F')),
    b.name('_UID', n + 1),
    b.name('_PRS', b.resourceTemplate(irqs)),
    b.method('_STA', 0, [b.ret(0x0b)]),
    b.method('_DIS', 0, []),
    b.method('_CRS', 0, [b.ret(b.resourceTemplate([{ type: 'Irq', interrupts: [10 + (n % 2)], mode: LEVEL_LOW_SHARED }]))]),
    b.method('_SRS', 1, []),
  ]);
}

function guestDsdt(): Term[] {
  const prt = (apic: boolean) =>
    b.pkg(...routes.map((r) => b.pkg(b.int((r.slot << 16) | 0xffff), r.pin, apic ? 0 : b.ref(LINKS[r.link]!), apic ? 16 + r.link : 0)));
  return [
    b.name('PICM', 0),
    b.method('_PIC', 1, [b.store(b.arg(0), b.ref('PICM'))]),
    b.scope('\\_SB', [
      b.device('PCI0', [
        b.name('_HID', b.eisaId('PNP0A08')),
        b.name('_CID', b.eisaId('PNP0A03')),
        b.name('_ADR', 0),
        b.name('_UID', 0),
        b.name('_CRS', b.resourceTemplate(windows)),
        b.name('PRTA', prt(true)),
        b.name('PRTP', prt(false)),
        b.method('_PRT', 0, [b.ifElse(b.ref('PICM'), [b.ret(b.ref('PRTA'))], [b.ret(b.ref('PRTP'))])]),
        ...SLOTS.map((slot) => b.device(`S${slot.toString(16).toUpperCase().padStart(2, '0')}0`, [b.name('_ADR', slot << 16), b.name('_SUN', slot)])),
        b.device('ISA', [
          b.name('_ADR', 0x00010000 + 0),
          b.device('COM1', [
            b.name('_HID', b.eisaId('PNP0501')),
            b.name('_UID', 1),
            b.name('_CRS', b.resourceTemplate([{ type: 'Io', decode16: true, min: 0x3f8, max: 0x3f8, alignment: 0, length: 8 }, { type: 'Irq', interrupts: [4] }])),
          ]),
        ]),
      ]),
      ...LINKS.map((_, n) => linkDevice(n)),
    ]),
  ];
}

test('a built guest DSDT disassembles cleanly and its ASL says what was built', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const body = encodeAml(guestDsdt());
  const d = disassembleTable(table('DSDT', body));
  assert.equal(d.status, 0, d.log);
  assert.doesNotMatch(d.log, /\b(Error|Warning)\b/, d.log);
  const asl = d.asl.replace(/\s*\/\/.*$/gm, '').replace(/\s*\/\*[\s\S]*?\*\//g, '');
  for (const line of [
    'Name (PICM, Zero)',
    'PICM = Arg0',
    'Scope (\\_SB)',
    'Device (PCI0)',
    'Name (_HID, EisaId ("PNP0A08"))',
    'Name (_CID, EisaId ("PNP0A03"))',
    'WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,',
    'IO (Decode16,',
    'WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,',
    'DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,',
    'QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Prefetchable, ReadWrite,',
    '0xC0000000,',
    '0x0000008000000000,',
    'Method (_PRT, 0, NotSerialized)',
    'If (PICM)',
    'Return (PRTA)',
    'Return (PRTP)',
    'Device (S010)',
    'Name (_SUN, One)',
    'Name (_SUN, 0x04)',
    'Device (COM1)',
    'Name (_HID, EisaId ("PNP0501"))',
    'IRQNoFlags ()',
    'Device (LNKA)',
    'Name (_HID, EisaId ("PNP0C0F"))',
    'IRQ (Level, ActiveLow, Shared, )',
    'Method (_SRS, 1, NotSerialized)',
  ]) {
    assert.ok(asl.includes(line), `ASL has: ${line}`);
  }
  assert.match(asl, /Package \(0x04\)\s*\{\s*0x0001FFFF,\s*Zero,\s*LNKB,\s*Zero\s*\}/);
  assert.match(asl, /Package \(0x04\)\s*\{\s*0x0004FFFF,\s*0x03,\s*Zero,\s*0x13\s*\}/);

  // iasl compiles its own disassembly back to exactly the bytes the builder wrote (-on: keep
  // name paths as written instead of shortening \_SB to _SB at the root).
  const again = compileAsl(d.asl, ['-on']);
  assert.deepEqual(again.subarray(HEADER_LENGTH), body);
});

test('the built DSDT reads back: namespace, _PRT in both interrupt models, _CRS windows', () => {
  const body = encodeAml(guestDsdt());
  const tree = parseAml(body, { table: 'DSDT', baseOffset: HEADER_LENGTH });
  assert.deepEqual(encodeAml(tree.terms), body);
  const ns = AcpiNamespace.build([tree]);
  const pci0 = ns.require('\\_SB.PCI0');
  assert.deepEqual(ns.findByHid('PNP0A03'), [pci0]);
  assert.deepEqual(ns.findByAdr(0x30000, pci0).map((d) => d.path), ['\\_SB_.PCI0.S030']);
  assert.equal(ns.hid(ns.require('\\_SB.PCI0.ISA.COM1')), 'PNP0501');
  const prt = readPrt(ns, pci0);
  assert.ok(prt?.kind === 'by-model');
  assert.deepEqual(prt.flags, ['\\PICM']);
  assert.deepEqual(
    prt.apic.entries.map((e) => [e.device, e.pin, e.source]),
    routes.map((r) => [r.slot, r.pin, { kind: 'gsi', gsi: 16 + r.link }]),
  );
  assert.deepEqual(
    prt.pic.entries.map((e) => [e.device, e.pin, e.source.kind === 'link' ? e.source.path : '']),
    routes.map((r) => [r.slot, r.pin, `\\_SB_.${LINKS[r.link]}`]),
  );
  const crs = readResources(ns, pci0);
  assert.ok(crs?.kind === 'template');
  assert.deepEqual(crs.template.resources, windows);
});

test('acpiexec runs the built _PIC and _PRT and returns the planned routing', (t) => {
  if (!skipUnlessCommand(t, 'acpiexec', 'acpica-tools')) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-acpiexec-'));
  try {
    writeFileSync(join(dir, 'dsdt.aml'), table('DSDT', encodeAml(guestDsdt())));
    const run = (cmd: string) => spawnSync('acpiexec', ['-b', cmd, join(dir, 'dsdt.aml')], { encoding: 'utf8', timeout: 60_000 });
    const apic = run('evaluate \\_PIC 1; evaluate \\_SB.PCI0._PRT');
    assert.equal(apic.status, 0, apic.stdout + apic.stderr);
    const pic = run('evaluate \\_PIC 0; evaluate \\_SB.PCI0._PRT');
    // acpiexec prints each entry as `[Package] Contains 4 Elements:` and four element lines.
    const entries = (out: string) =>
      out
        .split(/\[Package\] Contains 4 Elements:/)
        .slice(1)
        .map((chunk) =>
          [...chunk.matchAll(/\[(?:Integer\] = ([0-9A-F]+)|Object Reference\] = \S+ <Node>\s+Name (\w+))/g)]
            .slice(0, 4)
            .map((m) => (m[1] !== undefined ? parseInt(m[1], 16) : m[2]!)),
        );
    assert.deepEqual(entries(apic.stdout), routes.map((r) => [(r.slot << 16) | 0xffff, r.pin, 0, 16 + r.link]), apic.stdout);
    assert.deepEqual(entries(pic.stdout), routes.map((r) => [(r.slot << 16) | 0xffff, r.pin, LINKS[r.link], 0]), pic.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('builder input errors are AmlEncodeErrors', () => {
  assert.throws(() => b.name('TOOLONG', 1), AmlEncodeError);
  assert.throws(() => b.int(-1), AmlEncodeError);
  assert.throws(() => b.int(2 ** 60), /bigint/);
  assert.throws(() => b.method('M', 8, []), AmlEncodeError);
  assert.throws(() => b.local(8), AmlEncodeError);
  assert.throws(() => b.eisaId('PNP'), AmlEncodeError);
  assert.throws(() => encodeAml([{ kind: 'Integer', value: 300n, enc: 'byte' }]), /cannot be encoded as byte/);
  assert.equal(b.int(0x1_0000_0000n).enc, 'qword');
  assert.equal(b.pkg(...Array.from({ length: 300 }, (_, i) => i)).kind, 'VarPackage');
  assert.deepEqual([...encodeAml([b.operationRegion('REG0', RegionSpace.SystemIO, 0x80, 1), b.field('REG0', [['P80', 8]], { access: b.FieldAccess.Byte })])].slice(0, 2), [0x5b, 0x80]);
});
