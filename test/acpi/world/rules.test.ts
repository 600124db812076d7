import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as b from '../../../src/hw/acpi/aml/builder.js';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import type { Term } from '../../../src/hw/acpi/aml/terms.js';
import { RegionSpace } from '../../../src/hw/acpi/aml/terms.js';
import { readPrt } from '../../../src/hw/acpi/namespace/prt.js';
import { checksumOk } from '../../../src/hw/acpi/checksum.js';
import { tableHeader } from '../../../src/hw/acpi/tables/header.js';
import type { Dmar } from '../../../src/hw/acpi/tables/dmar.js';
import { decodeTable, encodeTable } from '../../../src/hw/acpi/tables/table.js';
import { applyRules } from '../../../src/hw/acpi/world/apply.js';
import { AcpiRuleError, type WorldRule } from '../../../src/hw/acpi/world/rules.js';
import { loadWorld, worldNamespace, type World } from '../../../src/hw/acpi/world/tables.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { compileAsl, disassembleTable } from '../aml/asl.js';
import { block, image, leftoverReferences, reparse } from './helpers.js';

/**
 * The world-view rules on tables built for the purpose, one reference kind at a time: what
 * each becomes when an object is hidden (docs/acpi.md, "Hiding"), the refusals and their
 * messages, and the other rules. The same guarantees on real machines' tables are in
 * fixtures.test.ts.
 */

const PCI0 = '\\_SB.PCI0';
const GFX = '\\_SB.PCI0.GFX0';

function dsdtTerms(): Term[] {
  return [
    b.name('PICM', 0),
    b.method('_PIC', 1, [b.store(b.arg(0), b.ref('PICM'))]),
    b.scope('\\_SB', [
      b.device('PCI0', [
        b.name('_HID', b.eisaId('PNP0A08')),
        b.name('_CID', b.eisaId('PNP0A03')),
        b.name('_BBN', 0),
        b.name('PRTA', b.pkg(b.pkg(b.int(0x3ffff), 0, 0, 16), b.pkg(b.int(0x5ffff), 0, 0, 18))),
        b.name('PRTP', b.pkg(b.pkg(b.int(0x3ffff), 0, b.ref('LNKA'), 0), b.pkg(b.int(0x5ffff), 0, b.ref('LNKX'), 0))),
        b.method('_PRT', 0, [b.ifElse(b.ref('PICM'), [b.ret(b.ref('PRTA'))], [b.ret(b.ref('PRTP'))])]),
        b.device('GFX0', [
          b.name('_ADR', 0x00020000),
          b.name('_PRW', b.pkg(0x0d, 3, b.ref('\\_SB.PWR0'))),
          b.operationRegion('GREG', RegionSpace.SystemMemory, 0xfe00_0000, 0x100),
          b.field('GREG', [['GST0', 8], ['GST1', 8]]),
          b.method('GSCI', 0, [b.store(1, b.ref('GST1'))]),
          b.method('_STA', 0, [b.ret(0x0f)]),
        ]),
        // The same PCI function described a second time, as some firmware does.
        b.device('VGA', [b.name('_ADR', 0x00020000)]),
        b.device('RP01', [b.name('_ADR', 0x001c0000), b.device('PXSX', [b.name('_ADR', 0)])]),
        b.device('LPCB', [b.name('_ADR', 0x001f0000), b.device('EC0', [b.name('_HID', b.eisaId('PNP0C09'))])]),
      ]),
      b.powerResource('PWR0', 0, 0, [b.method('_STA', 0, [b.ret(1)]), b.method('_ON', 0, []), b.method('_OFF', 0, [])]),
      b.device('LNKA', [b.name('_HID', b.eisaId('PNP0C0F')), b.name('_UID', 1)]),
      b.device('LNKX', [b.name('_HID', b.eisaId('PNP0C0F')), b.name('_UID', 2)]),
      b.device('DEP1', [b.name('_HID', 'HVM0002'), b.name('_DEP', b.pkg(b.ref(GFX), b.ref('\\_SB.PCI0.VGA')))]),
      b.device('PEPD', [b.name('_HID', 'INT33A1'), b.name('DEVY', b.pkg(b.pkg('\\_SB.PCI0.GFX0', 1, 0), b.pkg('\\_SB.PCI0.RP01', 1, 0)))]),
      b.device('DOCK', [b.name('_HID', 'HVM0003'), b.name('_EJD', '\\_SB.PCI0.GFX0')]),
      b.alias(GFX, 'GALS'),
    ]),
    b.scope('\\_GPE', [b.method('_L01', 0, [b.notify(b.ref(GFX), 0x80), b.ifElse({ kind: 'CondRefOf', operand: b.ref(GFX), target: null }, [b.call(`${GFX}.GSCI`)])])]),
    b.method('MAIN', 0, [
      b.ifElse(b.ref(`${GFX}.GST0`), [b.ret(1)]),
      b.store(b.ref(`${GFX}.GST0`), b.local(0)),
      b.store(5, b.ref(`${GFX}.GST1`)),
      b.ret(b.local(0)),
    ]),
  ];
}

