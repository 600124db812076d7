import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unresponsiveMessage } from '../../src/vmm/runner.js';

test('a stop the vCPU threads do not answer names each one and what it was doing', () => {
  const m = unresponsiveMessage('timeout after 1200000 ms', 20_000, [
    { cpu: 0, exitsSinceStop: 0 },
    { cpu: 1, exitsSinceStop: 812 },
  ]);
  assert.match(m, /^the machine did not stop within 20 s of the stop \(timeout after 1200000 ms\): /);
  assert.match(m, /vCPU 0 \(no exit since: in KVM_RUN or in device code that does not return\)/);
  assert.match(m, /vCPU 1 \(812 exits since, the stop word unread\)/);
  assert.match(m, /abandoned/);
});
