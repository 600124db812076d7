import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

/** scripts/retry-policy.mjs's answers, from a node of its own (it is plain JavaScript, outside the typed tree). */
function policy(): { again: boolean[][]; words: string[] } {
  const script = `import('${join(REPO_ROOT, 'scripts/retry-policy.mjs')}').then((p) => console.log(JSON.stringify({
    again: [false, true].map((asleep) => [1, 2, 3, 4].map((runs) => p.anotherRun(asleep, runs))),
    words: [1, 2, 3].map(p.runAgainWords),
  })))`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { again: boolean[][]; words: string[] };
}

test('a failed file that boots guests runs once more; a guest fallen asleep twice earns a third run, and no more', () => {
  const { again, words } = policy();
  assert.deepEqual(again[0], [true, false, false, false], 'any other failure: one more run');
  assert.deepEqual(again[1], [true, true, false, false], 'asleep again: a third run, no fourth');
  assert.deepEqual(words, ['once more', 'a third time', 'a 4th time']);
});