function ssdtTerms(): Term[] {
  return [
    b.external(GFX, 6),
    b.external(`${GFX}.GSCI`, 8, 0),
    b.scope(GFX, [b.method('_DSM', 4, [b.ret(0)])]),
    b.method('SSDM', 0, [b.call(`${GFX}.GSCI`), b.ret(2)]),
  ];
}

function dmar(): Dmar {
  const scope = (device: number, fn: number, scopeType = 1) => ({ scopeType, flags: 0, enumerationId: 0, startBus: 0, path: [{ device, function: fn }] });
  return {
    kind: 'dmar',
    header: tableHeader('DMAR', 1),
    hostAddressWidth: 38,
    flags: 1,
    structures: [
      { type: 'drhd', flags: 0, size: 0, segment: 0, registerBaseAddress: 0xfed90000n, scopes: [scope(2, 0)] },
      { type: 'drhd', flags: 1, size: 0, segment: 0, registerBaseAddress: 0xfed91000n, scopes: [scope(0x1e, 7, 3)] },
      { type: 'rmrr', segment: 0, baseAddress: 0xdb000000n, endAddress: 0xdf1fffffn, scopes: [scope(2, 0)] },
      { type: 'rmrr', segment: 0, baseAddress: 0xd9000000n, endAddress: 0xd9ffffffn, scopes: [scope(0x1c, 0, 2), scope(0x14, 0)] },
    ],
  };
}

function world(extra: readonly ReturnType<typeof image>[] = []): World {
  return loadWorld([image('dsdt', block('DSDT', dsdtTerms())), image('ssdt1', block('SSDT', ssdtTerms(), 'GFXSSDT')), image('dmar', dmar()), ...extra]);
}

function ruleError(w: World, rules: readonly WorldRule[]): AcpiRuleError {
  try {
    applyRules(w, rules, 'rules.yaml');
  } catch (err) {
    if (err instanceof AcpiRuleError) return err;
    throw err;
  }
  assert.fail('expected an AcpiRuleError');
}

const hideGfx: WorldRule = { action: 'hide-device', pci: '00:02.0', references: 'neutralize', path: 'acpi.rules[0]' };

