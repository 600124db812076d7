/**
 * A signal that lands while hvmpt is inside an ioctl is not an error: the call is made again.
 * V8's CPU profiler (node --cpu-prof) sends SIGPROF to the thread it samples, many times a
 * millisecond; KVM_CREATE_VM, among others, gives EINTR when one arrives. Only KVM_RUN's EINTR
 * means something (a kick), and it has its own path.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessKvm } from './kvm-helpers.js';

const VMS = 100;

test(`under a profiler's SIGPROF every 20 µs, ${VMS} VMs with a vCPU each are made and closed without an EINTR escaping`, (t) => {
  if (!skipUnlessKvm(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-signals-'));
  try {
    const script = join(dir, 'vms.mjs');
    writeFileSync(
      script,
      `import { loadSys } from '${join(REPO_ROOT, 'dist/src/native/index.js')}';
import { Kvm } from '${join(REPO_ROOT, 'dist/src/vmm/kvm/system.js')}';
const kvm = new Kvm(loadSys());
for (let i = 0; i < ${VMS}; i++) {
  const vm = kvm.createVm();
  vm.createVcpu(0).close();
  vm.close();
}
kvm.close();
console.log('made ${VMS}');
`,
    );
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-interval', '20', '--cpu-prof-dir', dir, script], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^made ${VMS}$`, 'm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
