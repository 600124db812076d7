import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSys } from '../../src/native/index.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { Asm } from '../../src/vmm/guest/asm.js';
import { microConfig } from '../../src/vmm/guest/micro.js';
import { Machine } from '../../src/vmm/machine.js';
import { runVcpu } from '../../src/vmm/vcpu-loop.js';
import { skipUnlessKvm } from './kvm-helpers.js';

test('a device that throws inside a running guest is failed and reported; the guest goes on', (t) => {
  if (!skipUnlessKvm(t)) return;
  // The guest reads the faulty device twice (the second read must see all ones without
  // calling it again), prints both values and a byte from a healthy device, then exits.
  const a = new Asm(16);
  for (let i = 0; i < 2; i++) a.movImm('edx', 0x700, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0x71, 2).inDx(1).movImm('edx', 0x3f8, 2).outDx(1);
  a.movImm('edx', 0xf4, 2).movImm('eax', 0x11, 1).outDx(1).cli().hlt();
  const serial = new ByteRing(1 << 12);
  const machine = new Machine(loadSys(), microConfig(a.bytes()), { serial, debug: new ByteRing(1 << 12) }, new Int32Array(new SharedArrayBuffer(4)));
  let calls = 0;
  machine.ports.register('faulty', 0x700, 2, {
    readPort: () => {
      calls++;
      throw new Error('model bug: index out of range');
    },
    writePort: () => {},
  });
  try {
    const reason = runVcpu(machine.vcpu, machine.ports, machine.mmio, machine.control);
    assert.deepEqual(reason, { kind: 'debug-exit', code: (0x11 << 1) | 1 });
    const out = serial.drain();
    assert.deepEqual([out[0], out[1]], [0xff, 0xff]);
    assert.equal(out.length, 3);
    assert.equal(calls, 1, 'a failed device is not called again');
    assert.deepEqual(machine.report().deviceFaults, [{ device: 'faulty', message: 'model bug: index out of range' }]);
  } finally {
    machine.close();
  }
});