test('hiding a PCI device: every object describing it goes, and each kind of reference as documented', () => {
  const w = world();
  const before = worldNamespace(w);
  const r = applyRules(w, [hideGfx], 'rules.yaml');
  const { ns, trees } = reparse(r.tables);
  // Both objects for 00:02.0, with everything under them and the SSDT's Scope() extension.
  for (const p of [GFX, '\\_SB.PCI0.VGA', `${GFX}._DSM`, `${GFX}.GST0`]) assert.equal(ns.get(p), undefined, p);
  assert.deepEqual([...r.hiddenObjects].sort(), ['\\_SB_.PCI0.GFX0', '\\_SB_.PCI0.VGA_']);
  assert.deepEqual(r.hiddenPci, ['00:02.0']);
  // An alias of it and a Name whose whole value is its path go too.
  assert.equal(ns.get('\\_SB.GALS'), undefined);
  assert.equal(ns.get('\\_SB.DOCK._EJD'), undefined);
  assert.ok(ns.get('\\_SB.DOCK') !== undefined && ns.get('\\_SB.PWR0') !== undefined && ns.get('\\_SB.PCI0.RP01.PXSX') !== undefined);
  // A list of references loses the elements (the declared count follows); an indexed tuple keeps its shape.
  const dep = ns.valueOf(ns.require('\\_SB.DEP1._DEP'));
  assert.ok(dep?.kind === 'Package' && dep.count === 0 && dep.elements.length === 0);
  const devy = ns.valueOf(ns.require('\\_SB.PEPD.DEVY'));
  assert.ok(devy?.kind === 'Package' && devy.elements.length === 2);
  assert.deepEqual(
    devy.elements.map((e) => (e.kind === 'Package' && e.elements[0]?.kind === 'String' ? e.elements[0].value : '?')),
    ['', '\\_SB.PCI0.RP01'],
  );
  // Code: Notify removed; CondRefOf is Zero; the call under it removed; reads are Zero; the write removed.
  const gpe = ns.require('\\_GPE._L01').term;
  assert.deepEqual(encodeAml([gpe!]), encodeAml([b.method('_L01', 0, [b.ifElse(0, [])])]));
  const main = ns.require('\\MAIN').term;
  assert.deepEqual(encodeAml([main!]), encodeAml([b.method('MAIN', 0, [b.ifElse(0, [b.ret(1)]), b.store(0, b.local(0)), b.ret(b.local(0))])]));
  const ssdm = ns.require('\\SSDM').term;
  assert.deepEqual(encodeAml([ssdm!]), encodeAml([b.method('SSDM', 0, [b.ret(2)])]));
  // The SSDT's Externals of it are gone.
  assert.ok(!ns.get(GFX));
  // Nothing in any table still names it.
  assert.deepEqual(leftoverReferences(trees, before, new Set(r.hiddenObjects.flatMap((p) => [...before.nodes(before.require(p))].map((n) => n.path)))), []);
  // The DMAR loses the scopes naming 00:02.0, and the structures left without one; the IOAPIC scope and others stay.
  const d = r.tables.find((t) => t.signature === 'DMAR')!;
  const pruned = decodeTable(d.bytes) as Dmar;
  assert.deepEqual(pruned.structures.map((s) => s.type), ['drhd', 'rmrr']);
  assert.equal(d.status, 'changed');
  for (const t of r.tables) assert.ok(checksumOk(t.bytes), `${t.name} checksum`);
  assert.deepEqual(r.outcomes[0]!.done[0], 'hidden: \\_SB_.PCI0.GFX0, \\_SB_.PCI0.VGA_ (PCI 00:02.0): removed 5 declaration(s), 2 External(s), 1 Notify statement(s), 1 CondRefOf(s) made Zero, 2 package element(s), 1 name string(s) in packages (made empty), 2 read(s) made Zero, 3 statement(s) calling or writing it');
});

test('by default a reference that would dangle is refused, naming each; nothing is returned', () => {
  const w = world();
  const e = ruleError(w, [{ ...hideGfx, references: undefined }]);
  assert.equal(e.where.input, 'rules.yaml');
  const messages = e.problems.map((p) => `${p.path}: ${p.message}`);
  assert.ok(messages.includes('acpi.rules[0]: dsdt: \\_SB.PCI0.GFX0.GST0 in \\MAIN refers to hidden \\_SB_.PCI0.GFX0.GST0 (a read in a method body)'), messages.join('\n'));
  assert.ok(messages.some((m) => /ssdt1: \\_SB\.PCI0\.GFX0\.GSCI in \\SSDM refers to hidden .*a call standing as a statement/.test(m)), messages.join('\n'));
  assert.match(messages[messages.length - 1]!, /set `references: neutralize`/);
  // The input world is a value: it is as it was.
  assert.deepEqual(encodeAml(w.tables[0]!.terms!), encodeAml(dsdtTerms()));
});

