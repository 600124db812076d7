import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { parseAml, parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { allMachines, HEADER_LENGTH } from './fixtures.js';

test('every fixture DSDT and SSDT re-encodes byte for byte', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const machines = allMachines();
  assert.ok(machines.length >= 12, `expected the fixture set, found ${machines.length} machines`);
  let tables = 0;
  let bytes = 0;
  for (const m of machines) {
    assert.ok(m.tables.some((x) => x.label === 'DSDT'), `${m.name} has a DSDT`);
    const trees = parseAmlTables(m.tables.map((x) => ({ body: x.body, table: `${m.name}/${x.label}`, baseOffset: HEADER_LENGTH })));
    trees.forEach((tree, i) => {
      const body = m.tables[i]!.body;
      const out = encodeAml(tree.terms);
      if (!Buffer.from(out).equals(Buffer.from(body))) {
        let at = 0;
        while (at < out.length && out[at] === body[at]) at++;
        assert.fail(`${tree.table}: re-encoding differs at table offset 0x${(at + HEADER_LENGTH).toString(16)} (${out.length} vs ${body.length} bytes)`);
      }
      tables++;
      bytes += body.length;
    });
  }
  assert.ok(tables >= 80 && bytes > 800_000, `covered ${tables} tables, ${bytes} bytes`);
});

test('every fixture table parsed alone (no other tables known) still re-encodes byte for byte', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  let guessed = 0;
  for (const m of allMachines()) {
    for (const x of m.tables) {
      const tree = parseAml(x.body, { table: `${m.name}/${x.label}`, baseOffset: HEADER_LENGTH });
      assert.ok(Buffer.from(encodeAml(tree.terms)).equals(Buffer.from(x.body)), tree.table);
      guessed += tree.unresolved.filter((u) => u.guessedArgs !== undefined).length;
    }
  }
  assert.ok(guessed > 50, `${guessed} statement-level calls of unknown methods had their arguments guessed`);
});

test('a guess contradicted elsewhere in the table falls back to the first parse', () => {
  // Method (MAIN) { FOO (One, 0x02)  If (One) { Store (FOO, Local0) } }, FOO declared nowhere:
  // the statement-level use suggests 2 arguments, the use inside If leaves room for none.
  const body = [
    0x14, 0x16, 0x4d, 0x41, 0x49, 0x4e, 0x00, // Method (MAIN, 0) { ... }
    0x46, 0x4f, 0x4f, 0x5f, 0x01, 0x0a, 0x02, // FOO_ One 0x02
    0xa0, 0x08, 0x01, 0x70, 0x46, 0x4f, 0x4f, 0x5f, 0x60, // If (One) { Store (FOO_, Local0) }
  ];
  const tree = parseAml(Uint8Array.from(body), { table: 'SSDT' });
  assert.deepEqual(encodeAml(tree.terms), Uint8Array.from(body));
  const method = tree.terms[0]!;
  assert.ok(method.kind === 'Method');
  assert.equal(method.body[0]?.kind, 'MethodCall');
  assert.deepEqual(tree.unresolved.map((u) => [u.name, u.guessedArgs]), [['FOO_', 2], ['FOO_', undefined]]);
  // The guess did not leak: a later parse sees FOO as unknown again.
  const again = parseAml(Uint8Array.from(body.slice(14)), { table: 'SSDT' });
  assert.equal(again.terms[0]?.kind, 'If');
});

test('a table parsed alone still round-trips, with its unknown names reported', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const m = allMachines().find((x) => x.name.includes('thinkpad-x230'))!;
  const ssdt = m.tables.find((x) => x.label !== 'DSDT' && x.body.length > 1000)!;
  const tree = parseAml(ssdt.body, { table: ssdt.label, baseOffset: HEADER_LENGTH });
  assert.deepEqual(encodeAml(tree.terms), new Uint8Array(ssdt.body));
  for (const u of tree.unresolved) {
    assert.match(u.name, /^[\\^]*[A-Z_][A-Z0-9_]{3}(\.[A-Z0-9_]{4})*$/);
    assert.ok(u.offset >= HEADER_LENGTH && u.offset < ssdt.table.length, `offset ${u.offset} inside the table`);
  }
});

test('encoding details survive: long PkgLengths, integer widths, name prefixes', () => {
  const cases: Array<[string, number[]]> = [
    // Scope (\_SB) { } with a 2-byte PkgLength where 1 byte would do.
    ['wide PkgLength', [0x10, 0x47, 0x00, 0x5c, 0x5f, 0x53, 0x42, 0x5f]],
    // Name (FOO, 1) with the value as WordConst, DWordConst, QWordConst.
    ['word 1', [0x08, 0x46, 0x4f, 0x4f, 0x5f, 0x0b, 0x01, 0x00]],
    ['dword 1', [0x08, 0x46, 0x4f, 0x4f, 0x5f, 0x0c, 0x01, 0x00, 0x00, 0x00]],
    ['qword', [0x08, 0x46, 0x4f, 0x4f, 0x5f, 0x0e, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x81]],
    // Name (FOO, 0) as BytePrefix 0 instead of ZeroOp.
    ['byte 0', [0x08, 0x46, 0x4f, 0x4f, 0x5f, 0x0a, 0x00]],
    // Name (\FOO, ^BAR) and a one-segment MultiNamePrefix path.
    ['multi 1', [0x08, 0x5c, 0x2f, 0x01, 0x46, 0x4f, 0x4f, 0x5f, 0x5e, 0x42, 0x41, 0x52, 0x5f]],
    // Field with a reserved field whose width is written in 2 bytes.
    ['field', [0x5b, 0x81, 0x0e, 0x52, 0x45, 0x47, 0x5f, 0x01, 0x00, 0x48, 0x00, 0x41, 0x42, 0x43, 0x44, 0x08]],
  ];
  for (const [what, bytes] of cases) {
    const body = new Uint8Array(bytes);
    let tree;
    try {
      tree = parseAml(body, { table: what });
    } catch (err) {
      assert.fail(`${what}: ${(err as Error).message}`);
    }
    assert.deepEqual([...encodeAml(tree.terms)], bytes, what);
  }
  const qword = parseAml(new Uint8Array(cases[3]![1])).terms[0]!;
  assert.equal(qword.kind === 'Name' && qword.value.kind === 'Integer' ? qword.value.value : 0n, 0x8102030405060708n);
  const wide = parseAml(new Uint8Array(cases[0]![1])).terms[0]!;
  assert.equal(wide.kind === 'Scope' ? wide.pkgLenBytes : undefined, 2);
});
