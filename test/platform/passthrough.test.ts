import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { PciPlanError } from '../../src/hw/pci/compose.js';
import { PlanError } from '../../src/plan/load.js';
import { fakeSysfs } from '../helpers/fake-sysfs.js';

/** Passthrough entries placed on the composed bus from host facts (a made-up sysfs: no device is touched). */

function withHost<T>(plan: string, body: (file: string, sysfsRoot: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-pt-'));
  try {
    const sysfsRoot = fakeSysfs(join(dir, 'sys'), [
      { address: '0000:00:03.0', vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, driver: 'vfio-pci', group: 3, resource: `0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n${'0x0 0x0 0x0\n'.repeat(6)}` },
      { address: '0000:00:04.0', vendor: 0x8086, device: 0x10d3, classCode: 0x020000, driver: 'e1000e', group: 4 },
      { address: '0000:00:05.0', vendor: 0x1234, device: 0x11e8, classCode: 0x00ff00, driver: 'vfio-pci', group: 5 },
    ]);
    const file = join(dir, 'plan.yaml');
    writeFileSync(join(dir, 'vmlinuz'), new Uint8Array(1024));
    writeFileSync(file, `memory: { size: 64M }\nmachine: { boot: { kind: linux, kernel: vmlinuz } }\n${plan}`);
    return body(file, sysfsRoot);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('passthrough devices land at their address or the first free root slot, with the host BAR sizes and the plan\'s IDs', () => {
  const plan = 'pci:\n  emulated: [{ name: e, at: "00:02.0", model: generic, options: { vendor: 1, device: 2, class: 3 } }]\n  passthrough:\n    - { host: "1234:11e8#1" }\n    - { name: nic, host: "0000:00:04.0", at: "00:07.0", rom: off, ids: { vendor: 0x8086, device: 0x10d4 } }\n';
  withHost(plan, (file, sysfsRoot) => {
    const m = composePlanFile(file, undefined, { sysfsRoot });
    const at = (name: string): string => {
      const e = m.pci.entries.find((x) => x.fn.id === name);
      assert.ok(e, `${name} is on the bus`);
      return m.pci.topology.addressOf(e.fn);
    };
    // 00:00 and 00:01 are the chipset, 00:02 the plan's emulated device: the first free slot is 3.
    assert.equal(at('pt0'), '00:03.0');
    assert.equal(at('nic'), '00:07.0');
    const pt0 = m.pci.entries.find((x) => x.fn.id === 'pt0')!.fn;
    assert.equal(pt0.read(0, 4), 0x11e8_1234, 'the second 1234:11e8 of the host, its own IDs');
    assert.equal(pt0.bars?.layouts.find((b) => b.index === 0)?.size, 0x1000n, '0000:00:05.0 has the default 4 KiB BAR');
    const nic = m.pci.entries.find((x) => x.fn.id === 'nic')!.fn;
    assert.equal(nic.read(0, 2), 0x8086);
    assert.equal(nic.read(2, 2), 0x10d4, 'the plan virtualizes the device ID');
    assert.equal(nic.bars?.layouts.some((b) => b.kind === 'rom'), false, 'rom: off hides the ROM BAR');
    assert.ok(m.summary.some((l) => /passthrough pt0: host 0000:00:05\.0 through vfio \(IOMMU group 5\)/.test(l)), m.summary.join('\n'));
    // Only described, not opened: the machine has nothing to attach.
    assert.equal(m.config.pci?.passthrough, undefined);
  });
});

test('a plan naming a missing host device, or a taken slot, is refused by plan path before anything starts', () => {
  withHost('pci:\n  passthrough:\n    - { host: "0000:00:09.0" }\n    - { host: "abcd:0001" }\n', (file, sysfsRoot) => {
    assert.throws(
      () => composePlanFile(file, undefined, { sysfsRoot }),
      (e: unknown) =>
        e instanceof PlanError &&
        e.problems.length === 2 &&
        e.problems[0]!.path === 'pci.passthrough[0].host' &&
        /no PCI function 0000:00:09\.0 on this host/.test(e.problems[0]!.message) &&
        /no function #0 with IDs abcd:0001 on this host \(found: none\)/.test(e.problems[1]!.message),
    );
  });
  withHost('pci:\n  emulated: [{ name: e, at: "00:03.0", model: generic, options: { vendor: 1, device: 2, class: 3 } }]\n  passthrough:\n    - { host: "0000:00:03.0", at: "00:03.0" }\n', (file, sysfsRoot) => {
    assert.throws(() => composePlanFile(file, undefined, { sysfsRoot }), (e: unknown) => e instanceof PciPlanError && e.problems.some((p) => p.path === 'pci.passthrough[0].at' && /taken by e/.test(p.message)));
  });
});