test('hiding by path, _HID and _ADR: subtrees, link devices in _PRT entries, and the selectors\' errors', () => {
  const w = world();
  const r = applyRules(w, [
    { action: 'hide-device', devicePath: '\\_SB.PCI0.RP01', path: 'r0' },
    { action: 'hide-device', hid: 'PNP0C09', path: 'r1' },
    { action: 'hide-device', devicePath: '\\_SB.LNKX', path: 'r2' },
    { action: 'hide-device', adr: 0x001f0000, path: 'r3' },
  ]);
  const { ns } = reparse(r.tables);
  for (const p of ['\\_SB.PCI0.RP01', '\\_SB.PCI0.RP01.PXSX', '\\_SB.PCI0.LPCB', '\\_SB.LNKX']) assert.equal(ns.get(p), undefined, p);
  // The PIC-mode entry through the hidden link is gone; the APIC one stays.
  const prt = readPrt(ns, ns.require(PCI0));
  assert.ok(prt?.kind === 'by-model');
  assert.deepEqual(prt.pic.entries.map((e) => e.device), [3]);
  assert.deepEqual(prt.apic.entries.map((e) => e.device), [3, 5]);
  // The PEPD tuple naming RP01 keeps its place, without the name.
  const devy = ns.valueOf(ns.require('\\_SB.PEPD.DEVY'));
  assert.ok(devy?.kind === 'Package' && devy.elements[1]?.kind === 'Package' && devy.elements[1].elements[0]?.kind === 'String' && devy.elements[1].elements[0].value === '');

  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => `${p.path}: ${p.message}`);
  assert.deepEqual(problems({ action: 'hide-device', hid: 'ABC0000', path: 'r' }), ['r: no device matches _HID/_CID ABC0000']);
  assert.deepEqual(problems({ action: 'hide-device', devicePath: '\\_SB.PCI0.GFX0.GSCI', path: 'r' }), ['r.devicePath: \\_SB_.PCI0.GFX0.GSCI is a Method; hide-device hides Device, Processor, ThermalZone and PowerResource objects']);
  assert.deepEqual(problems({ action: 'hide-device', pci: '03:00.0', path: 'r' }), ['r.pci: bus 03 is not a root bus of the tables (root bridges: \\_SB_.PCI0 (bus 00)); name a function behind a bridge by its path, e.g. 00:1c.4/00.0']);
  assert.deepEqual(problems({ action: 'hide-device', pci: '00:1f', path: 'r' }), ['r.pci: expected a PCI address like 00:1f.3, or a path through bridges like 00:1c.4/00.0, got "00:1f"']);
  assert.deepEqual(problems({ action: 'hide-device', hid: 'X', pci: '00:02.0', path: 'r' }), ['r: give exactly one of devicePath, hid, adr, pci (2 given)']);
  assert.deepEqual(problems({ action: 'hide-device', pci: '00:1c.0/00.1', path: 'r' }), ['r: no device matches PCI 00:1c.0/00.1']);
  // optional: no match is no error.
  assert.equal(applyRules(w, [{ action: 'hide-device', pci: '00:1c.0/00.1', optional: true, path: 'r' }]).outcomes[0]!.done[0], 'nothing matched (optional)');
});

test('an IVRS cannot be edited to hide a PCI function: refused until the IVRS is hidden', () => {
  const ivrs = { kind: 'raw' as const, header: tableHeader('IVRS', 2), body: new Uint8Array(12) };
  const w = world([image('ivrs', ivrs)]);
  assert.match(ruleError(w, [hideGfx]).message, /ivrs \(IVRS\) names PCI functions by requester ID.*hide the IVRS too/);
  const r = applyRules(w, [{ action: 'hide-table', signature: 'IVRS', path: 'a' }, hideGfx]);
  assert.ok(!r.tables.some((t) => t.signature === 'IVRS'));
});

