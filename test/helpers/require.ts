import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { TestContext } from 'node:test';

/**
 * Tests that need an outside tool (lspci, iasl, qemu) or /dev/kvm call these. When the
 * thing is missing the test is skipped with one printed line saying what and why: it never
 * passes silently.
 */
export function haveCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export function skipUnlessCommand(t: TestContext, name: string, pkg: string): boolean {
  if (haveCommand(name)) return true;
  const why = `SKIPPED (no ${name}; install Debian package ${pkg} or run scripts/setup.sh): ${t.name}`;
  process.stdout.write(why + '\n');
  t.skip(why);
  return false;
}

export function haveKvm(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
