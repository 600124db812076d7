import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpus, fuzzHostFacts } from '../../fuzz/host-facts.js';

test('fuzz: mutated collections (tar bytes, single files edited, cut, grown or dropped) end in an analysis or a typed error, never anything else', () => {
  const inputs = corpus();
  const stats = fuzzHostFacts(inputs, 400, 20261202);
  assert.equal(stats.inputs, 400);
  assert.ok(stats.accepted > 0 && stats.rejected > 0, `both outcomes happen (${stats.accepted} read, ${stats.rejected} refused)`);
});