test('hide-table: by signature and OEM table id, the objects only it declared, refusals', () => {
  const w = world();
  // The SSDT declares GFX0._DSM only; hiding it leaves the DSDT's references alone.
  const r = applyRules(w, [{ action: 'hide-table', oemTableId: 'GFXSSDT', path: 'r0' }, { action: 'hide-table', signature: 'DMAR', path: 'r1' }]);
  assert.deepEqual(r.tables.map((t) => t.name), ['dsdt']);
  assert.deepEqual(r.removed.map((x) => x.name), ['ssdt1', 'dmar']);
  assert.deepEqual(r.hiddenObjects, ['\\_SB_.PCI0.GFX0._DSM', '\\SSDM']);
  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => p.message);
  assert.match(problems({ action: 'hide-table', signature: 'DSDT', path: 'r' })[0]!, /would hide the DSDT \(dsdt\); the guest needs one/);
  assert.match(problems({ action: 'hide-table', signature: 'XYZW', path: 'r' })[0]!, /matches no table \(there are: DSDT\/TEST, SSDT\/GFXSSDT, DMAR\/HVMPT\)/);
  assert.match(problems({ action: 'hide-table', path: 'r' })[0]!, /give a signature, an oemTableId or an oemId/);
  // A table declaring something the others use: refused, or kept unresolved on request.
  const user = image('ssdt2', block('SSDT', [b.external('\\SSDM', 8, 0), b.method('USER', 0, [b.call('\\SSDM')])], 'USER'));
  const w2 = world([user]);
  assert.match(ruleError(w2, [{ action: 'hide-table', oemTableId: 'GFXSSDT', path: 'r' }]).message, /ssdt2: \\SSDM in \\USER refers to hidden \\SSDM/);
  const kept = applyRules(w2, [{ action: 'hide-table', oemTableId: 'GFXSSDT', references: 'keep', path: 'r' }]);
  assert.match(kept.outcomes[0]!.done.join(' '), /2 reference\(s\) kept/);
  const n = applyRules(w2, [{ action: 'hide-table', oemTableId: 'GFXSSDT', references: 'neutralize', path: 'r' }]);
  const { ns } = reparse(n.tables);
  assert.equal(ns.get('\\SSDM'), undefined);
  assert.deepEqual(encodeAml([ns.require('\\USER').term!]), encodeAml([b.method('USER', 0, [])]));
});

test('replace-method and patch-method from specs; their errors', () => {
  const w = world();
  const r = applyRules(w, [
    { action: 'replace-method', method: `${GFX}._STA`, source: { kind: 'spec', body: [{ return: 0 }] }, path: 'r0' },
    { action: 'patch-method', method: '\\MAIN', prepend: [{ store: 7, to: { local: 1 } }], append: [{ return: 3 }], path: 'r1' },
  ]);
  const { ns } = reparse(r.tables);
  assert.deepEqual(encodeAml([ns.require(`${GFX}._STA`).term!]), encodeAml([b.method('_STA', 0, [b.ret(0)])]));
  const main = ns.require('\\MAIN').term;
  assert.ok(main?.kind === 'Method' && main.body.length === 6 && main.body[0]!.kind === 'Store' && main.body[5]!.kind === 'Return');
  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => `${p.path}: ${p.message}`);
  assert.deepEqual(problems({ action: 'replace-method', method: '\\NOPE', source: { kind: 'spec', body: [] }, path: 'r' }), ['r.method: no object \\NOPE in the tables']);
  assert.deepEqual(problems({ action: 'replace-method', method: '\\PICM', source: { kind: 'spec', body: [] }, path: 'r' }), ['r.method: \\PICM is a Name, not a Method']);
  assert.deepEqual(problems({ action: 'replace-method', method: '\\MAIN', source: { kind: 'spec', body: [{ return: { ref: 'TOOLONG' } }] }, path: 'r' }), [
    'r.body[0].return: invalid name segment "TOOLONG": 1-4 of A-Z 0-9 _, not starting with a digit',
  ]);
  assert.deepEqual(problems({ action: 'patch-method', method: '\\MAIN', path: 'r' }), ['r: give statements to prepend or append']);
});

