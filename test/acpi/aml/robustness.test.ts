import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deepNesting, fixtureCorpus, runCampaign } from '../../../fuzz/aml.js';
import { encodeAml } from '../../../src/hw/acpi/aml/encode.js';
import { AmlDepthError, AmlParseError } from '../../../src/hw/acpi/aml/errors.js';
import { parseAml } from '../../../src/hw/acpi/aml/parse.js';
import { skipUnlessCommand } from '../../helpers/require.js';

function parseError(body: number[] | Uint8Array, table = 'SSDT2'): AmlParseError {
  try {
    parseAml(Uint8Array.from(body), { table, baseOffset: 36 });
  } catch (err) {
    if (err instanceof AmlParseError) return err;
    throw err;
  }
  assert.fail('expected an AmlParseError');
}

test('bad AML gets a typed error naming the table and the byte offset', () => {
  // Name (FOO_, <truncated DWordConst>)
  let e = parseError([0x08, 0x46, 0x4f, 0x4f, 0x5f, 0x0c, 0x01]);
  assert.equal(e.table, 'SSDT2');
  assert.equal(e.offset, 36 + 6);
  assert.match(e.message, /^SSDT2: offset 0x2a: truncated DWordConst/);
  assert.deepEqual(e.where, { input: 'SSDT2', at: 'offset 0x2a' });
  // Scope whose PkgLength claims more bytes than the table has.
  e = parseError([0x10, 0x3f, 0x5c, 0x00]);
  assert.equal(e.offset, 37);
  assert.match(e.message, /PkgLength 63 runs past the end of the enclosing object/);
  // A PkgLength shorter than itself, an unknown opcode, a stray Else, an unterminated string.
  assert.match(parseError([0x10, 0x41, 0x00]).message, /shorter than its own 2-byte encoding/);
  assert.match(parseError([0x02]).message, /offset 0x24: unknown opcode 0x02/);
  assert.match(parseError([0x5b, 0x99]).message, /unknown extended opcode 0x5b 0x99/);
  assert.match(parseError([0xa1, 0x01]).message, /Else without a preceding If/);
  assert.match(parseError([0x0d, 0x41, 0x42]).message, /unterminated string/);
  // A child object that runs past its parent's end (lying inner PkgLength).
  e = parseError([0x10, 0x08, 0x5c, 0x00, 0x10, 0x09, 0x5c, 0x00, 0xa3, 0xa3, 0xa3]);
  assert.equal(e.offset, 36 + 5);
  // Field lists: a bad element byte.
  assert.match(parseError([0x5b, 0x81, 0x07, 0x52, 0x45, 0x47, 0x5f, 0x01, 0x07]).message, /invalid field list element 0x7/);
});

test('nesting deeper than the bound is an AmlDepthError, never a stack overflow', () => {
  for (const kind of ['scope', 'if', 'package', 'lnot', 'call-args'] as const) {
    const deep = deepNesting(kind, 100_000);
    const e = parseError(deep, 'DSDT');
    assert.ok(e instanceof AmlDepthError, `${kind}: ${e.message}`);
    assert.match(e.message, /nested deeper than 256 levels/);
    // Within the bound, the same constructions parse and round-trip.
    const ok = deepNesting(kind, 100);
    assert.deepEqual(encodeAml(parseAml(ok).terms), ok, kind);
  }
  assert.throws(() => parseAml(deepNesting('if', 50), { maxDepth: 20 }), AmlDepthError);
});

test('fuzz sample: mutated fixture AML ends in a value or a typed error, never a crash or hang', (t) => {
  if (!skipUnlessCommand(t, 'acpixtract', 'acpica-tools')) return;
  const corpus = fixtureCorpus(20_000);
  assert.ok(corpus.length >= 40, `${corpus.length} small fixture tables`);
  const r = runCampaign(corpus, { iterations: 2500, seed: 20240601 });
  assert.deepEqual(r.findings.map((f) => `${f.kind} ${f.mutation} ${f.label}: ${f.detail.split('\n')[0]}`), []);
  assert.ok(r.parsed > 200, `${r.parsed} mutated inputs still parsed (and round-tripped)`);
  assert.ok((r.errors.AmlParseError ?? 0) > 500, 'most mutations are rejected with typed errors');
  assert.ok((r.errors.AmlDepthError ?? 0) > 50, 'deep nesting reaches the bound');
  assert.ok(Object.keys(r.mutations).length === 7, 'every mutator ran');
});
