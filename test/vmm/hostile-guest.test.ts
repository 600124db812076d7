import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostileGuest } from '../../tools/guest/hostile.js';
import { checkHostileRun } from '../../tools/guest/hostile-check.js';
import { runMachine } from '../../src/vmm/runner.js';
import { skipUnlessKvm } from './kvm-helpers.js';
import { limitMs } from '../helpers/limits.js';

// A few fixed seeds here; `npm run fuzz -- vmm-hostile` runs the same check over many more.
for (const seed of [1, 0xc0ffee, 20261124]) {
  test(`hostile micro guest (seed ${seed}): the monitor survives, leaks nothing, and reports what it refused`, async (t) => {
    if (!skipUnlessKvm(t)) return;
    const guest = hostileGuest(seed);
    const serial: Buffer[] = [];
    const result = await runMachine(guest.config, { onSerial: (b) => serial.push(Buffer.from(b)), timeoutMs: limitMs(60_000) });
    const problems = checkHostileRun(result, Buffer.concat(serial));
    assert.deepEqual(problems, [], `plan ${JSON.stringify(guest.plan)}`);
    // What it refused is reported: unclaimed accesses, ROM writes, fw_cfg DMA outside RAM.
    assert.ok(result.report.unclaimed.length > 0);
    assert.ok(result.report.romWritesRefused > 0);
    assert.ok(result.report.fwCfgRefusals.some((r) => /not (in )?guest RAM/.test(r)), result.report.fwCfgRefusals.join('\n'));
  });
}
