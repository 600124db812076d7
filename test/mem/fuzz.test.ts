import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corpus, fuzzE820 } from '../../fuzz/e820.js';
import { fixture } from '../helpers/paths.js';

test('E820 parsers on mutated real boot logs: typed errors only, no crash or hang (sample of `npm run fuzz -- e820`)', () => {
  const stats = fuzzE820(corpus(fixture('dmesg')), 3000, 20261124);
  assert.equal(stats.accepted + stats.rejected, 3000);
  assert.ok(stats.accepted > 300 && stats.rejected > 300, `both outcomes exercised: ${JSON.stringify(stats)}`);
});
