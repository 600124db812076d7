import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { parseAml, parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import type { Term } from '../../../src/hw/acpi/aml/terms.js';
import { editTermLists, visitTerms } from '../../../src/hw/acpi/aml/walk.js';
import * as b from '../../../src/hw/acpi/aml/builder.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { disassembleTable } from './asl.js';
import { allMachines, HEADER_LENGTH } from './fixtures.js';

test('hiding a device subtree: its Device and Scope terms go, everything else stays the same objects', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools') || !skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const m = allMachines().find((x) => x.name.includes('thinkpad-x230'))!;
  const trees = parseAmlTables(m.tables.map((x) => ({ body: x.body, table: x.label, baseOffset: HEADER_LENGTH })));
  const dsdt = trees[0]!;
  const ns = AcpiNamespace.build(trees);
  const ec = ns.require('\\_SB.PCI0.LPC.EC');
  const hidden = [...ns.nodes(ec)];
  const drop = new Set<Term>(hidden.flatMap((n) => [n.term, ...n.scopes.map((s) => s.term)]).filter((x): x is Term => x !== undefined));
  assert.ok(drop.size > 1, 'the EC has a Device term and Scope terms that extend it');

  const edited = editTermLists(dsdt.terms, (x) => (drop.has(x) ? null : x));
  const body = encodeAml(edited);
  assert.ok(body.length < m.tables[0]!.body.length);
  const again = parseAml(body, { table: 'DSDT', baseOffset: HEADER_LENGTH });
  const after = AcpiNamespace.build([again]);
  assert.equal(after.get('\\_SB.PCI0.LPC.EC'), undefined);
  assert.ok(after.get('\\_SB.PCI0.LPC') !== undefined);
  const before = AcpiNamespace.build([dsdt]);
  const lost = [...before.nodes()].filter((n) => after.get(n.path) === undefined).map((n) => n.path);
  assert.ok(lost.length > 0 && lost.every((p) => p.startsWith('\\_SB_.PCI0.LPC_.EC__')), lost.slice(0, 5).join(' '));
  // Untouched top-level terms are the very same objects.
  const kept = dsdt.terms.filter((x) => !drop.has(x));
  assert.ok(kept.some((x, i) => x === edited[i]));

  // ACPICA still takes the table (references to the EC are now Externals to it, not errors).
  const tbl = new Uint8Array(HEADER_LENGTH + body.length);
  tbl.set(m.tables[0]!.table.subarray(0, HEADER_LENGTH));
  tbl.set(body, HEADER_LENGTH);
  new DataView(tbl.buffer).setUint32(4, tbl.length, true);
  tbl[9] = 0;
  tbl[9] = (256 - (tbl.reduce((s, x) => s + x, 0) & 0xff)) & 0xff;
  const d = disassembleTable(tbl);
  assert.equal(d.status, 0, d.log);
  assert.doesNotMatch(d.asl, /Device \(EC\)/);
});

test('replacing a method and trimming a package', () => {
  const tree = [
    b.scope('\\_SB', [
      b.device('DEV0', [b.method('_STA', 0, [b.ret(0x0f)]), b.name('LIST', b.pkg(1, 2, 3))]),
    ]),
  ];
  const edited = editTermLists(tree, (x) => {
    if (x.kind === 'Method' && x.name.segs[0] === '_STA') return b.method('_STA', 0, [b.ret(0)]);
    if (x.kind === 'Integer' && x.value === 2n) return null;
    return x;
  });
  let sta: Term | undefined;
  let list: Term | undefined;
  visitTerms(edited, (x) => {
    if (x.kind === 'Method') sta = x;
    if (x.kind === 'Package') list = x;
  });
  assert.ok(sta?.kind === 'Method' && sta.body[0]?.kind === 'Return' && sta.body[0].operand.kind === 'Integer');
  assert.equal(sta.body[0].operand.value, 0n);
  assert.ok(list?.kind === 'Package');
  assert.equal(list.count, 2);
  assert.deepEqual(encodeAml(edited), encodeAml([b.scope('\\_SB', [b.device('DEV0', [b.method('_STA', 0, [b.ret(0)]), b.name('LIST', b.pkg(1, 3))])])]));
  // Nothing to change: the same objects come back.
  assert.equal(editTermLists(tree, (x) => x)[0], tree[0]);
});
