import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newTally } from '../../../fuzz/_acpi-campaign.js';
import { defaultFixturesDir } from '../../../fuzz/acpi-tables.js';
import { loadWorldCorpus, runWorldCase } from '../../../fuzz/acpi-world.js';

/** A sample of `npm run fuzz -- acpi-world`: mutated tables through loading, summaries, rules and the generator. */
test('400 world-view fuzz cases end in a result or a typed error', () => {
  const corpus = loadWorldCorpus(defaultFixturesDir());
  assert.ok(corpus.length >= 8 && corpus.every((c) => c.rules.length >= 3), corpus.map((c) => `${c.machine}:${c.rules.length}`).join(' '));
  const tally = newTally();
  for (let i = 0; i < 400; i++) runWorldCase(corpus, 2024, i, tally);
  assert.deepEqual(tally.crashes.map((c) => `${c.index} ${c.target} ${c.how}: ${c.error.split('\n')[0]}`), []);
  assert.equal(tally.cases, 400);
  // Both outcomes happen: some mutations leave tables the rules apply to, others are refused.
  assert.ok(tally.decoded > 50 && tally.rejected > 50, `accepted ${tally.decoded}, rejected ${tally.rejected}`);
});
