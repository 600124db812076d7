import type { TestContext } from 'node:test';
import { probeKvm } from '../../src/vmm/kvm/probe.js';

/**
 * Skips the test with one `SKIPPED (...)` line when this machine's /dev/kvm cannot run it:
 * missing, unable to make a VM, or (with `paging`) unable to run a paging kernel. `npm test`
 * never gets here on such a machine: scripts/run-tests.mjs runs every file that calls this in
 * a lab host instead (it finds them by this function's name, and `paging: true` in the call).
 */
export function skipUnlessKvm(t: TestContext, options: { readonly paging?: boolean } = {}): boolean {
  const probe = probeKvm();
  if (probe.kind === 'paging' || (probe.kind === 'no-paging' && options.paging !== true)) return true;
  const line = `SKIPPED (no usable /dev/kvm${options.paging === true ? ' for a paging guest' : ''}; npm test runs this file in a lab host): ${t.name}: ${probe.why}`;
  process.stdout.write(line + '\n');
  t.skip(line);
  return false;
}
