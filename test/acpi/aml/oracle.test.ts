import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
import type { AmlTree } from '../../../src/hw/acpi/aml/parse.js';
import { visitTerms } from '../../../src/hw/acpi/aml/walk.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { disassemble, lastSeg, scanAsl } from './asl.js';
import { allMachines, HEADER_LENGTH } from './fixtures.js';

/**
 * hvmpt's parse against ACPICA's disassembly of the same tables, for every fixture table:
 * the objects each table declares (paths, kinds, method argument counts), and every method
 * invocation with its argument count.
 */

function declaredBy(tree: AmlTree): Map<string, string> {
  const ns = AcpiNamespace.build([tree]);
  const out = new Map<string, string>();
  for (const n of ns.nodes()) {
    if (n.term === undefined || n.kind === 'Root' || n.kind === 'Scope' || n.kind === 'External') continue;
    out.set(n.path, n.kind === 'Method' ? `Method/${ns.argCount(n)}` : n.kind);
  }
  return out;
}

function callsIn(tree: AmlTree): Map<string, number> {
  const calls = new Map<string, number>();
  visitTerms(tree.terms, (t) => {
    if (t.kind !== 'MethodCall') return;
    const key = `${lastSeg(t.name.segs[t.name.segs.length - 1] ?? '')}/${t.args.length}`;
    calls.set(key, (calls.get(key) ?? 0) + 1);
  });
  return calls;
}

test('declared objects and method calls match iasl -d for every fixture table', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools') || !skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  let compared = 0;
  let fullCalls = 0;
  let objects = 0;
  const skipped: string[] = [];
  for (const m of allMachines()) {
    const trees = parseAmlTables(m.tables.map((x) => ({ body: x.body, table: x.label, baseOffset: HEADER_LENGTH })));
    m.tables.forEach((table, i) => {
      const where = `${m.name}/${table.label}`;
      const d = disassemble(m, table.name);
      if (d === undefined) {
        skipped.push(where);
        return;
      }
      const asl = scanAsl(d.asl);
      const mine = declaredBy(trees[i]!);
      const missing = [...asl.decls].filter(([p, k]) => mine.get(p) !== k).map(([p, k]) => `${p} ${k} (hvmpt: ${mine.get(p) ?? 'none'})`);
      const extra = [...mine].filter(([p]) => !asl.decls.has(p)).map(([p, k]) => `${p} ${k}`);
      assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] }, where);
      objects += mine.size;

      // Without the other tables (-e refused), iasl guesses the argument counts of methods it
      // cannot see; compare only calls of methods this table declares and nothing shadows.
      const ownMethods = new Set([...asl.decls].filter(([, k]) => k.startsWith('Method/')).map(([p]) => lastSeg(p)));
      const keep = (key: string) => d.withExternals || (ownMethods.has(key.slice(0, 4)) && !asl.externals.has(key.slice(0, 4)));
      const mineCalls = callsIn(trees[i]!);
      const keys = [...new Set([...mineCalls.keys(), ...asl.calls.keys()])].filter(keep).sort();
      const diffs = keys.filter((k) => mineCalls.get(k) !== asl.calls.get(k)).map((k) => `${k}: hvmpt ${mineCalls.get(k) ?? 0}, iasl ${asl.calls.get(k) ?? 0}`);
      assert.deepEqual(diffs, [], `${where}: method calls (name/argument count)`);
      compared++;
      if (d.withExternals) fullCalls++;
    });
  }
  if (skipped.length > 0) process.stdout.write(`iasl could not disassemble (not compared): ${skipped.join(', ')}\n`);
  assert.ok(compared >= 80, `compared ${compared} tables`);
  assert.ok(fullCalls >= 55, `${fullCalls} tables compared with iasl knowing every table`);
  assert.ok(objects > 15_000, `${objects} objects compared`);
  process.stdout.write(`compared ${objects} declared objects in ${compared} tables (${fullCalls} with every table known to iasl)\n`);
});
