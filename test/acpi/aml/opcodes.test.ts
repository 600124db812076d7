import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { parseAml } from '../../../src/hw/acpi/aml/parse.js';
import type { Term } from '../../../src/hw/acpi/aml/terms.js';
import { visitTerms } from '../../../src/hw/acpi/aml/walk.js';
import { AcpiNamespace } from '../../../src/hw/acpi/namespace/namespace.js';
import { decodeResources } from '../../../src/hw/acpi/resources/codec.js';
import { REPO_ROOT } from '../../helpers/paths.js';
import { skipUnlessCommand } from '../../helpers/require.js';
import { compileAsl, disassembleTable, lastSeg, scanAsl, scanResourceTemplates } from './asl.js';
import { HEADER_LENGTH } from './fixtures.js';
import { expectedAsl, normalize } from './resource-asl.js';

/**
 * Every opcode the fixtures lack, compiled from ASL by iasl (the ASL is in asl/all-opcodes.asl):
 * the parse covers every term kind and field element, re-encodes byte for byte, and agrees
 * with iasl's disassembly of the same table.
 */

const ALL_KINDS: ReadonlyArray<Term['kind']> = [
  'Integer', 'String', 'Buffer', 'Package', 'VarPackage', 'NamePath', 'MethodCall', 'Local', 'Arg',
  'Noop', 'Break', 'Continue', 'BreakPoint', 'Revision', 'Debug', 'Timer',
  'Add', 'Concatenate', 'Subtract', 'Multiply', 'ShiftLeft', 'ShiftRight', 'And', 'Nand', 'Or', 'Nor', 'Xor', 'Mod', 'Index',
  'ConcatenateResTemplate', 'Not', 'FindSetLeftBit', 'FindSetRightBit', 'ToBuffer', 'ToDecimalString', 'ToHexString',
  'ToInteger', 'FromBCD', 'ToBCD', 'LAnd', 'LOr', 'LEqual', 'LGreater', 'LLess', 'LNot', 'RefOf', 'DerefOf', 'Increment',
  'Decrement', 'SizeOf', 'ObjectType', 'Sleep', 'Stall', 'Signal', 'Reset', 'Release', 'Unload', 'Return', 'Store',
  'CopyObject', 'Divide', 'Match', 'Mid', 'ToString', 'CondRefOf', 'Notify', 'Acquire', 'Wait', 'Fatal', 'Load', 'LoadTable',
  'If', 'While', 'Alias', 'Name', 'Scope', 'Device', 'ThermalZone', 'Method', 'External', 'Mutex', 'Event',
  'OperationRegion', 'DataRegion', 'Field', 'IndexField', 'BankField', 'CreateBitField', 'CreateByteField',
  'CreateWordField', 'CreateDWordField', 'CreateQWordField', 'CreateField', 'Processor', 'PowerResource',
];

function compiled(): { table: Uint8Array; body: Uint8Array } {
  const table = compileAsl(readFileSync(join(REPO_ROOT, 'test', 'acpi', 'aml', 'asl', 'all-opcodes.asl'), 'utf8'));
  return { table, body: table.subarray(HEADER_LENGTH) };
}

test('every term kind and field element parses from iasl-compiled AML and re-encodes exactly', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const { body } = compiled();
  const tree = parseAml(body, { table: 'SSDT', baseOffset: HEADER_LENGTH });
  assert.deepEqual(tree.unresolved, []);
  assert.deepEqual(encodeAml(tree.terms), new Uint8Array(body));
  const seen = new Set<string>();
  visitTerms(tree.terms, (x) => {
    seen.add(x.kind);
    if (x.kind === 'Field' || x.kind === 'IndexField' || x.kind === 'BankField') for (const e of x.elements) seen.add(`field:${e.kind}`);
  });
  assert.deepEqual(ALL_KINDS.filter((k) => !seen.has(k)), [], 'term kinds not produced by the parser');
  for (const e of ['NamedField', 'ReservedField', 'AccessAs', 'ExtendedAccessAs', 'Connection', 'ConnectionBuffer']) {
    assert.ok(seen.has(`field:${e}`), `field element ${e}`);
  }
});

test('the compiled table agrees with iasl -d: objects, calls and every resource descriptor', (t) => {
  if (!skipUnlessCommand(t, 'iasl', 'acpica-tools')) return;
  const { table, body } = compiled();
  const tree = parseAml(body, { table: 'SSDT', baseOffset: HEADER_LENGTH });
  const d = disassembleTable(table);
  assert.equal(d.status, 0, d.log);
  const asl = scanAsl(d.asl);

  const ns = AcpiNamespace.build([tree]);
  const mine = new Map<string, string>();
  for (const n of ns.nodes()) {
    if (n.term === undefined || n.kind === 'Root' || n.kind === 'Scope' || n.kind === 'External') continue;
    mine.set(n.path, n.kind === 'Method' ? `Method/${ns.argCount(n)}` : n.kind);
  }
  assert.deepEqual(mine, asl.decls);
  assert.equal(mine.get('\\MTH0'), 'Method/2');
  assert.equal(mine.get('\\_SB_.DEV0'), 'Device');

  const calls = new Map<string, number>();
  visitTerms(tree.terms, (x) => {
    if (x.kind === 'MethodCall') {
      const key = `${lastSeg(x.name.segs[x.name.segs.length - 1]!)}/${x.args.length}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
    }
  });
  assert.deepEqual(calls, asl.calls);
  assert.equal(calls.get('EXT2/2'), 1, 'External method with its argument count');

  const templates = scanResourceTemplates(d.asl);
  const res0 = tree.terms.find((x) => x.kind === 'Name' && x.name.segs[0] === 'RES0');
  assert.ok(res0?.kind === 'Name' && res0.value.kind === 'Buffer');
  const decoded = decodeResources(res0.value.data);
  const aslRes0 = templates.find((tpl) => tpl.length === decoded.resources.length && tpl[0]?.macro === 'IRQ');
  assert.ok(aslRes0 !== undefined, 'RES0 in the disassembly');
  assert.deepEqual(decoded.resources.map((r) => normalize(expectedAsl(r))), aslRes0.map(normalize));
  assert.ok(decoded.resources.every((r) => r.raw === undefined), 'iasl-compiled descriptors are canonical');
  assert.equal(new Set(decoded.resources.map((r) => r.type)).size, 26);
});
