import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAcpidump } from '../../../src/hw/acpi/dump/acpidump.js';
import { decodeTable, encodeTable, splitTableBytes, tableChecksumOk, traceTable, type AcpiTable } from '../../../src/hw/acpi/tables/table.js';
import { fixture } from '../../helpers/paths.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { hvmpt, run } from '../../helpers/run.js';
import { NAMES, compareFields, decodedSections, definitionBlockFields, parseAcpicaFields } from './acpica.js';

const DIR = fixture('acpi');
const FIXTURES = readdirSync(DIR)
  .filter((f) => f.endsWith('.acpidump.txt'))
  .map((f) => f.slice(0, -'.acpidump.txt'.length))
  .sort();

function load(name: string): Array<{ name: string; signature: string; data: Uint8Array; table: AcpiTable }> {
  const file = join(DIR, `${name}.acpidump.txt`);
  return parseAcpidump(readFileSync(file, 'latin1'), file).map((im) => ({
    name: im.name,
    signature: im.signature,
    data: im.data,
    table: decodeTable(splitTableBytes(im.data).table, { input: im.origin }),
  }));
}

test('the ACPI fixtures are all here (12 real machines)', () => {
  assert.ok(FIXTURES.length >= 12, `found ${FIXTURES.length}: ${FIXTURES.join(', ')}`);
});

test('every table of every fixture decodes to its typed kind and re-encodes to the same bytes', () => {
  const kinds = new Map<string, number>();
  let tables = 0;
  for (const name of FIXTURES) {
    for (const t of load(name)) {
      tables++;
      kinds.set(t.table.kind, (kinds.get(t.table.kind) ?? 0) + 1);
      assert.ok(tableChecksumOk(t.data), `${name} ${t.name}: fixture checksum`);
      assert.deepEqual(encodeTable(t.table), t.data, `${name} ${t.name} re-encodes byte for byte`);
      const expectedKind: Record<string, string> = { FACP: 'fadt', APIC: 'madt', MCFG: 'mcfg', HPET: 'hpet', DMAR: 'dmar', IVRS: 'ivrs', FACS: 'facs', SRAT: 'srat', SLIT: 'slit', DSDT: 'definitionBlock', SSDT: 'definitionBlock' };
      assert.equal(t.table.kind, expectedKind[t.signature] ?? 'raw', `${name} ${t.name}`);
    }
  }
  assert.ok(tables > 200, `${tables} tables`);
  for (const k of ['fadt', 'madt', 'mcfg', 'hpet', 'dmar', 'ivrs', 'facs', 'srat', 'slit', 'definitionBlock', 'raw']) {
    assert.ok((kinds.get(k) ?? 0) > 0, `some fixture has a ${k} table`);
  }
});

test("decoded fields match ACPICA's decode in every fixture's .decoded.txt", async (t) => {
  const compared = new Map<string, number>();
  let total = 0;
  for (const name of FIXTURES) {
    await t.test(name, () => {
      const tables = load(name);
      const sections = decodedSections(readFileSync(join(DIR, `${name}.decoded.txt`), 'latin1'));
      assert.ok(sections.size > 0, 'the decoded file has table sections');
      const problems: string[] = [];
      for (const [signature, body] of sections) {
        const matches = tables.filter((x) => x.signature === signature);
        if (matches.length !== 1) continue; // SSDTn, UEFI1-3: ACPICA's sections are not per instance
        const table = matches[0]!.table;
        // Tables hvmpt keeps raw are compared on their header; ACPICA shows AML as ASL, whose
        // DefinitionBlock line carries the header.
        let fields = table.kind === 'definitionBlock' ? definitionBlockFields(body) : parseAcpicaFields(body);
        if (table.kind === 'raw') fields = fields.filter((f) => f.offset < 36);
        if (fields.length === 0) continue; // ACPICA printed nothing for it (OEMB)
        const c = compareFields(fields, traceTable(table), NAMES);
        problems.push(...c.problems.map((p) => `${signature}: ${p}`));
        assert.ok(c.matched > 0, `${signature}: nothing compared`);
        compared.set(table.kind, (compared.get(table.kind) ?? 0) + c.matched);
        total += c.matched;
      }
      assert.deepEqual(problems, []);
    });
  }
  // Every typed kind the fixtures hold was compared, and many fields were.
  for (const k of ['fadt', 'madt', 'mcfg', 'hpet', 'dmar', 'ivrs', 'facs', 'srat', 'slit', 'definitionBlock', 'raw']) {
    assert.ok((compared.get(k) ?? 0) > 0, `${k} fields compared`);
  }
  assert.ok(total > 5000, `${total} fields compared`);
});

test('`hvmpt acpi extract` (raw and --reencode) writes exactly what `acpixtract -a` writes, for every fixture', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const tmp = mkdtempSync(join(tmpdir(), 'hvmpt-extract-'));
  try {
    for (const name of FIXTURES) {
      const input = join(DIR, `${name}.acpidump.txt`);
      const oracle = join(tmp, name, 'acpixtract');
      run('mkdir', ['-p', oracle]);
      const ax = run('acpixtract', ['-a', input], { cwd: oracle });
      assert.equal(ax.status, 0, ax.stdout + ax.stderr);
      const expected = readdirSync(oracle).sort();
      assert.ok(expected.length > 0);
      for (const mode of ['raw', 'reencode']) {
        const out = join(tmp, name, mode);
        const r = hvmpt(['acpi', 'extract', input, '--out', out, ...(mode === 'reencode' ? ['--reencode'] : [])]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr, '', `${name} ${mode}: no notes expected`);
        assert.deepEqual(readdirSync(out).sort(), expected, `${name} ${mode}: file names`);
        for (const f of expected) {
          assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(oracle, f))), `${name} ${mode}: ${f} differs from acpixtract's`);
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
