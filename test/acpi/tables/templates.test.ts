import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeTable, encodeTable, traceTable, type AcpiTable } from '../../../src/hw/acpi/tables/table.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { run } from '../../helpers/run.js';
import { NAMES, compareFields, parseAcpicaFields, parseTemplateFields } from './acpica.js';
import { compile, disassemble, scratch } from './iasl.js';

/**
 * ACPICA ships a template for every table it knows (`iasl -T <sig>`), written to exercise its
 * subtable types: the MADT template holds every x86, SAPIC and Arm GIC entry type, the DMAR one
 * DRHD/RMRR/ATSR/RHSA with scopes, IVRS IVHD/IVMD with 4- and 8-byte entries, SRAT types 0-5.
 * Compiled by iasl, they are real tables nobody here wrote.
 */
const TEMPLATES = ['APIC', 'DMAR', 'IVRS', 'SRAT', 'SLIT', 'RSDT', 'XSDT', 'FACS', 'FACP', 'HPET', 'MCFG', 'RSDP'];

function compiledTemplate(dir: string, signature: string): { data: Uint8Array; source: string } {
  const r = run('iasl', ['-T', signature], { cwd: dir });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const source = readFileSync(join(dir, `${signature.toLowerCase()}.asl`), 'latin1');
  return { data: compile(dir, `tpl-${signature.toLowerCase()}`, source), source };
}

test("iasl's table templates decode to typed models, re-encode byte for byte, and match `iasl -d` field by field", (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const s = scratch('hvmpt-iasl-templates-');
  try {
    const decoded = new Map<string, AcpiTable>();
    for (const signature of TEMPLATES) {
      const { data, source } = compiledTemplate(s.dir, signature);
      const table = decodeTable(data, { input: `iasl template ${signature}` });
      decoded.set(signature, table);
      assert.notEqual(table.kind, 'raw', `${signature} decodes to a typed model`);
      assert.deepEqual(encodeTable(table), data, `${signature} re-encodes byte for byte`);
      // iasl -d cannot take a bare RSDP; its template source lists the fields instead.
      const fields = signature === 'RSDP' ? parseTemplateFields(source) : parseAcpicaFields(disassemble(s.dir, signature.toLowerCase(), data).dsl);
      const c = compareFields(fields, traceTable(table), NAMES);
      assert.deepEqual(c.problems, [], signature);
      assert.ok(c.matched >= 9, `${signature}: ${c.matched} fields compared`);
    }
    // The templates cover the subtable types, and none fell back to "unknown".
    const madt = decoded.get('APIC')!;
    assert.equal(madt.kind, 'madt');
    if (madt.kind === 'madt') {
      assert.deepEqual(
        madt.entries.map((e) => e.type),
        ['localApic', 'ioApic', 'interruptOverride', 'nmiSource', 'localApicNmi', 'localApicOverride', 'ioSapic', 'localSapic', 'platformInterruptSource', 'localX2apic', 'localX2apicNmi', 'gicc', 'gicd', 'gicMsiFrame', 'gicr', 'gicIts'],
      );
      const sapic = madt.entries.find((e) => e.type === 'localSapic');
      assert.ok(sapic !== undefined && sapic.type === 'localSapic' && sapic.trailing !== undefined, 'the SAPIC UID string is kept');
    }
    const dmar = decoded.get('DMAR')!;
    assert.ok(dmar.kind === 'dmar' && dmar.structures.map((x) => x.type).join() === 'drhd,rmrr,atsr,rhsa');
    const ivrs = decoded.get('IVRS')!;
    assert.ok(ivrs.kind === 'ivrs' && ivrs.blocks.map((b) => b.type).join() === 'ivhd,ivmd,ivmd,ivhd');
    const srat = decoded.get('SRAT')!;
    assert.ok(srat.kind === 'srat' && srat.entries.every((e) => e.type !== 'unknown') && srat.entries.length === 6);
    const slit = decoded.get('SLIT')!;
    assert.ok(slit.kind === 'slit' && slit.distances.length === 20 && slit.distances[3]![3] === 10);
  } finally {
    s.done();
  }
});
