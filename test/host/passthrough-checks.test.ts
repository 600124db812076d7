import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkPassthrough, openPassthrough, PassthroughRefusal } from '../../src/host/backends/open.js';
import { resolvePlatformInputs } from '../../src/host/plan/inputs.js';
import { loadSys } from '../../src/native/index.js';
import { loadPlan } from '../../src/plan/schema.js';
import { fakeSysfs } from '../helpers/fake-sysfs.js';

/** What `hvmpt run` refuses before it opens anything, on a made-up host (the lab checks the real kernel's side). */

function refusals(passthrough: string, hostUses: ReadonlyArray<{ address: string; use: string }> = []): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-ptc-'));
  try {
    const sysfsRoot = fakeSysfs(join(dir, 'sys'), [
      { address: '0000:00:02.0', vendor: 0x1af4, device: 0x1001, classCode: 0x010000, driver: 'virtio-pci', group: 2 },
      { address: '0000:00:03.0', vendor: 0x8086, device: 0x10d3, classCode: 0x020000, driver: 'e1000e', group: 3 },
      { address: '0000:00:04.0', vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, driver: 'vfio-pci', group: 4 },
      { address: '0000:00:04.1', vendor: 0x1234, device: 0x11e9, classCode: 0x00ff00, driver: 'snd_hda_intel', group: 4 },
      { address: '0000:00:05.0', vendor: 0x1234, device: 0x11ea, classCode: 0x00ff00, driver: 'vfio-pci', group: 2 },
      { address: '0000:00:06.0', vendor: 0x1234, device: 0x11eb, classCode: 0x00ff00, driver: 'vfio-pci' },
      { address: '0000:00:07.0', vendor: 0x8086, device: 0x2448, classCode: 0x060400, driver: 'pcieport', group: 7 },
      { address: '0000:00:07.1', vendor: 0x1234, device: 0x11ec, classCode: 0x00ff00, driver: 'vfio-pci', group: 7 },
    ]);
    const file = join(dir, 'plan.yaml');
    writeFileSync(join(dir, 'vmlinuz'), new Uint8Array(16));
    writeFileSync(file, `machine: { boot: { kind: linux, kernel: vmlinuz } }\npci:\n  passthrough:\n${passthrough}`);
    const plan = loadPlan(file);
    const inputs = resolvePlatformInputs(plan, file, { sysfsRoot });
    const found = checkPassthrough(plan, inputs, { sysfsRoot, hostUses });
    // openPassthrough refuses with the same list, and opens nothing.
    if (found.length > 0) assert.throws(() => openPassthrough(loadSys(), plan, inputs, { sysfsRoot, hostUses }), (e: unknown) => e instanceof PassthroughRefusal && e.refusals.length === found.length);
    return found.map((r) => `${r.path}: ${r.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a device not bound to vfio-pci is refused with the bind command to run', () => {
  assert.deepEqual(refusals('    - { host: "0000:00:03.0" }\n'), ['pci.passthrough[0].host: 0000:00:03.0 is bound to e1000e, not vfio-pci: run `hvmpt bind 0000:00:03.0` first']);
  assert.match(refusals('    - { host: "0000:00:03.0", backend: uio }\n')[0]!, /not uio_pci_generic: run `hvmpt bind 0000:00:03.0 --driver uio_pci_generic` first/);
});

test('a device whose IOMMU group mate is still with a host driver is refused, naming the mate; bridges may stay', () => {
  assert.deepEqual(refusals('    - { host: "0000:00:04.0" }\n'), [
    'pci.passthrough[0].host: IOMMU group 4 of 0000:00:04.0 also holds 0000:00:04.1 (bound to snd_hda_intel): a group goes to one guest whole; bind it too (`hvmpt bind 0000:00:04.1`)',
  ]);
  assert.deepEqual(refusals('    - { host: "0000:00:07.1" }\n'), []);
});

test('anything in the group of the host\'s root disk or default-route NIC is refused', () => {
  const uses = [{ address: '0000:00:02.0', use: "the root filesystem's disk (/dev/vda)" }];
  assert.deepEqual(refusals('    - { host: "0000:00:05.0" }\n', uses), [
    "pci.passthrough[0].host: 0000:00:05.0 shares IOMMU group 2 with 0000:00:02.0, the root filesystem's disk (/dev/vda): the host needs it, so the group cannot go to a guest",
  ]);
});

test('no IOMMU group: the IOMMU is off; the same device twice; uio without an INTx pin', () => {
  assert.match(refusals('    - { host: "0000:00:06.0" }\n')[0]!, /is in no IOMMU group: the host's IOMMU is off \(boot with intel_iommu=on or amd_iommu=on\)/);
  assert.match(refusals('    - { host: "0000:00:07.1" }\n    - { host: "1234:11ec" }\n')[0]!, /^pci\.passthrough\[1\]\.host: 0000:00:07\.1 is already passed through by pci\.passthrough\[0\]/);
});
