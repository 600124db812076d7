import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AcpiSectionSchema } from '../../src/plan/acpi.js';
import { MAX_ALIAS_NODES, MAX_PLAN_DEPTH, parseStructuredText, PlanError, validate } from '../../src/plan/load.js';
import { PciSectionSchema } from '../../src/plan/pci.js';
import { planSchema } from '../../src/plan/schema.js';

/** The plan loader's YAML edge and its schema messages (issue 9, items 1, 12, 16). */

function refused(text: string): PlanError {
  try {
    parseStructuredText(text, 'p.yaml');
  } catch (err) {
    assert.ok(err instanceof PlanError, `a PlanError, not ${String(err)}`);
    return err;
  }
  assert.fail(`accepted: ${text.slice(0, 80)}`);
}

test('YAML that the library leaves to its converter is refused with the plan and the line: aliases, cycles, bombs', () => {
  assert.equal(refused('memory: *x\n').message, 'p.yaml: line 1 column 9: alias *x refers to no anchor (&x) before it');
  assert.equal(refused('a: *b\nb: &b 1\n').message, 'p.yaml: line 1 column 4: alias *b refers to no anchor (&b) before it');
  assert.equal(refused('a: &a [1, *a]\n').message, 'p.yaml: line 1 column 11: alias *a refers to the node that contains it');
  // Ten levels of ten aliases: 10^6 nodes from 60 lines of text.
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdef'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdef'[i]}`).join(', ')}]`)].join('\n');
  assert.match(refused(bomb).message, new RegExp(`^p\\.yaml: line \\d+ column \\d+: aliases expand the plan past ${MAX_ALIAS_NODES} nodes`));
  // Aliases a plan might use for real (one pasted block used twice) are fine.
  assert.deepEqual(parseStructuredText('w: &w { base: 1, limit: 2 }\nio: *w\nmem: *w\n', 'p.yaml'), { w: { base: 1, limit: 2 }, io: { base: 1, limit: 2 }, mem: { base: 1, limit: 2 } });
});

test('unknown tags, duplicate keys, several documents and deep nesting are refused, each with its line', () => {
  assert.equal(refused('memory:\n  size: !foo 64M\n').message, 'p.yaml: line 2 column 9: unknown tag !foo: a plan holds plain YAML or JSON values, with no tags');
  assert.equal(refused('a: 1\na: 2\n').message, 'p.yaml: line 2 column 1: this key repeats one given earlier in the same mapping');
  assert.match(refused('a: 1\n---\nb: 2\n').message, /^p\.yaml: line 2 column 1: a second YAML document begins here/);
  assert.match(refused(`a: ${'['.repeat(MAX_PLAN_DEPTH + 5)}${']'.repeat(MAX_PLAN_DEPTH + 5)}\n`).message, new RegExp(`nested deeper than ${MAX_PLAN_DEPTH} levels`));
  // So deep the YAML library itself would overflow the stack.
  assert.match(refused(`a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`).message, /^p\.yaml: (line \d+ column \d+: )?nested (too )?deep/);
  assert.match(refused('a: [1, 2\n').message, /^p\.yaml: line \d+ column \d+: /);
});

test('a value that fits none of a union\'s shapes is reported where it went wrong, not as "Invalid input"', () => {
  const problems = (schema: Parameters<typeof validate>[0], data: unknown): string[] => {
    try {
      validate(schema, data, 'p.yaml');
    } catch (err) {
      assert.ok(err instanceof PlanError);
      return err.problems.map((p) => `${p.path}: ${p.message}`);
    }
    assert.fail('accepted');
  };
  const acpi = (generate: unknown): unknown => ({ acpi: { generate } });
  assert.deepEqual(problems(planSchema, acpi({ ssdts: [{ oemTableId: 'X', body: [{ method: 'FOO', args: 9, body: [] }] }] })), [
    'acpi.generate.ssdts[0].body[0].args: Too big: expected number to be <=7',
  ]);
  assert.deepEqual(problems(planSchema, acpi({ ecam: { base: 0xb0000000, endBus: 300 } })), ['acpi.generate.ecam.endBus: expected an integer from 0 to 0xff, got 300']);
  assert.deepEqual(problems(AcpiSectionSchema, { generate: { ecam: 'x' } }), ['generate.ecam: expected false, or expected object, received string']);
  assert.deepEqual(problems(PciSectionSchema, { allocation: { mem32: { base: 0xf0000000, limit: 0xc0000000 } } }), ['allocation.mem32: the window ends before it starts']);
  // A union that words its own message keeps it.
  assert.deepEqual(problems(AcpiSectionSchema, { rules: [{ action: 'rewrite-prt', routes: [{ device: 3, pin: 'E' }] }] }), ['rules[0].routes[0].pin: expected a pin: A, B, C, D (or 0-3)']);
});