test('patch-method and replace-method check the names their statements use, as add-ssdt checks its scopes (issue 9, item 10)', () => {
  const w = world();
  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => `${p.path}: ${p.message}`);
  assert.deepEqual(problems({ action: 'patch-method', method: '\\MAIN', prepend: [{ store: 1, to: { ref: '\\NOPE' } }], path: 'r' }), [
    'r.prepend[0]: \\NOPE names no object the tables or \\MAIN declare (the OS would stop the method there with AE_NOT_FOUND; an external statement declares what another table loads at run time)',
  ]);
  assert.deepEqual(problems({ action: 'patch-method', method: `${GFX}._STA`, append: [{ call: 'GSCI', args: [1] }, { notify: 'NONE', value: 0x80 }], path: 'r' }), [
    'r.append[0]: calls GSCI with 1 argument(s); it takes 0',
    'r.append[1]: NONE names no object the tables or \\_SB_.PCI0.GFX0._STA declare (the OS would stop the method there with AE_NOT_FOUND; an external statement declares what another table loads at run time)',
  ]);
  assert.deepEqual(problems({ action: 'replace-method', method: '\\MAIN', source: { kind: 'spec', body: [{ call: '\\PICM' }] }, path: 'r' }), ['r.body[0]: calls \\PICM, which is a Name, not a method']);
  // Found by ACPI's search from the method's scope, declared by the statements themselves, or by an external.
  const ok = applyRules(w, [
    {
      action: 'patch-method',
      method: `${GFX}._STA`,
      prepend: [{ call: 'GSCI' }, { store: 1, to: { ref: 'GST1' } }, { store: { ref: 'PICM' }, to: { local: 0 } }, { name: 'TMP0', value: 1 }, { store: 2, to: { ref: 'TMP0' } }],
      append: [{ external: '\\ZZZZ', type: 'int' }, { store: 3, to: { ref: '\\ZZZZ' } }],
      path: 'r',
    },
  ]);
  assert.equal(ok.outcomes.length, 1);
});

test('replace-method from a compiled AML snippet: its body in place, its argument count checked', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const w = world();
  const snippet = compileAsl('DefinitionBlock ("", "SSDT", 2, "HVMPT", "SNIPPET", 1) {\n External (\\_SB.PCI0.GFX0, DeviceObj)\n External (\\_SB.PCI0.GFX0.GST0, FieldUnitObj)\n Scope (\\_SB.PCI0.GFX0) { Method (GSCI, 0) { \\_SB.PCI0.GFX0.GST0 = 0x55\n Return (One) } }\n}\n');
  const r = applyRules(w, [{ action: 'replace-method', method: `${GFX}.GSCI`, source: { kind: 'aml', file: 'gsci.aml', bytes: snippet }, path: 'r0' }]);
  const { ns } = reparse(r.tables);
  assert.deepEqual(encodeAml([ns.require(`${GFX}.GSCI`).term!]), encodeAml([b.method('GSCI', 0, [b.store(0x55, b.ref('\\_SB.PCI0.GFX0.GST0')), b.ret(1)])]));
  const two = compileAsl('DefinitionBlock ("", "SSDT", 2, "HVMPT", "SNIPPET", 1) { Method (GSCI, 2) { Return (Arg1) } }\n');
  assert.deepEqual(
    ruleError(w, [{ action: 'replace-method', method: `${GFX}.GSCI`, source: { kind: 'aml', file: 'gsci2.aml', bytes: two }, path: 'r' }]).problems.map((p) => `${p.path}: ${p.message}`),
    ['r.aml: gsci2.aml\'s \\GSCI takes 2 argument(s), \\_SB_.PCI0.GFX0.GSCI takes 0: callers in the tables were parsed with 0'],
  );
});

test('add-ssdt: checked as the OS would load it', () => {
  const w = world();
  const r = applyRules(w, [
    { action: 'add-ssdt', source: { kind: 'spec', oemTableId: 'ADDED', body: [{ scope: '\\_SB', body: [{ device: 'HVM0', hid: 'HVM0001', uid: 0, sta: 15 }] }] }, path: 'r0' },
  ]);
  const added = r.tables.find((x) => x.status === 'added')!;
  assert.equal(added.name, 'ssdt2');
  const { ns } = reparse(r.tables);
  assert.equal(ns.hid(ns.require('\\_SB.HVM0')), 'HVM0001');
  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => p.message);
  assert.deepEqual(problems({ action: 'add-ssdt', source: { kind: 'spec', body: [{ scope: '\\_SB.PCI0', body: [{ device: 'GFX0' }] }] }, path: 'r' }), [
    'declares \\_SB_.PCI0.GFX0, which dsdt already declares (the OS would refuse the table: AE_ALREADY_EXISTS)',
  ]);
  assert.deepEqual(problems({ action: 'add-ssdt', source: { kind: 'spec', body: [{ scope: '\\_SB.NOPE', body: [{ name: 'X', value: 1 }] }] }, path: 'r' }), ['opens Scope (\\_SB_.NOPE), which no table declares']);
  assert.deepEqual(problems({ action: 'add-ssdt', source: { kind: 'aml', file: 'x.aml', bytes: encodeTable(dmar()) }, path: 'r' }), ['x.aml is a dmar table, not an SSDT']);
});

