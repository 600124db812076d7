/**
 * A plug-in that hangs inside a running guest: the vCPU loop's watchdog interrupts it, the
 * device is failed and reported, the guest's read completes with all ones, and the guest goes
 * on to its own end. A plug-in that only takes its time under the limit is left alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { buildEmulatedFunction } from '../../src/hw/pci/emulated.js';
import { loadSys } from '../../src/native/index.js';
import type { PciDeviceDefinition } from '../../src/plugin/api.js';
import { PluginDevice } from '../../src/plugin/device.js';
import { layoutSpec } from '../../src/plugin/layout.js';
import { importPlugin } from '../../src/plugin/modules.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { Machine } from '../../src/vmm/machine.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { controlBuffer } from '../../src/vmm/vcpu-control.js';
import { Asm } from '../../tools/guest/asm.js';
import { microConfig } from '../../tools/guest/micro.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { skipUnlessKvm } from '../vmm/kvm-helpers.js';

const BAR = 0xd000_0000;

async function run(readMs: number): Promise<{ code: number | undefined; faults: string[]; calls: number; failed: string | undefined }> {
  const edu = (await importPlugin(pathToFileURL(join(REPO_ROOT, 'examples', 'plugins', 'edu.js')).href, undefined, 'device')) as PciDeviceDefinition;
  let calls = 0;
  const slow: PciDeviceDefinition = {
    ...edu,
    name: 'slow',
    create: () => ({
      bars: {
        0: {
          read: () => {
            calls++;
            const until = Date.now() + readMs;
            while (Date.now() < until) {
              // Busy, as a plug-in stuck in a loop is.
            }
            return 0x42;
          },
          write: () => {},
        },
      },
    }),
  };
  // The guest reads the register twice and reports the low byte of the second read through isa-debug-exit.
  const a = new Asm(32);
  a.loadAbs(BAR, 4).loadAbs(BAR, 4);
  a.movImm('edx', 0xf4, 2).outDx(1).cli().hlt();
  const m = new Machine(loadSys(), microConfig(a.bytes(), { flat32: true }), { serial: new ByteRing(1 << 12), debug: new ByteRing(1 << 12) }, new Int32Array(controlBuffer(1)));
  try {
    const layout = slow.layout({});
    const device = new PluginDevice(slow, {}, buildEmulatedFunction(layoutSpec(layout, 'slow')).fn, layout, {
      setIntx: () => {},
      signalMessage: () => {},
      memory: m.memory,
      barMemory: (_b, n) => new Uint8Array(n),
      note: () => {},
      fault: (message) => m.ledger.noteFault({ device: 'slow', space: 'mmio', address: BAR, write: false, message }),
    });
    const bar = device.barAccess(0);
    m.mmio.register('slow BAR0', BAR, 0x10_0000, { readMmio: (o, s) => bar.read(o, s), writeMmio: (o, s, v) => bar.write(o, s, v) });
    const reason = runVcpu(m.vcpu, m.ports, m.mmio, m.control, { ms: 500, hung: (d, ms) => (d === 'slow' ? device.fail(`watchdog: its code ran longer than ${ms} ms; stopped`) : undefined) });
    return { code: reason.kind === 'debug-exit' ? reason.code : undefined, faults: m.ledger.faults.map((f) => `${f.device}: ${f.message}`), calls, failed: device.failed };
  } finally {
    m.close();
  }
}

test('a plug-in that hangs is stopped by the watchdog: failed, reported once, its read all ones, and the guest goes on', async (t) => {
  if (!skipUnlessKvm(t)) return;
  const r = await run(600_000);
  assert.equal(r.code, (0xff << 1) | 1, 'the second read saw all ones, and the guest reached its end');
  assert.equal(r.calls, 1, 'a failed device is not called again');
  assert.deepEqual(r.faults, ['slow: watchdog: its code ran longer than 500 ms; stopped']);
  assert.match(r.failed ?? '', /watchdog/);
});

test('a plug-in under the watchdog\'s limit is left alone', async (t) => {
  if (!skipUnlessKvm(t)) return;
  const r = await run(50);
  assert.equal(r.code, (0x42 << 1) | 1);
  assert.equal(r.calls, 2);
  assert.deepEqual(r.faults, []);
});
