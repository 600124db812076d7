import type { TestContext } from 'node:test';
import { loadSys } from '../../src/native/index.js';
import { Kvm } from '../../src/vmm/kvm/system.js';
import { haveKvm } from '../helpers/require.js';

let usable: string | undefined | null = null;

/** Why /dev/kvm cannot run a guest here, or undefined when it can. */
export function kvmUnusableReason(): string | undefined {
  if (usable !== null) return usable;
  if (!haveKvm()) usable = '/dev/kvm is missing or not readable and writable';
  else {
    try {
      const kvm = new Kvm(loadSys());
      const vm = kvm.createVm();
      const vcpu = vm.createVcpu(0);
      vcpu.close();
      vm.close();
      kvm.close();
      usable = undefined;
    } catch (err) {
      usable = `cannot create a VM: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return usable;
}

/** Skips the test with one `SKIPPED (no usable /dev/kvm): ...` line when KVM cannot run guests. */
export function skipUnlessKvm(t: TestContext): boolean {
  const why = kvmUnusableReason();
  if (why === undefined) return true;
  const line = `SKIPPED (no usable /dev/kvm): ${t.name}: ${why}`;
  process.stdout.write(line + '\n');
  t.skip(line);
  return false;
}
