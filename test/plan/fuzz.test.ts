import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzPlans, planCorpus } from '../../fuzz/plan.js';

test('plans mutated as YAML text and as trees, through run, acpi generate/rewrite, pci view and e820 carve: typed errors only (sample of `npm run fuzz -- plan`)', { timeout: 600_000 }, () => {
  const stats = fuzzPlans(planCorpus(), 250, 20261201, 60_000);
  assert.equal(stats.accepted + stats.rejected, 250);
  // Both outcomes, and every command, exercised: a sample that only ever fails at the YAML stage proves little.
  for (const command of ['run (composeMachine)', 'acpi generate/rewrite', 'pci view --plan', 'e820 carve --plan']) {
    assert.ok((stats.passed.get(command) ?? 0) > 5, `${command} composed some inputs: ${JSON.stringify([...stats.passed])}`);
  }
  assert.ok(stats.rejected > 50, JSON.stringify(stats));
});
