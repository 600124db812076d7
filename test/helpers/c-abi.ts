import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { skipUnlessCommand } from './require.js';
import { run } from './run.js';

/**
 * Checks numbers hvmpt hard-codes (ioctl numbers, structure sizes, field offsets, flags) against
 * an installed kernel header: a C program prints each expression and each must equal ours.
 */
export function checkAgainstHeader(t: TestContext, header: string, checks: ReadonlyArray<readonly [string, number]>): void {
  if (!skipUnlessCommand(t, 'cc', 'gcc')) return;
  if (!existsSync(join('/usr/include', header))) {
    const why = `SKIPPED (no /usr/include/${header}; install Debian package linux-libc-dev): ${t.name}`;
    process.stdout.write(why + '\n');
    t.skip(why);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-abi-'));
  try {
    const src = [
      `#include <${header}>`,
      '#include <stddef.h>',
      '#include <stdio.h>',
      'int main(void) {',
      ...checks.map(([expr]) => `  printf("%lu\\n", (unsigned long)(${expr}));`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'abi.c'), src);
    const cc = run('cc', ['-o', join(dir, 'abi'), join(dir, 'abi.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    const out = run(join(dir, 'abi'), []).stdout.trim().split('\n').map(Number);
    const mismatches = checks.map(([expr, ours], i) => ({ expr, ours, header: out[i] })).filter((c) => c.ours !== c.header);
    assert.deepEqual(mismatches, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