test('rewrite-prt: static GSIs, links in both models, a method choosing by \\_PIC\'s flag; errors', () => {
  const w = world();
  const routes = [
    { device: 3, pin: 0, gsi: 11, link: '\\_SB.LNKA' },
    { device: 4, pin: 1, gsi: 10, link: 'LNKX' },
  ];
  const byModel = applyRules(w, [{ action: 'rewrite-prt', routes, path: 'r' }]);
  let prt = readPrt(reparse(byModel.tables).ns, PCI0);
  assert.ok(prt?.kind === 'by-model');
  assert.deepEqual(prt.flags, ['\\PICM']);
  assert.deepEqual(prt.apic.entries.map((e) => [e.device, e.pin, e.source.kind === 'gsi' ? e.source.gsi : -1]), [[3, 0, 11], [4, 1, 10]]);
  assert.deepEqual(prt.pic.entries.map((e) => (e.source.kind === 'link' ? e.source.path : '')), ['\\_SB_.LNKA', '\\_SB_.LNKX']);
  const gsiOnly = applyRules(w, [{ action: 'rewrite-prt', routes: routes.map(({ device, pin, gsi }) => ({ device, pin, gsi })), path: 'r' }]);
  prt = readPrt(reparse(gsiOnly.tables).ns, PCI0);
  assert.ok(prt?.kind === 'static' && prt.from === '\\_SB_.PCI0._PRT' && prt.entries.length === 2);
  const problems = (rule: WorldRule) => ruleError(w, [rule]).problems.map((p) => `${p.path}: ${p.message}`);
  assert.deepEqual(problems({ action: 'rewrite-prt', routes: [{ device: 3, pin: 0, gsi: 1 }, { device: 3, pin: 0, gsi: 2 }], path: 'r' }), ['r.routes[1]: slot 3 pin A is already routed by routes[0]']);
  assert.deepEqual(problems({ action: 'rewrite-prt', routes: [{ device: 3, pin: 0, link: 'LNKQ' }], path: 'r' }), ['r.routes[0].link: no link device LNKQ in the tables']);
  assert.deepEqual(problems({ action: 'rewrite-prt', routes: [{ device: 3, pin: 0, gsi: 1 }, { device: 4, pin: 0, link: 'LNKA' }], path: 'r' }), [
    'r.routes: mixed routes: give every route a gsi and a link (APIC and PIC tables), or every route the same one of them',
  ]);
  assert.deepEqual(problems({ action: 'rewrite-prt', bridge: '\\_SB.PWR0', routes: [{ device: 3, pin: 0, gsi: 1 }], path: 'r' }), ['r.bridge: \\_SB_.PWR0 is a PowerResource, not a Device']);
  assert.deepEqual(problems({ action: 'rewrite-prt', routes: [{ device: 32, pin: 4 }], path: 'r' }), ['r.routes[0].device: device 32 is not 0-31', 'r.routes[0].pin: pin 4 is not 0-3 (INTA-INTD)', 'r.routes[0]: give a gsi, a link, or both']);
});

test('a bad rule after good ones: an error naming it, and no result', () => {
  const w = world();
  const e = ruleError(w, [hideGfx, { action: 'hide-table', signature: 'NONE', path: 'acpi.rules[1]' }]);
  assert.equal(e.problems.length, 1);
  assert.match(e.message, /^rules\.yaml: acpi\.rules\[1\]: matches no table/);
});

test('iasl and acpiexec take the rewritten tables: no errors, the hidden device gone from the disassembly', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const r = applyRules(world(), [hideGfx, { action: 'rewrite-prt', routes: [{ device: 3, pin: 0, gsi: 11, link: 'LNKA' }], path: 'r' }]);
  for (const table of r.tables) {
    const d = disassembleTable(table.bytes);
    assert.equal(d.status, 0, d.log);
    assert.doesNotMatch(d.log.replace(/iASL Warning: There w(as|ere) \d+ external control methods?[\s\S]*$/, ''), /\b(Error|Warning)\b/, d.log);
    assert.doesNotMatch(d.asl, /GFX0|Device \(VGA\)|GALS/, table.name);
  }
});
