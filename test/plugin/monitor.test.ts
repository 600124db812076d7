/**
 * A device plug-in on the monitor's composed bus, driven by a micro guest that programs its
 * BAR through CF8/CFC as firmware would: the plug-in's `memory` BAR becomes KVM memory slots
 * (the guest's stores land in the plug-in's bytes without an exit) while the page holding the
 * MSI-X table stays trapped and is served by hvmpt's MSI-X emulation.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { composePlanFile } from '../../src/host/plan/inputs.js';
import { loadSys } from '../../src/native/index.js';
import type { PciDeviceDefinition } from '../../src/plugin/api.js';
import { preparePlan } from '../../src/plugin/load.js';
import { importPlugin } from '../../src/plugin/modules.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { Machine } from '../../src/vmm/machine.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { controlBuffer } from '../../src/vmm/vcpu-control.js';
import { Asm } from '../../tools/guest/asm.js';
import { microConfig } from '../../tools/guest/micro.js';
import { skipUnlessKvm } from '../vmm/kvm-helpers.js';

const BAR = 0xd000_0000;

test('a plug-in\'s memory BAR is mapped where the guest put it, its MSI-X table page trapped and emulated', async (t) => {
  if (!skipUnlessKvm(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'hvmpt-plugin-monitor-'));
  try {
    writeFileSync(
      join(dir, 'mem.js'),
      `import { definePciDevice, z } from 'hvmpt';\n` +
        `export default definePciDevice({ name: 'mem', summary: 'memory with MSI-X', options: z.strictObject({}),\n` +
        `  layout: () => ({ vendorId: 0x1d0f, deviceId: 0x0042, classCode: 0xff0000, bars: [{ index: 0, kind: 'mem32', size: 0x4000, backing: 'memory' }], msix: { vectors: 2, bar: 0, tableOffset: 0x3000, pbaOffset: 0x3800 } }),\n` +
        `  create: () => ({}) });\n`,
    );
    const plan = join(dir, 'plan.yaml');
    writeFileSync(plan, `memory: { size: 16M }\npci:\n  plugins:\n    - { name: mem, module: ./mem.js, at: "00:06.0" }\n`);
    const prepared = await preparePlan(plan);
    const composed = composePlanFile(plan, prepared.plan, { plugins: prepared.plugins });
    const attachment = composed.config.pci!.plugins![0]!;
    const definition = (await importPlugin(attachment.module, undefined, 'device')) as PciDeviceDefinition;

    // BAR0 of 00:06.0 at 0xd0000000, memory decode on; a store and a load in the mapped part, a load of the MSI-X table's first vector control.
    const a = new Asm(32);
    const cfg = (reg: number, value: number): void => void a.movImm('edx', 0xcf8, 2).movImm('eax', (0x8000_0000 | (6 << 11) | reg) >>> 0, 4).outDx(4).movImm('edx', 0xcfc, 2).movImm('eax', value, 4).outDx(4);
    cfg(0x10, BAR);
    cfg(0x04, 0x0002);
    a.storeImm(BAR + 0x10, 0x1234_5678, 4);
    a.loadAbs(BAR + 0x300c, 4); // vector 0's control: masked at reset
    a.movImm('edx', 0xf4, 2).outDx(1).cli().hlt();
    const config = { ...microConfig(a.bytes(), { flat32: true }), pci: composed.config.pci! };
    const m = new Machine(loadSys(), config, { serial: new ByteRing(1 << 12), debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)), new Map([['mem', { definition, options: {} }]]));
    try {
      const reason = runVcpu(m.vcpu, m.ports, m.mmio, m.control, m.watchdog());
      assert.deepEqual(reason, { kind: 'debug-exit', code: (1 << 1) | 1 }, 'the vector control read 1 (masked), from hvmpt\'s MSI-X emulation');
      const log = m.pci.log.filter((e) => e.device === 'mem' && e.action !== 'unmapped');
      assert.deepEqual(log.map((e) => [e.new?.address, e.action, e.detail]), [['0xd0000000', 'mapped', 'plug-in memory; MSI-X table and PBA trapped']]);
      const saved = m.plugins.get('mem')!.device.save();
      assert.deepEqual([...Buffer.from(saved.memory['0']!, 'base64').subarray(0x10, 0x14)], [0x78, 0x56, 0x34, 0x12], 'the guest\'s store landed in the plug-in\'s memory');
      const trapped = m.mmio.ranges().filter((r) => r.name.startsWith('mem ')).map((r) => `${r.name} 0x${r.base.toString(16)}-0x${r.end.toString(16)}`);
      assert.deepEqual(trapped, ['mem BAR0 MSI-X 0xd0003000-0xd0004000'], 'only the MSI-X page traps; the rest is a memory slot');
      assert.deepEqual(m.report().deviceFaults, []);
    } finally {
      m.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
